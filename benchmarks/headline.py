"""The README's headline table: crepe's default against the strongest one-shot baselines on SmolLM2-135M.

SparseGPT, ADMM-Grad, ALPS, RIA, crepe mask-only (``--update none``) and crepe's default, each pruned
through ``crepe.run.job.run`` with the same wikivital calibration (16 x 512 by default; ``--nsamples
128`` writes ``results/headline_c128``); PPL on the wikivital test windows and on two texts the
calibration never saw (the CPython language reference and the standard library's docstrings);
zero-shot accuracy on the shipped local task (lm-eval); prune CPU time as a ratio to SparseGPT's,
measured in the same process. Settings run one process each, so two can run side by side.

    OMP_NUM_THREADS=1 python -m benchmarks.headline --settings 2:4   # run the missing cells of 2:4
    python -m benchmarks.headline --table                            # only rebuild results/headline.md
    python -m benchmarks.headline --table --readme README.md         # also fill README's headline block
    OMP_NUM_THREADS=1 python -m benchmarks.headline --cpu-time --settings 2:4   # the CPU column's timing

``--cpu-time`` prunes every row once in one process, SparseGPT first, with no evaluation, and keeps
each row's process CPU time in ``<table folder>_cpu/<setting>.json`` (results/headline_cpu): the
table's CPU column divides those, one machine and one process, where they exist.

The rows are declared in ``benchmarks.headline_cells`` and the tables rendered by
``benchmarks.headline_table``; this module runs the cells and declares the committed tables (``TABLES``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from benchmarks import common
from benchmarks.common import Table
from benchmarks.headline_cells import (
    CELLS,
    EVAL_WINDOWS,
    FLOAT32_ROW,
    ISSUE_ROWS,
    MASK_SEED_ROWS,
    OUT,
    SECOND_MODEL,
    SECOND_MODEL_EVAL_WINDOWS,
    SECOND_MODEL_ROWS,
    SECOND_MODEL_SEED_ROWS,
    SECOND_MODEL_SEEDS,
    SECOND_MODEL_SEEDS_TABLE,
    SECOND_MODEL_SETTINGS,
    SEED_ROWS,
    SEEDS,
    SEEDS_TABLE,
    SETTINGS,
    ZEROSHOT,
    base_options,
    cells,
    cpu_dir,
    result_dir,
    timing_config,
    timing_config_of,
    timing_plan,
)
from benchmarks.headline_table import plot, seeds_table, table
from crepe.data.prepare import dataset_tokens
from crepe.run.options import RunOptions

log = logging.getLogger("headline")
C128_SETTINGS = ("2:4", "0.7", "0.5", "4:8", "0.6")  # 128 x 512 calibration (8x the calibration time)
C128_CPU_SETTINGS = ("2:4,0.5", "0.7,4:8", "0.6")  # the 128 x 512 CPU column's processes (about an hour a setting)
TABLES = [Table("results/headline.md", tuple(f"python -m benchmarks.headline --settings {s}" for s in ("2:4", "0.7", "0.5"))
                + tuple(f"python -m benchmarks.headline --settings {s} --rows '{','.join(ISSUE_ROWS)}'" for s in ("4:8", "0.6"))
                + tuple(f"python -m benchmarks.headline --settings {s} --rows '{FLOAT32_ROW}'" for s in ("4:8", "0.6"))
                + ("python -m benchmarks.headline --cpu-time --settings 2:4,0.7,0.5",
                   f"python -m benchmarks.headline --cpu-time --settings 4:8,0.6 --rows '{','.join((*ISSUE_ROWS, FLOAT32_ROW))}'"),
                covers=("results/headline/*", "results/headline_cpu/*")),
          Table("results/headline_c128.md",
                tuple(f"python -m benchmarks.headline --nsamples 128 --settings {s} --rows '{','.join(ISSUE_ROWS)}'"
                      for s in C128_SETTINGS)
                + tuple(f"python -m benchmarks.headline --nsamples 128 --cpu-time --settings {s} --rows '{','.join(ISSUE_ROWS)}'"
                        for s in C128_CPU_SETTINGS),
                covers=("results/headline_c128/*", "results/headline_c128_cpu/*")),
          Table("results/headline_seeds.md",
                tuple(f"python -m benchmarks.headline --seed {seed} --settings {s} --rows '{','.join(SEED_ROWS)}'"
                      for seed in SEEDS for s in ("2:4", "0.7"))
                + tuple(f"python -m benchmarks.headline --seed {seed} --settings {','.join(SETTINGS)} "
                        f"--rows '{','.join(MASK_SEED_ROWS)}'" for seed in SEEDS),
                covers=tuple(f"results/headline_s{seed}*" for seed in SEEDS)),
          Table(f"results/headline_{SECOND_MODEL}.md",
                tuple(f"python -m benchmarks.headline --model {SECOND_MODEL} --settings {s} --rows '{','.join(SECOND_MODEL_ROWS)}' "
                      f"--eval-windows {SECOND_MODEL_EVAL_WINDOWS} --no-zeroshot" for s in SECOND_MODEL_SETTINGS)
                + (f"python -m benchmarks.headline --model {SECOND_MODEL} --cpu-time --settings {','.join(SECOND_MODEL_SETTINGS)} "
                   f"--rows '{','.join(SECOND_MODEL_ROWS)}' --eval-windows {SECOND_MODEL_EVAL_WINDOWS} --no-zeroshot",),
                covers=(f"results/headline_{SECOND_MODEL}/*", f"results/headline_{SECOND_MODEL}_cpu/*")),
          Table(f"results/headline_{SECOND_MODEL}_seeds.md",
                tuple(f"python -m benchmarks.headline --model {SECOND_MODEL} --seed {seed} --settings "
                      f"{','.join(SECOND_MODEL_SETTINGS)} --rows '{','.join(SECOND_MODEL_SEED_ROWS)}' "
                      f"--eval-windows {SECOND_MODEL_EVAL_WINDOWS} --no-zeroshot" for seed in SECOND_MODEL_SEEDS),
                covers=(f"results/headline_{SECOND_MODEL}_s*",))]


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    args = build_parser().parse_args(argv)
    if args.cpu_time:
        return {str(cpu_dir(out_dir(args)) / f"{common.setting_name(s)}.json"):
                {"command": None, "config": timing_config(args.model, s, args.nsamples, args.seed, rows_of(args),
                                                          args.eval_windows)}
                for s in settings_of(args)}
    return {str(out_dir(args) / f"{name}.json"): {"command": None, "config": common.cell_config(opts, cell=name)}
            for name, opts in cells(args.model, settings_of(args), args.nsamples, args.seed, rows_of(args),
                                    args.eval_windows).items()}


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as stored, for the cells that exist."""
    return common.stored_cells(planned(argv))


