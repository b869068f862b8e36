"""Save a pruned model as a Hugging Face folder (safetensors) with its pruning record, atomically.

The folder is written under a temporary sibling name and renamed into place only when complete,
so an interrupted or failed save never leaves a partial folder behind. ``config.json`` carries a
``pruning_config`` entry (schema modelled on compressed-tensors' sparsity_config) and the folder
holds the full run report as ``pruning_report.json``. Column permutations that were not realised
physically go to ``permutations.safetensors`` (see :mod:`crepe.compose.permuted_linears`); the weights stay
in the original order, so plain ``from_pretrained`` gives the masked model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crepe.compose.permuted_linears import PERMUTATIONS_FILE, save_permutations
from crepe.io.files import (
    install_folder,
    sweep_stale,
    temp_folder,
    writable_parent,
    write_json_atomic,
)
from crepe.output.card import write_card_and_recipe

REPORT_NAME = "pruning_report.json"


def written_by_crepe(folder: Path) -> bool:
    """Whether ``folder`` is a pruned folder this toolkit saved: its config.json has crepe's ``pruning_config``."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    record = config.get("pruning_config") if isinstance(config, dict) else None
    return isinstance(record, dict) and record.get("tool") == "crepe"


def check_save_target(path: str | Path, overwrite: bool, sources: Iterable[str | Path] = ()) -> None:
    """Fail before any work unless ``path`` can take the saved folder without losing anything.

    Refused: an empty path; a target that is, or contains, one of ``sources`` (the model being read:
    replacing it would delete it); an existing target without ``overwrite``; with ``overwrite``, an
    existing target that is not an empty folder or a folder this toolkit saved (:func:`written_by_crepe`),
    since only what crepe wrote is ever replaced; a parent that is not a writable folder.
    """
    if not str(path).strip():
        raise ValueError("--save needs a folder path, got an empty one")
    path = Path(path).expanduser()
    sweep_stale(path.parent)  # what a killed run left (a replaced folder caught mid-install is put back)
    target = path.resolve()
    for source in sources:
        src = Path(source).expanduser().resolve()
        if src == target or target in src.parents:
            raise ValueError(f"--save folder {path} is or contains the model being pruned ({source}); "
                             f"choose another folder")
    if path.exists() and not path.is_dir():
        raise ValueError(f"--save target {path} exists and is not a folder")
    if path.exists() and not overwrite:
        raise ValueError(f"--save folder {path} already exists; pass --overwrite to replace it")
    if path.exists() and any(path.iterdir()) and not written_by_crepe(path):
        raise ValueError(f"--save folder {path} holds files crepe did not write (no crepe pruning_config in its "
                         f"config.json); --overwrite only replaces a folder crepe saved: choose another folder")
    writable_parent(path, "--save folder")


def pruning_record(config: dict[str, Any], realised_sparsity: float, pattern: str) -> dict[str, Any]:
    """The ``pruning_config`` entry stored in config.json."""
    return {
        "format": "dense",
        "global_sparsity": round(realised_sparsity, 6),
        "sparsity_structure": pattern,
        "targets": ["Linear"],
        "ignore": ["lm_head", "embeddings"],
        "tool": "crepe",
        "config": config,
    }


def write_extras(folder: Path, model: nn.Module, tokenizer, record: dict[str, Any],
                 report: dict[str, Any] | None = None, permutations: dict[str, torch.Tensor] | None = None) -> None:
    """Everything of a saved pruned folder but the weights: config.json with ``pruning_config`` (and
    the generation config), tokenizer, report, column permutations. Used in memory and streamed."""
    if permutations:
        record = {**record, "permutations": {"file": PERMUTATIONS_FILE, "linears": sorted(permutations)}}
        save_permutations(folder, permutations)
    model.config.pruning_config = record
    model.config.save_pretrained(folder)
    if getattr(model, "generation_config", None) is not None and model.can_generate():
        model.generation_config.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    if report is not None:
        write_json_atomic(folder / REPORT_NAME, report)


def save_pruned(model: nn.Module, tokenizer, path: str | Path, record: dict[str, Any],
                report: dict[str, Any] | None = None, overwrite: bool = False,
                permutations: dict[str, torch.Tensor] | None = None) -> Path:
    """Write model + tokenizer + record (+ report, + column ``permutations`` by
    ``layers.<i>.<name>``) to ``path`` atomically; returns the path."""
    path = Path(path)
    check_save_target(path, overwrite)
    tmp = temp_folder(path)
    try:
        model.save_pretrained(tmp)
        write_extras(tmp, model, tokenizer, record, report, permutations)
        if report is not None:
            write_card_and_recipe(tmp, report, name=path.name)
        install_folder(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
