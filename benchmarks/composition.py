"""The composition table: each technique alone and all three, per scorer, on one model, one run.

Channel permutation (N:M), OWL / AlphaPruning allocation and DSnoT re-pruning are each compared
with the same scorer and setting without the technique, all cells sharing one loaded model, one
calibration set and one evaluation set (weights are restored between cells). Every cell writes a
report JSON under ``--out-dir`` (resolved config, PPL, kept-score fraction, per-layer sparsity,
prune seconds); finished cells are skipped on re-run and the markdown table is built from the
reports only (``--table`` rebuilds it). Cost = prune seconds / plain prune seconds, same run.

    OMP_NUM_THREADS=1 python -m benchmarks.composition   # the full grid -> results/compose/smollm2_small
    python -m benchmarks.composition --nsamples 16 --max-eval-windows 24 --out-dir results/compose/x \\
        --cells 2:4/plain,2:4/perm,0.7/plain,0.7/owl --methods crepe,ria

The defaults are the committed reduced scale (8 calibration and 8 test windows). An ``--out-dir``
whose reports were made with another config or protocol is refused before any work (cells are
resumed, so mixing would silently join two protocols in one table).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from benchmarks.resolve import differences, effective
from crepe.config import AllocationConfig, PermuteConfig, PruneConfig, RepruneConfig
from crepe.data.prepare import calibration_set, eval_set
from crepe.evaluation.perplexity import perplexity
from crepe.io.environment import versions
from crepe.io.files import write_json_atomic
from crepe.io.provenance import current_command, markdown_stamp, provenance
from crepe.methods.params import Pattern
from crepe.models.adapters import model_target
from crepe.models.loading import load_model
from crepe.prune.model import prune_model
from crepe.run.options import RunOptions, default_of

GRID = {  # technique group -> (settings, techniques); "plain" is the baseline of every row
    "perm": (("2:4", "4:8"), ("perm",)),
    "alloc": (("0.6", "0.7", "0.8"), ("owl", "alpha")),
    "dsnot": (("0.5", "0.6", "0.7", "2:4"), ("dsnot",)),
    "all": (("4:8",), ("all",)),
}
TECHNIQUES = ("plain", "perm", "owl", "alpha", "dsnot", "all")


def grid_cells(groups: list[str]) -> list[tuple[str, str]]:
    """(setting, technique) pairs of the chosen groups, each with its plain baseline, deduplicated."""
    cells: list[tuple[str, str]] = []
    for group in groups:
        settings, techniques = GRID[group]
        for setting in settings:
            for cell in [(setting, "plain")] + [(setting, t) for t in techniques]:
                if cell not in cells:
                    cells.append(cell)
    return cells


def parse_cells(text: str) -> list[tuple[str, str]]:
    cells = []
    for item in text.split(","):
        setting, _, technique = item.partition("/")
        if technique not in TECHNIQUES:
            raise ValueError(f"unknown technique {technique!r} in {item!r}; choose from {', '.join(TECHNIQUES)}")
        cells.append((setting, technique))
    return cells


def cell_config(method: str, setting: str, technique: str) -> PruneConfig:
    """The PruneConfig of one cell; ``all`` = permutation + OWL + DSnoT."""
    pattern = Pattern.parse(setting) if ":" in setting else Pattern()
    sparsity = pattern.sparsity_or(0.0 if pattern.structured else float(setting))  # "2:4" is no float
    permute = PermuteConfig() if technique in ("perm", "all") else None
    allocation = AllocationConfig(method="owl" if technique in ("owl", "all") else
                                  "alpha" if technique == "alpha" else "uniform")
    repruning = RepruneConfig() if technique in ("dsnot", "all") else None
    return PruneConfig(method=method, sparsity=sparsity, pattern=pattern, permute=permute,
                       allocation=allocation, repruning=repruning)


def cell_path(out_dir: Path, method: str, setting: str, technique: str) -> Path:
    return out_dir / f"{method}__{setting.replace(':', '-')}__{technique}.json"


def run_cell(model, calib, windows, method: str, setting: str, technique: str, args) -> dict:
    cfg = cell_config(method, setting, technique)
    start = time.perf_counter()
    summary = prune_model(model, calib, cfg, batch_size=args.batch_size, device=args.device, progress=False)
    seconds = time.perf_counter() - start
    ppl = evaluate(model, windows, args)
    return {"config": cfg.to_dict(), "setting": setting, "technique": technique, "ppl_pruned": ppl,
            "prune_seconds": seconds, "kept_score_fraction": summary.kept_score_fraction,
            "realised_sparsity": summary.realised_sparsity, "per_layer_sparsity": summary.per_layer(),
            "permutations": {"gathered": len(summary.gathered_permutations()), "physical": len(summary.physical)}}


def evaluate(model: torch.nn.Module, windows: torch.Tensor, args) -> float:
    """PPL on ``windows`` with the whole model on ``--device`` for the pass, then back on the CPU."""
    model.to(args.device or "cpu")
    try:
        return perplexity(model, windows, args.eval_batch_size, progress=False)
    finally:
        model.to("cpu")


def run(args, cells: list[tuple[str, str]], methods: list[str], stamp) -> None:
    """Run the missing cells; ``stamp(path)`` gives the provenance record of a cell's report."""
    out = Path(args.out_dir)
    todo = [(m, s, t) for m in methods for s, t in cells if not cell_path(out, m, s, t).exists()]
    if not todo:
        return
    model, tokenizer = load_model(args.model)
    calib, calib_spec = calibration_set(tokenizer, "wikivital", args.nsamples, args.seqlen, args.seed)
    windows, eval_spec = eval_set(tokenizer, "wikivital", "test", args.eval_seqlen, args.max_eval_windows or None)
    common = {"model": args.model, "calibration": f"{calib_spec.describe()} seed={args.seed}",
              "eval_protocol": f"{eval_spec.describe()} dtype=float32", "versions": versions()}
    dense_path = out / "dense.json"
    if not dense_path.exists():
        write_json_atomic(dense_path, {**common, "ppl_dense": evaluate(model, windows, args),
                                       "provenance": provenance(current_command(), run_settings(args))})
    target = model_target(model)
    saved = target.snapshot()
    for method, setting, technique in todo:
        print(f"cell {method} {setting} {technique} ...", flush=True)
        path = cell_path(out, method, setting, technique)
        report = {**common, **run_cell(model, calib, windows, method, setting, technique, args), "provenance": stamp(path)}
        write_json_atomic(path, report)
        print(f"  PPL {report['ppl_pruned']:.3f}  prune {report['prune_seconds']:.1f} s", flush=True)
        target.restore(saved)


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(out_dir: Path, cells: list[tuple[str, str]], methods: list[str], stamp: str = "") -> str:
    """Markdown table from the reports; cells without a report are marked 'not run'; ``stamp`` first."""
    dense = json.loads((out_dir / "dense.json").read_text()) if (out_dir / "dense.json").exists() else None
    lines = [stamp, ""] if stamp else []
    lines += [f"Model `{dense['model']}` (4-bit GGUF weights dequantised); calibration {dense['calibration']}",
              f"Eval: {dense['eval_protocol']}; dense PPL {dense['ppl_dense']:.3f}", ""] if dense else ["(no dense report)", ""]
    lines += ["| scorer | setting | technique | PPL | PPL / plain | kept-score frac | prune s | cost / plain |",
              "|---|---|---|---|---|---|---|---|"]
    for method in methods:
        for setting, technique in cells:
            path = cell_path(out_dir, method, setting, technique)
            base_path = cell_path(out_dir, method, setting, "plain")
            if not path.exists():
                lines.append(f"| {method} | {setting} | {technique} | not run | | | | |")
                continue
            rep = json.loads(path.read_text())
            base = json.loads(base_path.read_text()) if base_path.exists() else None
            ratio = rep["ppl_pruned"] / base["ppl_pruned"] if base else None
            cost = rep["prune_seconds"] / base["prune_seconds"] if base else None
            lines.append(f"| {method} | {setting} | {technique} | {rep['ppl_pruned']:.3f} | {_fmt(ratio, '.3f')} | "
                         f"{_fmt(rep['kept_score_fraction'], '.4f')} | {rep['prune_seconds']:.1f} | {_fmt(cost, '.2f')} |")
    lines += ["", "PPL / plain < 1: the technique helps this scorer at this setting; > 1: it hurts. "
              "kept-score frac: mean over linears of the share of each linear's score its mask keeps."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--methods", default="crepe,ria")
    ap.add_argument("--groups", default="perm,alloc,dsnot,all", help=f"technique groups: {', '.join(GRID)}")
    ap.add_argument("--cells", default=None, help="explicit SETTING/TECHNIQUE list, e.g. 2:4/plain,2:4/perm")
    ap.add_argument("--nsamples", type=int, default=8)
    ap.add_argument("--seqlen", type=int, default=default_of(RunOptions, "seqlen"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-seqlen", type=int, default=default_of(RunOptions, "eval_seqlen"))
    ap.add_argument("--max-eval-windows", type=int, default=8, help="0: the whole test split")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--eval-batch-size", type=int, default=4)
    ap.add_argument("--device", default=None, help="device for the layer-by-layer work and eval, e.g. cuda")
    ap.add_argument("--out-dir", default="results/compose/smollm2_small")
    ap.add_argument("--table", action="store_true", help="only rebuild the markdown table from the reports")
    return ap


def _cells_methods(args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[str]]:
    return (parse_cells(args.cells) if args.cells else grid_cells(args.groups.split(","))), args.methods.split(",")


def run_settings(args: argparse.Namespace) -> dict:
    """What every cell's result depends on besides its PruneConfig."""
    return {"model": args.model, "nsamples": args.nsamples, "seqlen": args.seqlen, "seed": args.seed,
            "eval_seqlen": args.eval_seqlen, "max_eval_windows": args.max_eval_windows or None}


def planned(argv: list[str]) -> dict[str, dict]:
    """Report path -> {command, config it resolves to now} of every cell of this command (validated)."""
    args = build_parser().parse_args(argv)
    cells, methods = _cells_methods(args)
    return {str(cell_path(Path(args.out_dir), m, s, t)): {"command": None, "config": {
        "config": effective(cell_config(m, s, t).to_dict()), "run": run_settings(args)}}
        for m in methods for s, t in cells}


def _legacy_run(rep: dict) -> dict:
    """Run settings of a report written before provenance, read back from its protocol strings."""
    calib = dict(kv.split("=", 1) for kv in rep["calibration"].split())
    ev = dict(kv.split("=", 1) for kv in rep["eval_protocol"].split())
    return {"model": rep["model"], "nsamples": int(calib["windows"]), "seqlen": int(calib["seqlen"]),
            "seed": int(calib["seed"]), "eval_seqlen": int(ev["seqlen"]), "max_eval_windows": int(ev["windows"])}


def recorded(argv: list[str]) -> dict[str, dict]:
    """Report path -> {command, config} as recorded, for the cells that exist."""
    out = {}
    for path in planned(argv):
        if Path(path).is_file():
            rep = json.loads(Path(path).read_text())
            prov = rep.get("provenance")
            run = prov["config"]["run"] if prov else _legacy_run(rep)
            out[path] = {"command": prov["argv"] if prov else None, "config": {"config": effective(rep["config"]),
                                                                              "run": run}}
    return out


def check_out_dir(argv: list[str]) -> None:
    """Refuse an --out-dir holding a cell made with another config or protocol than this command's."""
    plan = planned(argv)
    for path, rec in recorded(argv).items():
        diff = differences(rec["config"], plan[path]["config"])
        if diff:
            raise ValueError(f"{path} was made with another config ({diff[0]}): use another --out-dir")


def main() -> int:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_grad_enabled(False)
    argv = current_command()[2:]
    cells, methods = _cells_methods(args)
    check_out_dir(argv)  # also validates every cell's config before any work
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    plan = planned(argv)
    if not args.table:
        run(args, cells, methods, lambda path: provenance(current_command(), plan[str(path)]["config"]))
    stamp = markdown_stamp(provenance(current_command(), {p: v["config"] for p, v in plan.items()}))
    text = table(Path(args.out_dir), cells, methods, stamp)
    (Path(args.out_dir) / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    from crepe.io.console import run_cli

    run_cli("bench_composition", main)
