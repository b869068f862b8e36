"""Seconds per PHO trial for every proxy against one hill-climb step, measured in the same run.

At RIA's point, for 50% unstructured and 2:4: each proxy's trial (``pho.search.trial_evaluator``,
the statistics cache already built) and one hill-climb step (a faithful prune with the sequential
engine on the calibration windows plus PPL on the validation windows, ``pho.hillclimb --faithful``).
Each is timed ``--repeats`` times and the minimum kept; the table gives the ratio step / trial, the
number of PHO trials one climb step pays for. Run it on an otherwise idle machine.

    OMP_NUM_THREADS=1 python -m benchmarks.pho_trial_cost --nsamples 8 --out results/pho/trial_cost.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.common import Table
from crepe.config import PruneConfig
from crepe.data.prepare import eval_set
from crepe.io.environment import versions
from crepe.io.files import read_json, write_json_atomic
from crepe.io.provenance import current_command, markdown_stamp, provenance
from crepe.methods.params import Pattern
from pho.objective import PplObjective, base_config, with_params
from pho.proxies import PROXIES
from pho.search import trial_evaluator
from pho.space import SearchSpace
from pho.workspace import SetupConfig, open_workspace

TABLES = [Table("results/pho/trial_cost.md", ("OMP_NUM_THREADS=1 python -m benchmarks.pho_trial_cost --nsamples 8 --out results/pho/trial_cost.json",))]


def best_of(repeats: int, fn: Callable[[PruneConfig], object], cfg: PruneConfig) -> float:
    """Minimum wall seconds of ``fn(cfg)`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(cfg)
        times.append(time.perf_counter() - start)
    return min(times)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dataset", default="wikivital")
    ap.add_argument("--nsamples", type=int, default=8)
    ap.add_argument("--val-windows", type=int, default=8)
    ap.add_argument("--patterns", default="unstructured,2:4")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cache-dir", default="")
    ap.add_argument("--out", default="results/pho/trial_cost.json")
    return ap


def planned(argv: list[str]) -> dict[str, dict]:
    """{OUT: {command, config it resolves to now}}: setup, validation windows, patterns and RIA's point."""
    args = build_parser().parse_args(argv)
    setup = SetupConfig(model=args.model, dataset=args.dataset, nsamples=args.nsamples, cache_dir=args.cache_dir)
    point = dataclasses.asdict(SearchSpace().to_crepe(SearchSpace().ria_point()))
    return {args.out: {"command": None, "config": {
        "args": {k: v for k, v in vars(args).items() if k != "out"}, "setup": dataclasses.asdict(setup), "point": point}}}


def recorded(argv: list[str]) -> dict[str, dict]:
    out = build_parser().parse_args(argv).out
    if not Path(out).is_file():
        return {}
    rec = read_json(out)
    prov = rec.get("provenance")
    config = prov["config"] if prov else {"args": {k: v for k, v in rec["args"].items() if k != "out"}}
    return {out: {"command": prov["argv"] if prov else None, "config": config}}


def main() -> None:
    args = build_parser().parse_args()
    setup = SetupConfig(model=args.model, dataset=args.dataset, nsamples=args.nsamples, cache_dir=args.cache_dir)
    ws = open_workspace(setup, progress=False)
    val, spec = eval_set(ws.tokenizer, setup.dataset, "validation", setup.seqlen, args.val_windows, ws.bos_per_window)
    climb = PplObjective(ws.model, ws.data, val, calib=ws.calib, faithful=True)
    point = SearchSpace().to_crepe(SearchSpace().ria_point())
    rows = {}
    for pattern in args.patterns.split(","):
        pat = Pattern.parse(pattern)
        cfg = with_params(base_config(pat.sparsity_or(0.5), pat), point)
        step = best_of(args.repeats, climb, cfg)
        trials = {name: best_of(args.repeats, trial_evaluator(ws, name), cfg) for name in PROXIES}
        rows[pattern] = {"hill_climb_step": step, "trials": trials}
        print(pattern, f"climb step {step:.1f} s;", ", ".join(f"{k} {v:.1f} s ({step / v:.1f}x)" for k, v in trials.items()),
              flush=True)
    names = list(PROXIES)
    lines = [(f"Seconds (best of {args.repeats}) per PHO trial at RIA's point and per hill-climb step (faithful prune on "
              f"{args.nsamples} calibration windows + PPL on {spec.describe()}); in brackets: climb step / trial."), "",
             "| pattern | hill-climb step | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for pattern, row in rows.items():
        cells = [f"{row['trials'][n]:.1f} ({row['hill_climb_step'] / row['trials'][n]:.1f}×)" for n in names]
        lines.append(f"| {pattern} | {row['hill_climb_step']:.1f} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + f"\n\nOMP threads: {torch.get_num_threads()}.\n"
    command = current_command()
    record = provenance(command, planned(sys.argv[1:])[args.out]["config"])
    write_json_atomic(args.out, {"rows": rows, "args": vars(args), "versions": versions(), "provenance": record})
    Path(args.out).with_suffix(".md").write_text(markdown_stamp(record) + "\n\n" + text)
    print(text)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
