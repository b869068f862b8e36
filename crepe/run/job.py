"""One pruning run from options to files: open -> calibrate -> dense PPL -> prune -> pruned PPL -> save.

``python -m crepe.prune`` and the Python API both call :func:`run`. A model that would not fit in
RAM (or ``offload="disk"``) is streamed: its decoder layers are read from the checkpoint one at a
time, pruned, and written straight into the output folder's shards, so no more than one layer is
ever held; perplexity then streams the output folder the same way.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from crepe.compose.allocation import allocate, read_plan
from crepe.config import PruneConfig
from crepe.data.memory import MemoryData
from crepe.data.prepare import calibration_set, check_data, eval_set
from crepe.engine.device import check_device
from crepe.evaluation.perplexity import describe_eval, evaluate_ppl
from crepe.evaluation.zeroshot import ZeroShotRun
from crepe.io.environment import peak_rss_mb, versions
from crepe.io.files import check_output_file, temp_folder, write_json_atomic
from crepe.io.memory import reuse_freed_memory
from crepe.io.provenance import provenance
from crepe.models.adapters import bos_per_window, get_adapter
from crepe.models.loading import cache_root, local_sources
from crepe.output.accounting import (
    DecoderWeights,
    check_reached,
    count_model,
    count_saved,
    targeted_sparsity,
)
from crepe.output.card import write_card_and_recipe
from crepe.output.folder import (
    REPORT_NAME,
    check_save_target,
    pruning_record,
    save_pruned,
    write_extras,
)
from crepe.output.hub import check_push_target, push_folder
from crepe.output.recipe import recipe_from_options
from crepe.prune.model import (
    EXPERT_FALLBACK,
    check_prunable,
    prune_model,
    time_dense_pass,
)
from crepe.run.open import open_model
from crepe.run.options import RunOptions
from crepe.streaming.open import open_streamed
from crepe.streaming.writer import check_free_space

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """The pruned model (resident, or a streamed view of the saved folder; a streamed run without
    ``save`` wrote to a scratch folder that is gone when this returns), its summary and report."""

    model: nn.Module
    tokenizer: Any
    summary: Any
    report: dict[str, Any]


def evaluate(model: nn.Module, windows: torch.Tensor, opts: RunOptions) -> tuple[float, str]:
    return evaluate_ppl(model, windows, opts.eval_batch_size, opts.eval_dtype, opts.device)


def run(opts: RunOptions, model: nn.Module | None = None, tokenizer: Any = None,
        echo: Callable[[str], None] = print, calib_data: MemoryData | None = None) -> RunResult:
    """Run the whole job; bad input raises ValueError before any work and leaves no output behind.
    ``calib_data``: calibration data passed in memory (``opts.calib_dataset`` is then its description).
    A resident model leaves with its ``config.pruning_config``, so ``save_pretrained`` keeps the record."""
    cfg = opts.resolved_prune
    check_device(opts.device)
    reuse_freed_memory()
    if opts.save is not None:
        check_save_target(opts.save, opts.overwrite, _sources(opts.model, model))
    check_output_file(opts.report, "--report")
    check_push_target(opts.push_to_hub, opts.save)
    if calib_data is None:
        check_data(opts.calib_dataset, "calibration")
    if opts.eval_dataset != "none":
        check_data(opts.eval_dataset, opts.eval_split)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if model is None:
        opened = open_model(opts.model, opts.dtype, opts.offload, opts.device)
        model, tokenizer = opened.model, opened.tokenizer
    timings["load_seconds"] = time.perf_counter() - start
    streamed = getattr(model, "crepe_layer_store", None) is not None  # also for a streamed model passed in
    adapter = get_adapter(model)
    prunable = check_prunable(model, cfg)  # the model target, checked once (NaN weights, N:M widths, roles)
    if cfg.allocation.method == "file":
        read_plan(cfg.allocation.path, model)  # fail on a bad plan before any work
    zeroshot = ZeroShotRun(opts.zeroshot, model) if opts.zeroshot else None  # task names checked before any work
    bos = bos_per_window(opts.bos_per_window, model)
    calib, calib_spec = calibration_set(tokenizer, opts.calib_dataset, opts.nsamples, opts.seqlen, opts.seed, bos,
                                        calib_data)
    with_ppl = opts.eval_dataset != "none"
    protocol = None
    if with_ppl:
        windows, eval_spec = eval_set(tokenizer, opts.eval_dataset, opts.eval_split, opts.eval_seqlen,
                                      opts.max_eval_windows, bos)
    storage = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    log.info("model %s (%s family, %s, %s), %s at sparsity %.3f %s", opts.model, adapter.family, str(storage).removeprefix("torch."),
             "streamed from disk" if streamed else "in memory", cfg.method, cfg.sparsity, cfg.pattern)
    log.info("calibration: %s seed=%d", calib_spec.describe(), opts.seed)
    ppl_dense = None
    if with_ppl and not opts.skip_dense_eval:
        ppl_dense, how = evaluate(model, windows, opts)
        protocol = _protocol(eval_spec, opts, how)
        echo(f"dense  PPL {ppl_dense:8.3f}  [{protocol}]")
    if zeroshot and not opts.skip_dense_eval:
        zeroshot.evaluate(model, tokenizer, "dense", echo)
    if opts.time_dense_pass:
        timings["dense_pass_seconds"] = time_dense_pass(model, calib, opts.batch_size, opts.device)
    scratch = None
    start, cpu_start = time.perf_counter(), time.process_time()
    plan = allocate(model, calib, cfg.sparsity, cfg.allocation, cfg.pattern, opts.batch_size, opts.device)
    targeted = targeted_sparsity(cfg.sparsity, plan, {k: t.weight.numel() for k, t in prunable.linears.items()})
    if streamed:
        target = Path(opts.save) if opts.save else _scratch_folder()
        scratch = None if opts.save else target
        store = model.crepe_layer_store
        check_free_space(target, store.checkpoint.nbytes)
        store.start_writing(target)
    try:
        summary = prune_model(model, calib, cfg, layer_sparsity=plan, batch_size=opts.batch_size, device=opts.device,
                              target=prunable)
        timings["prune_seconds"] = time.perf_counter() - start
        if streamed:
            weights = _finish_streamed(model, tokenizer, cfg, summary, opts.overwrite or scratch is not None, targeted)
            timings["prune_and_write_seconds"] = time.perf_counter() - start
            timings["prune_and_write_cpu_seconds"] = time.process_time() - cpu_start
            model = open_streamed(target, storage, opts.device)
        else:
            weights = count_model(model)
            check_reached(weights, targeted)
            model.config.pruning_config = _record(cfg, weights)
        _print_summary(echo, cfg, summary, timings, weights, targeted)
        ppl_pruned = None
        if with_ppl:
            ppl_pruned, how = evaluate(model, windows, opts)
            protocol = protocol or _protocol(eval_spec, opts, how)
            echo(f"pruned PPL {ppl_pruned:8.3f}  [{protocol}]")
        if zeroshot:
            zeroshot.evaluate(model, tokenizer, "pruned", echo)
    except BaseException:
        if streamed and store.writer is not None:  # a failed prune leaves no temporary shards behind
            store.writer.abort()
        raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    report = {
        "model": opts.model, "family": adapter.family, "config": cfg.to_dict(), "seed": opts.seed,
        "dtype": str(storage).removeprefix("torch."), "streamed": streamed, "device": opts.device or "cpu",
        "calibration": calib_spec.describe(), "eval_protocol": protocol,
        "ppl_dense": ppl_dense, "ppl_pruned": ppl_pruned,
        "zeroshot": zeroshot.results if zeroshot else None,
        "realised_sparsity": weights.sparsity, "sparsity_before": summary.sparsity_before,
        "decoder_weights": weights.to_dict(targeted),
        "expert_fallback": {"rule": EXPERT_FALLBACK, "matrices": summary.fallback},
        "per_layer_sparsity": summary.per_layer(), "kept_score_fraction": summary.kept_score_fraction,
        "permutations": {"gathered": sorted(summary.gathered_permutations()), "physical": sorted(summary.physical)},
        **timings, "peak_rss_mb": peak_rss_mb(), "versions": versions(),
        "options": {k: v for k, v in vars(opts).items() if k != "prune"},
        "provenance": provenance(list(opts.command), cfg.to_dict()),
        "recipe": recipe_from_options(opts),
    }
    if opts.save and streamed:
        write_json_atomic(Path(opts.save) / REPORT_NAME, report)
        write_card_and_recipe(opts.save, report)
        echo(f"saved pruned model to {opts.save} (streamed, sharded {report['dtype']})")
    elif opts.save:
        report = save_resident(model, tokenizer, opts.save, report, weights, opts.overwrite,
                               summary.gathered_permutations())
        echo(f"saved pruned model to {opts.save}")
    if opts.save and opts.push_to_hub:
        echo(f"pushed {opts.save} to {push_folder(opts.save, opts.push_to_hub)}")
    if opts.report:
        write_json_atomic(opts.report, report)
        echo(f"report written to {opts.report}")
    return RunResult(model, tokenizer, summary, report)


def save_resident(model: nn.Module, tokenizer: Any, path: str | Path, report: dict[str, Any],
                  weights: DecoderWeights | None = None, overwrite: bool = False,
                  permutations: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Save a pruned model held in memory: weights, ``config.pruning_config``, tokenizer, permutations,
    card, recipe and report. The zeros read back from the folder must be the model's (``weights``:
    its count, else counted here); returns the report with the saved count."""
    weights = weights or count_model(model)
    save_pruned(model, tokenizer, path, model.config.pruning_config, report, overwrite=overwrite,
                permutations=permutations)
    saved = count_saved(path, model)  # read back: the figure is what the folder holds
    if (saved.counted, saved.zeros) != (weights.counted, weights.zeros):
        raise ValueError(f"{path} holds {saved.zeros} zeros in {saved.counted} decoder weights, "
                         f"not the {weights.zeros} in {weights.counted} pruned")
    targeted = (report.get("decoder_weights") or {}).get("targeted_sparsity")
    report = {**report, "decoder_weights": saved.to_dict(targeted)}
    write_json_atomic(Path(path) / REPORT_NAME, report)
    return report


