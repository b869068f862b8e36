"""The Python entry points: :func:`oneshot`, shaped like llm-compressor's ``oneshot``, and :func:`save`.

``model = oneshot(...)`` returns the pruned model, as llm-compressor's does; the run report rides on it
as ``model.pruning_summary`` (``return_summary=True`` gives ``(model, report)``, the old return value),
and its ``config.pruning_config`` holds the pruning record, so ``model.save_pretrained(dir)`` keeps it
in config.json. ``save(model, dir)`` writes the whole folder ``--save`` writes: weights, record, card,
recipe, report and column permutations.

``oneshot`` builds the same :class:`crepe.run.job.RunOptions` that ``python -m crepe.prune`` builds from
its flags and calls the same :func:`crepe.run.job.run`, so the CLI and the API share one code path.
Argument names follow llm-compressor where they mean the same thing (``model``, ``tokenizer``,
``recipe``, ``dataset``, ``num_calibration_samples``, ``max_seq_length``, ``output_dir``,
``batch_size``, ``precision``); everything else is a RunOptions, PruneConfig or CRePE-parameter
field passed by name in ``**options``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from crepe.config import AllocationConfig, PruneConfig
from crepe.data.memory import memory_data
from crepe.methods.params import CrepeParams, Pattern
from crepe.output.hub import check_push_target, push_folder
from crepe.output.recipe import with_recipe
from crepe.run.options import RunOptions, default_of

# llm-compressor's names -> RunOptions fields
_ALIASES = {"dataset": "calib_dataset", "num_calibration_samples": "nsamples", "max_seq_length": "seqlen",
            "output_dir": "save", "precision": "dtype"}


def oneshot(model: nn.Module | str, tokenizer: Any = None, *, method: str = default_of(PruneConfig, "method"),
            sparsity: float = default_of(PruneConfig, "sparsity"), pattern: str | None = None,
            dataset: Any = default_of(RunOptions, "calib_dataset"),
            num_calibration_samples: int = default_of(RunOptions, "nsamples"),
            max_seq_length: int = default_of(RunOptions, "seqlen"), output_dir: str | None = None, recipe: Any = None,
            return_summary: bool = False, **options: Any) -> nn.Module | tuple[nn.Module, dict[str, Any]]:
    """Prune ``model`` layer by layer on calibration data; returns the pruned model.

    ``model``: a loaded ``nn.Module`` (with ``tokenizer``, else the one saved with it) or anything
    ``--model`` takes (alias, hub id, folder, .gguf). ``pattern``: "N:M" (sparsity is then N/M) or
    None for unstructured. ``dataset``: a corpus spec (wikivital, c4, wikitext2, text:PATH,
    jsonl:PATH), or data in memory: a ``datasets.Dataset`` with a ``text`` or ``input_ids`` column, a
    list of strings, or token ids (see :mod:`crepe.data.memory`). ``output_dir``: save the pruned folder
    there (weights, model card, recipe.yaml, report); ``push_to_hub="OWNER/NAME"`` then uploads it.
    ``recipe``: a crepe recipe dict, YAML/JSON file or text, or a saved folder (see
    :mod:`crepe.output.recipe`; llm-compressor recipes are refused); it sets the pruning config and run
    options, and changing those here too is an error. ``options``: RunOptions fields (``eval_dataset``,
    ``max_eval_windows``, ``device``, ``seed``, ``zeroshot``, ``push_to_hub``, ...; llm-compressor's
    ``batch_size`` and ``precision`` too), PruneConfig fields (``group``, ``allocation``, ``update``, ...)
    or CRePE parameters (``alpha``, ``act_power``, ...). Unlike the CLI, perplexity is evaluated only
    when ``eval_dataset`` is given.

    The run report (the dict ``--report`` writes) is ``model.pruning_summary``; ``return_summary=True``
    returns ``(model, report)`` instead. ``model.config.pruning_config`` holds the pruning record, so
    ``model.save_pretrained(dir)`` keeps it; :func:`save` writes card, recipe and report too.
    """
    from crepe.run.job import run

    options = {_ALIASES.get(k, k): v for k, v in options.items()}
    run_fields = {f.name for f in dataclasses.fields(RunOptions)} - {"prune", "model", "command"}
    prune_fields = {f.name for f in dataclasses.fields(PruneConfig)} | {f.name for f in dataclasses.fields(CrepeParams)}
    unknown = set(options) - run_fields - prune_fields
    if unknown:
        raise ValueError(f"unknown oneshot options {sorted(unknown)}; see crepe.run.job.RunOptions, "
                         "crepe.config.PruneConfig and CrepeParams")
    if isinstance(model, os.PathLike):
        model = str(model)
    if not isinstance(model, (str, nn.Module)):
        raise ValueError(f"oneshot's model must be a name, hub id or path, or a loaded torch.nn.Module; got "
                         f"{type(model).__module__}.{type(model).__qualname__}")
    calib_data = None if isinstance(dataset, str) else memory_data(dataset)
    dataset = calib_data.description if calib_data else dataset
    name = model if isinstance(model, str) else _module_name(model)
    module = None if isinstance(model, str) else model
    if module is not None and tokenizer is None:
        tokenizer = _tokenizer_for(module)
    run_opts = {"eval_dataset": "none", **{k: v for k, v in options.items() if k in run_fields}}
    call = dict(model=name, method=method, sparsity=sparsity, pattern=pattern, dataset=dataset,
                num_calibration_samples=num_calibration_samples, max_seq_length=max_seq_length,
                output_dir=output_dir, recipe=recipe if isinstance(recipe, str) else None, **options)
    opts = RunOptions(model=name, calib_dataset=dataset, nsamples=num_calibration_samples, seqlen=max_seq_length,
                      save=output_dir, prune=_prune_config(method, sparsity, pattern, options), **run_opts,
                      command=("python", "-c", f"from crepe import oneshot; oneshot({_call_args(call)})"))
    if recipe is not None:
        opts = with_recipe(opts, RunOptions(model=name, save=output_dir, eval_dataset="none"), recipe)
    result = run(opts, model=module, tokenizer=tokenizer, echo=lambda line: None, calib_data=calib_data)
    pruned = result.model
    pruned.pruning_summary = result.report
    pruned._crepe_saving = (result.tokenizer, result.summary.gathered_permutations())  # for save(), beyond the report
    return (pruned, result.report) if return_summary else pruned


def save(model: nn.Module, output_dir: str | os.PathLike, *, tokenizer: Any = None, overwrite: bool = False,
         push_to_hub: str | None = None) -> Path:
    """Save a model :func:`oneshot` pruned as ``--save`` does: weights, ``pruning_config``, tokenizer
    (``tokenizer``, else the run's), column permutations, model card, recipe.yaml and report, atomically;
    ``push_to_hub="OWNER/NAME"`` then uploads the folder. Returns the folder's path."""
    from crepe.run.job import save_resident

    report = getattr(model, "pruning_summary", None)
    record = getattr(getattr(model, "config", None), "pruning_config", None)
    if not isinstance(report, dict) or not isinstance(record, dict):
        raise ValueError("crepe.save saves a model that crepe.oneshot pruned (it has no pruning_summary); "
                         "use save_pretrained for any other model")
    if getattr(model, "crepe_layer_store", None) is not None:
        raise ValueError("this model was streamed from disk and its folder written while it was pruned: pass "
                         "output_dir= to oneshot instead of calling crepe.save")
    check_push_target(push_to_hub, str(output_dir))
    run_tokenizer, permutations = getattr(model, "_crepe_saving", (None, None))
    report = {**report, "options": {**(report.get("options") or {}), "save": str(output_dir)}}
    model.pruning_summary = save_resident(model, tokenizer or run_tokenizer, output_dir, report, overwrite=overwrite,
                                          permutations=permutations)
    if push_to_hub:
        push_folder(output_dir, push_to_hub)
    return Path(output_dir)


def _prune_config(method: str, sparsity: float, pattern: str | None, options: dict[str, Any]) -> PruneConfig:
    """PruneConfig from the arguments: with an N:M pattern the default sparsity becomes N/M."""
    nm = Pattern.parse(pattern) if pattern else Pattern()
    if nm.structured and sparsity == default_of(PruneConfig, "sparsity"):
        sparsity = nm.sparsity_or(sparsity)
    crepe = {k: v for k, v in options.items() if k in {f.name for f in dataclasses.fields(CrepeParams)}}
    extra = {k: v for k, v in options.items() if k in {f.name for f in dataclasses.fields(PruneConfig)}}
    if isinstance(extra.get("allocation"), str):
        extra["allocation"] = AllocationConfig.parse(extra["allocation"])
    return PruneConfig.from_dict({"method": method, "sparsity": sparsity, "pattern": str(nm), "crepe": crepe, **extra})


def _call_args(call: dict[str, Any]) -> str:
    """``key=repr(value)`` for the arguments that differ from oneshot's defaults (the recorded command)."""
    defaults = {k: p.default for k, p in inspect.signature(oneshot).parameters.items() if p.default is not p.empty}
    shown = {k: v for k, v in call.items() if k == "model" or k not in defaults or v != defaults[k]}
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, str) else repr(v)}" for k, v in shown.items())


def _module_name(model: nn.Module) -> str:
    return str(getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__)


def _tokenizer_for(model: nn.Module) -> Any:
    """The tokenizer saved with the model's own folder or hub id; ValueError when there is none."""
    from transformers import AutoTokenizer

    where = getattr(getattr(model, "config", None), "_name_or_path", "")
    if not where:
        raise ValueError("oneshot got a model without a tokenizer and no folder to find one in: pass tokenizer=")
    try:
        return AutoTokenizer.from_pretrained(where, trust_remote_code=False)
    except Exception as exc:  # transformers raises many types for a missing tokenizer
        raise ValueError(f"no tokenizer found for {where!r}: pass tokenizer= to oneshot") from exc
