"""Recipes: the resolved configuration of a run as YAML (or JSON), reusable across models.

A recipe holds the pruning config (``prune``: :meth:`crepe.config.PruneConfig.to_dict`) and the run
options a result depends on (``run``: calibration and evaluation settings, dtype). It does not
name the model or where outputs go. ``crepe.prune --recipe FILE`` and ``crepe.oneshot(recipe=...)``
accept one; every saved folder carries its own as ``recipe.yaml``, so
``python -m crepe.prune --model OTHER --recipe runs/x/recipe.yaml`` repeats a run on another model.

A recipe names every choice explicitly, the weight update and the comparison group included (as the
method's registry entry resolves them when it is written), so a later change of a default does not
change what it replays. An older recipe with ``update: null`` replays the update it recorded as
``resolved_update`` (else the method's current default) and says so in one warning line.
llm-compressor recipes (stages of modifiers) are refused with one line naming what is read.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from crepe.config import PruneConfig
from crepe.io.files import write_atomic
from crepe.methods.params import GROUPS

log = logging.getLogger(__name__)

RECIPE_NAME = "recipe.yaml"
RECIPE_VERSION = 1
SUPPORTED = ("crepe recipes: a dict, YAML/JSON file or text with a 'prune' mapping (and 'run'), or a saved "
             "folder's recipe.yaml")
# llm-compressor's pruning modifiers -> the crepe method that does the same selection
LLMCOMPRESSOR_METHODS = {"SparseGPTModifier": "sparsegpt", "WandaPruningModifier": "wanda",
                         "MagnitudePruningModifier": "magnitude"}
_LLMCOMPRESSOR_KEY = re.compile(r"(_stage|_modifiers|Modifier)$|^(stages|modifiers)$")


def run_keys(options: Any) -> tuple[str, ...]:
    """The run options a result depends on: the fields of ``options`` (a :class:`crepe.run.options.RunOptions`
    or its class) whose metadata says ``recipe``; output paths, the device, logging and the model are not
    recipe. ``crepe.run.options.RUN_KEYS`` holds them."""
    return tuple(f.name for f in dataclasses.fields(options) if f.metadata.get("recipe"))


def recipe_from_options(opts: Any) -> dict[str, Any]:
    """The recipe of a :class:`crepe.run.options.RunOptions`, every default written out (:func:`explicit`)."""
    return {"crepe_recipe": RECIPE_VERSION, "prune": explicit(opts.resolved_prune),
            "run": {key: getattr(opts, key) for key in run_keys(opts)}}


def explicit(cfg: PruneConfig) -> dict[str, Any]:
    """``cfg.to_dict()`` with ``update`` and ``group`` set to what they resolve to now (the method's
    registry defaults), so the dict replays this pipeline whatever the defaults become."""
    group = cfg.resolved_group if cfg.method_entry.default_group in GROUPS else None
    return dataclasses.replace(cfg, update=cfg.resolved_update, group=group).to_dict()


def read_recipe(recipe: str | Path | dict[str, Any], keys: Iterable[str] | None = None) -> dict[str, Any]:
    """A recipe from a dict, a YAML/JSON file, or YAML/JSON text; malformed input raises ValueError.
    ``keys``: the run keys it may hold (:func:`run_keys`; None: not checked)."""
    if isinstance(recipe, dict):
        data = recipe
    elif not isinstance(recipe, (str, os.PathLike)):
        kind = f"{type(recipe).__module__}.{type(recipe).__qualname__}"
        what = "llm-compressor modifier objects" if kind.startswith("llmcompressor") or isinstance(recipe, list) else kind
        raise ValueError(f"not supported: {what} as a recipe; crepe reads {SUPPORTED}")
    else:
        text = str(recipe)
        path = Path(text).expanduser()
        if "\n" not in text and not text.lstrip().startswith("{"):
            path = path / RECIPE_NAME if path.is_dir() else path
            if not path.is_file() and "Modifier" in text:
                raise ValueError(f"not supported: llm-compressor modifiers ({text}); crepe reads {SUPPORTED}")
            if not path.is_file():
                raise ValueError(f"recipe file not found: {text}")
            text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)  # YAML is a superset of JSON
        except yaml.YAMLError as exc:
            raise ValueError(f"recipe is not valid YAML/JSON: {str(exc).splitlines()[0]}") from exc
    _refuse_llmcompressor(data)
    if not isinstance(data, dict) or not isinstance(data.get("prune"), dict):
        raise ValueError("a recipe needs a 'prune' mapping (and optionally 'run'); see crepe/output/recipe.py")
    unknown = set(data) - {"crepe_recipe", "prune", "run"}
    unknown_run = set(data.get("run") or {}) - set(keys) if keys is not None else set()
    if unknown or unknown_run:
        raise ValueError(f"unknown recipe keys: {sorted(unknown | {f'run.{k}' for k in unknown_run})}")
    return data


def _refuse_llmcompressor(data: Any) -> None:
    """One line for an llm-compressor recipe (stages/modifiers), with the crepe method of each modifier."""
    keys = _keys(data)
    if not any(_LLMCOMPRESSOR_KEY.search(k) for k in keys):
        return
    twins = [f"{k} -> method: {LLMCOMPRESSOR_METHODS[k]}" for k in sorted(keys & set(LLMCOMPRESSOR_METHODS))]
    hint = f" ({', '.join(twins)})" if twins else ""
    raise ValueError(f"not supported: llm-compressor recipes (stages/modifiers){hint}; crepe reads {SUPPORTED}")


def _keys(data: Any) -> set[str]:
    """Every mapping key in a nested YAML tree."""
    if isinstance(data, dict):
        return {str(k) for k in data} | {k for v in data.values() for k in _keys(v)}
    if isinstance(data, list):
        return {k for v in data for k in _keys(v)}
    return set()


ADMM_GRAD_BEFORE_OPTIONS = {"admm_grad_damp": 0.1, "dense_target": 0.0, "dense_share": 1.0, "admm_grad_iterations": 20,
                            "admm_grad_relaxation": 1.0, "admm_grad_select_iterations": None,
                            "admm_grad_products": "float32", "dense_precision": "float32"}
"""What the admm-grad update ran before it had each of these options (ADMM-Grad's published settings;
the dense stream on every batch)."""


def pinned_update(prune: dict[str, Any]) -> dict[str, Any]:
    """A recipe's ``prune`` mapping with its update explicit: an older recipe's ``update: null`` becomes
    the ``resolved_update`` it recorded, else the method's current default, with one warning line.
    An admm-grad recipe written before one of :data:`ADMM_GRAD_BEFORE_OPTIONS` existed gets the
    value it ran with, also with a warning."""
    if prune.get("update") is None:
        update = prune.get("resolved_update") or PruneConfig.from_dict(prune).resolved_update
        source = ("the update it recorded as resolved_update" if prune.get("resolved_update")
                  else "the method's current default")
        log.warning("recipe without an explicit update (update: null): assuming %s, %s; write update: %s to pin it",
                    source, update, update)
        prune = {**prune, "update": update}
    missing = {k: v for k, v in ADMM_GRAD_BEFORE_OPTIONS.items() if k not in prune}
    if prune["update"] == "admm-grad" and missing and "resolved_update" in prune:
        changed = {k: v for k, v in missing.items() if v != getattr(PruneConfig, k)}  # the rest: today's default
        if changed:
            log.warning("admm-grad recipe from before %s: replaying the settings it ran with, %s",
                        "/".join(f"--{k.replace('_', '-')}" for k in changed),
                        ", ".join(f"{k}: {v}" for k, v in changed.items()))
        prune = {**missing, **prune}
    return prune


def apply_recipe(opts: Any, recipe: str | Path | dict[str, Any]) -> Any:
    """``opts`` with the recipe's pruning config and run options (the recipe wins for what it holds)."""
    data = read_recipe(recipe, run_keys(opts))
    prune = PruneConfig.from_dict(pinned_update(data["prune"]))
    return dataclasses.replace(opts, prune=prune, **(data.get("run") or {}))


def with_recipe(opts: Any, defaults: Any, recipe: str | Path | dict[str, Any]) -> Any:
    """Apply ``recipe`` to ``opts``, refusing settings in ``opts`` that differ from ``defaults`` (the
    same options built with nothing chosen) where the recipe would silently replace them."""
    chosen, base = _flat(recipe_from_options(opts)), _flat(recipe_from_options(defaults))
    conflicts = sorted(k for k in chosen if chosen[k] != base.get(k))
    if conflicts:
        raise ValueError(f"the recipe sets the pruning config and run options; do not also change {', '.join(conflicts)}")
    return apply_recipe(opts, recipe)


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def write_recipe(path: str | Path, recipe: dict[str, Any]) -> Path:
    """Write ``recipe`` as YAML atomically; returns the path."""
    text = "# crepe recipe: python -m crepe.prune --model MODEL --recipe recipe.yaml\n" + yaml.safe_dump(recipe, sort_keys=False)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return Path(path)