def settings_of(args: argparse.Namespace) -> tuple[str, ...]:
    return common.chosen_settings(args.settings, SETTINGS)


def rows_of(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(CELLS) if args.rows is None else common.chosen(args.rows, CELLS, "--rows")


def out_dir(args: argparse.Namespace) -> Path:
    """results/headline, or headline_<model> / _c<nsamples> / _s<seed> for another model and calibrations."""
    return args.out_dir or result_dir(args.model, args.nsamples, args.seed)


def run_timing(args: argparse.Namespace, out: Path) -> None:
    """``--cpu-time``: one record per setting under :func:`cpu_dir` (:func:`time_rows`)."""
    base = base_options(args.model, args.nsamples, args.seed, args.eval_windows)
    bench = common.open_bench(base, second_text=False)
    dataset_tokens(bench.tokenizer, base.calib_dataset, "calibration")  # tokenised once, before any timing
    by_name = {common.setting_name(s): s for s in settings_of(args)}
    common.run_cells(by_name, cpu_dir(out), lambda name: time_rows(bench, args.model, by_name[name], args.nsamples,
                                                                   args.seed, rows_of(args), args.eval_windows))


def run(args: argparse.Namespace, out: Path) -> None:
    plan = cells(args.model, settings_of(args), args.nsamples, args.seed, rows_of(args), args.eval_windows)
    base = base_options(args.model, args.nsamples, args.seed, args.eval_windows)
    tasks = () if args.no_zeroshot else ZEROSHOT
    bench = common.open_bench(base, texts=common.UNSEEN_TEXTS)
    common.run_dense(bench, base, out, tasks)
    common.run_cells(plan, out, lambda name: common.prune_and_evaluate(bench, plan[name], tasks, cell=name))


def time_rows(bench: common.Bench, model: str, setting: str, nsamples: int, seed: int, rows: tuple[str, ...],
              eval_windows: int = EVAL_WINDOWS) -> dict[str, Any]:
    """Prune each of :func:`timed_rows` once at ``setting`` in this process, SparseGPT first, no
    evaluation: the record of each row's process CPU seconds."""
    plan = timing_plan(model, setting, nsamples, seed, rows, eval_windows)
    seconds = {}
    for label, opts in plan.items():
        seconds[label] = common.prune(bench, opts)["prune_cpu_seconds"]
        log.info("%s %s: %.1f s CPU", setting, label, seconds[label])
    base = base_options(model, nsamples, seed, eval_windows)
    return common.record(timing_config_of(setting, plan), seconds=seconds, threads=torch.get_num_threads(),
                         calibration=f"{base.nsamples} x {base.seqlen} {base.calib_dataset}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=RunOptions.model)
    ap.add_argument("--settings", default="0.5,2:4,0.7", help=f"comma-separated, from {', '.join(SETTINGS)}")
    ap.add_argument("--nsamples", type=int, default=16, help="calibration windows of 512 tokens")
    ap.add_argument("--seed", type=int, default=0, help="seed of the calibration draw (another seed: results/headline[_MODEL]_sN)")
    ap.add_argument("--rows", default=None, help="comma-separated row labels to run (default: every row)")
    ap.add_argument("--eval-windows", type=int, default=EVAL_WINDOWS, help="evaluation windows of 512 tokens per text")
    ap.add_argument("--no-zeroshot", action="store_true", help="skip the zero-shot task (a model whose evaluation is slow)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="default: results/headline (results/headline_<model>, _cN, _sN for another model and calibrations)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time the rows instead: each pruned once in one process, SparseGPT first, no evaluation "
                         "(<table folder>_cpu/<setting>.json; the table's CPU column divides these)")
    ap.add_argument("--table", action="store_true", help="only rebuild the table from the records")
    ap.add_argument("--readme", type=Path, help="also write the table between README's headline markers")
    return ap


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    out = out_dir(args)
    if args.cpu_time and not args.table:
        run_timing(args, out)
    elif not args.table:
        run(args, out)
    body = table(out)
    if out.parent == common.RESULTS:
        (common.RESULTS / f"{out.name}.md").write_text(body + "\n")
        if plot(out, common.RESULTS / f"{out.name}.png"):
            print(f"wrote results/{out.name}.png")
    print(body)
    if args.readme:
        common.write_block(args.readme, "headline", body)
    if out.parent == common.RESULTS and (out == OUT or out.name.startswith("headline_s")):
        SEEDS_TABLE.write_text(seeds_table() + "\n")
    if out.parent == common.RESULTS and out.name.startswith(f"headline_{SECOND_MODEL}") and args.nsamples == 16:
        SECOND_MODEL_SEEDS_TABLE.write_text(seeds_table(SECOND_MODEL) + "\n")


if __name__ == "__main__":
    main()