def _sources(spec: str, model: nn.Module | None) -> list[Path]:
    """Where the model is read from: the local paths of ``spec``, or of a passed model's own folder."""
    if model is None:
        return local_sources(spec)
    folder = Path(str(getattr(getattr(model, "config", None), "_name_or_path", "") or ""))
    return [folder] if str(folder) and folder.is_dir() else []


def _protocol(eval_spec, opts: RunOptions, how: str) -> str:
    return f"{eval_spec.describe()} {describe_eval(how, opts.eval_dtype, opts.device)}"


def _scratch_folder() -> Path:
    """Where a streamed run without --save writes its pruned shards (removed at the end)."""
    return temp_folder(cache_root() / "scratch" / "pruned") / "model"


def _record(cfg: PruneConfig, weights: DecoderWeights) -> dict[str, Any]:
    """The folder's ``pruning_config``, with the router and gate tensors that were never pruned."""
    return {**pruning_record(cfg.to_dict(), weights.sparsity, str(cfg.pattern)), "skipped": sorted(weights.skipped)}


def _finish_streamed(model: nn.Module, tokenizer, cfg: PruneConfig, summary, overwrite: bool,
                     targeted: float) -> DecoderWeights:
    """Write the resident tensors as the last shard, count the decoder weights back from the shards
    (a shortfall aborts: nothing is saved), then config/tokenizer/permutations; rename."""
    store = model.crepe_layer_store
    writer = store.writer
    store.writer = None
    writer.write(writer.total, store.resident_state())
    counted: list[DecoderWeights] = []

    def write_rest(tmp: Path) -> None:
        counted.append(count_saved(tmp, model))
        check_reached(counted[0], targeted)
        write_extras(tmp, model, tokenizer, _record(cfg, counted[0]), None, summary.gathered_permutations())

    writer.finish(write_rest, overwrite=overwrite)
    return counted[0]


