"""The methods table: every method x sparsity setting on one model, same calibration for all.

Each cell is one run of ``python -m crepe.prune`` in its own process (so peak memory is per
cell) writing a report under ``--out-dir``; finished cells are skipped on re-run. CRePE runs
with its defaults and also times one dense pass over the calibration set, giving its prune
cost as a ratio measured in the same process. ``--table`` only rebuilds the markdown table.

    python -m benchmarks.methods                       # all cells, then results/methods.md
    python -m benchmarks.methods --methods wanda,ria --settings 0.5,2:4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.resolve import planned_prune, prune_report
from crepe.io.provenance import current_command, markdown_stamp, provenance
from crepe.methods.registry import method_names
from crepe.run.options import RunOptions, default_of

METHODS = method_names()
SETTINGS = ("0.5", "2:4", "4:8", "0.6", "0.7")


def cell_args(method: str, setting: str) -> list[str]:
    pattern = ["--pattern", setting] if ":" in setting else ["--sparsity", setting]
    return ["--method", method, *pattern]


def cell_command(args: argparse.Namespace, method: str, setting: str, dense: bool) -> list[str]:
    """The ``python -m crepe.prune`` command of one cell (CRePE also times a dense pass)."""
    cmd = ["python", "-m", "crepe.prune", "--model", args.model, "--nsamples", str(args.nsamples), "--seqlen",
           str(args.seqlen), "--eval-split", "test", "--max-eval-windows", str(args.max_eval_windows),
           "--log-level", "WARNING", *cell_args(method, setting), "--report", str(cell_path(args, method, setting))]
    cmd += [] if dense else ["--skip-dense-eval"]
    return cmd + (["--time-dense-pass"] if method == "crepe" else [])


def cell_path(args: argparse.Namespace, method: str, setting: str) -> Path:
    return Path(args.out_dir) / f"{method}__{setting.replace(':', '-')}.json"


def planned(argv: list[str]) -> dict[str, dict]:
    """Report path -> {command, config it resolves to now} of every cell this command runs."""
    args = build_parser().parse_args(argv)
    return {str(cell_path(args, m, s)): planned_prune(cell_command(args, m, s, dense=False))
            for s in args.settings.split(",") for m in args.methods.split(",")}


def recorded(argv: list[str]) -> dict[str, dict]:
    """Report path -> {command, config} as recorded, for the cells that exist."""
    return {path: rec for path in planned(argv) if (rec := prune_report(path))}


def load_cells(out_dir: Path) -> dict[tuple[str, str], dict]:
    cells = {}
    for path in sorted(out_dir.glob("*.json")):
        rep = json.loads(path.read_text())
        cells[(rep["config"]["method"], path.stem.split("__")[1].replace("-", ":"))] = rep
    return cells


def table(out_dir: Path, stamp: str = "") -> str:
    """The markdown table from the cell reports; ``stamp`` (a provenance line) goes first."""
    cells = load_cells(out_dir)
    if not cells:
        return "no results yet"
    any_rep = next(iter(cells.values()))
    dense = [r["ppl_dense"] for r in cells.values() if r.get("ppl_dense")]
    lines = [stamp, ""] if stamp else []
    lines += [f"Model `{any_rep['model']}`; calibration: {any_rep['calibration']} seed={any_rep['seed']}",
             f"Eval protocol: {any_rep['eval_protocol']}",
             f"Dense PPL: {dense[0]:.3f}" if dense else "Dense PPL: (not run)", "",
             "| method | " + " | ".join(f"{s} PPL" for s in SETTINGS) + " |",
             "|---" * (len(SETTINGS) + 1) + "|"]
    for method in METHODS:
        row = [method]
        for setting in SETTINGS:
            rep = cells.get((method, setting))
            row.append(f"{rep['ppl_pruned']:.2f}" if rep else "–")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Prune time and peak memory per cell are in the reports; comparable costs: results/cost.md."]
    crepe_cost = [(s, r) for (m, s), r in cells.items() if m == "crepe" and "prune_over_dense_pass" in r]
    if crepe_cost:
        lines += ["", "CRePE prune time as a multiple of one dense pass over the calibration set (floor: 2):", ""]
        lines += [f"- {s}: {r['prune_seconds']:.1f} s = {r['prune_over_dense_pass']:.2f} x dense pass "
                  f"({r['dense_pass_seconds']:.1f} s)" for s, r in sorted(crepe_cost)]
    crepe = next((r for (m, _), r in cells.items() if m == "crepe"), None)
    if crepe:
        lines += ["", f"CRePE hyperparameters: `{json.dumps(crepe['config']['crepe'])}`"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--nsamples", type=int, default=default_of(RunOptions, "nsamples"))
    ap.add_argument("--seqlen", type=int, default=default_of(RunOptions, "seqlen"))
    ap.add_argument("--max-eval-windows", type=int, default=24)
    ap.add_argument("--out-dir", default="results/bench_methods")
    ap.add_argument("--table-out", default="results/methods.md")
    ap.add_argument("--table", action="store_true", help="only rebuild the table from existing reports")
    return ap


def main() -> None:
    args = build_parser().parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.table:
        for setting in args.settings.split(","):
            for method in args.methods.split(","):
                if cell_path(args, method, setting).exists():
                    continue
                dense = not any(r.get("ppl_dense") for r in load_cells(out_dir).values())
                cmd = cell_command(args, method, setting, dense)
                print("$", " ".join(cmd), flush=True)
                subprocess.run([sys.executable, *cmd[1:]], check=True)
    command = current_command()
    record = provenance(command, {path: p["config"] for path, p in planned(sys.argv[1:]).items()})
    text = table(out_dir, markdown_stamp(record))
    Path(args.table_out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
