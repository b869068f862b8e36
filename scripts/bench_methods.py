"""The methods table: every method x sparsity setting on one model, same calibration for all.

Each cell is one run of ``python -m crepe.prune`` in its own process (so peak memory is per
cell) writing a report under ``--out-dir``; finished cells are skipped on re-run. CRePE runs
with its defaults and also times one dense pass over the calibration set, giving its prune
cost as a ratio measured in the same process. ``--table`` only rebuilds the markdown table.

    python scripts/bench_methods.py                       # all cells, then results/methods.md
    python scripts/bench_methods.py --methods wanda,ria --settings 0.5,2:4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

METHODS = ("magnitude", "wanda", "sparsegpt", "ri", "ria", "crepe")
SETTINGS = ("0.5", "2:4", "4:8", "0.6", "0.7")


def cell_args(method: str, setting: str) -> list[str]:
    pattern = ["--pattern", setting] if ":" in setting else ["--sparsity", setting]
    return ["--method", method, *pattern]


def run_cell(common: list[str], method: str, setting: str, report: Path, dense: bool) -> None:
    cmd = [sys.executable, "-m", "crepe.prune", *common, *cell_args(method, setting), "--report", str(report)]
    if not dense:
        cmd.append("--skip-dense-eval")
    if method == "crepe":
        cmd.append("--time-dense-pass")
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)


def load_cells(out_dir: Path) -> dict[tuple[str, str], dict]:
    cells = {}
    for path in sorted(out_dir.glob("*.json")):
        rep = json.loads(path.read_text())
        cells[(rep["config"]["method"], path.stem.split("__")[1].replace("-", ":"))] = rep
    return cells


def table(out_dir: Path) -> str:
    cells = load_cells(out_dir)
    if not cells:
        return "no results yet"
    any_rep = next(iter(cells.values()))
    dense = [r["ppl_dense"] for r in cells.values() if r.get("ppl_dense")]
    lines = [f"Model `{any_rep['model']}`; calibration: {any_rep['calibration']} seed={any_rep['seed']}",
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--nsamples", type=int, default=16)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--max-eval-windows", type=int, default=24)
    ap.add_argument("--out-dir", default="results/bench_methods")
    ap.add_argument("--table-out", default="results/methods.md")
    ap.add_argument("--table", action="store_true", help="only rebuild the table from existing reports")
    args = ap.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = ["--model", args.model, "--nsamples", str(args.nsamples), "--seqlen", str(args.seqlen),
              "--eval-split", "test", "--max-eval-windows", str(args.max_eval_windows), "--log-level", "WARNING"]
    if not args.table:
        for setting in args.settings.split(","):
            for method in args.methods.split(","):
                report = out_dir / f"{method}__{setting.replace(':', '-')}.json"
                if report.exists():
                    continue
                run_cell(common, method, setting, report, dense=not any(r.get("ppl_dense") for r in load_cells(out_dir).values()))
    text = table(out_dir)
    Path(args.table_out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