def _print_summary(echo: Callable[[str], None], cfg: PruneConfig, summary, timings: dict[str, float],
                   weights: DecoderWeights, targeted: float) -> None:
    if "dense_pass_seconds" in timings:
        timings["prune_over_dense_pass"] = timings["prune_seconds"] / timings["dense_pass_seconds"]
        echo(f"prune time = {timings['prune_over_dense_pass']:.2f} x one dense pass over the calibration set "
             f"({timings['dense_pass_seconds']:.1f} s); the floor is 2 (collect + propagate)")
    update = "" if cfg.resolved_update == "none" else f" + {cfg.resolved_update} update"
    echo(f"pruned {len(summary.linears)} linears with {cfg.method}{update} in {timings['prune_seconds']:.1f} s: "
         f"realised sparsity {weights.sparsity:.4f} (zeros before pruning {summary.sparsity_before:.4f})")
    if weights.skipped or summary.fallback:
        echo(f"over {weights.counted} decoder weights (target {targeted:.4f}); never pruned: "
             f"{sum(weights.skipped.values())} router/gate weights in {len(weights.skipped)} tensors; "
             f"{len(summary.fallback)} expert matrices without routed tokens pruned by magnitude")
    if cfg.permute or cfg.repruning or cfg.allocation.method != "uniform":
        kept = summary.kept_score_fraction
        echo(f"composition: permute={'on' if cfg.permute else 'off'} allocation={cfg.allocation.method} "
             f"repruning={cfg.repruning.method if cfg.repruning else 'none'}; kept-score fraction "
             f"{kept if kept is not None else float('nan'):.4f}; "
             f"{len(summary.physical)} linears permuted physically, {len(summary.gathered_permutations())} gathered")
