"""Pruning cost of every method, as a ratio to one dense pass over the same calibration set.

Each method runs ``python -m crepe.prune --time-dense-pass --eval-dataset none`` in its own process:
the dense pass and the prune are timed back to back in that process, so the ratio holds even when
the machine's speed drifts. The floor for activation-aware methods is 2 (collect + propagate);
magnitude and RI need no calibration pass. Peak RSS covers loading and pruning (no evaluation).

    python -m benchmarks.cost        # -> results/cost/*.json, results/cost.md
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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--setting", default="0.5", help="sparsity, or N:M")
    ap.add_argument("--nsamples", type=int, default=default_of(RunOptions, "nsamples"))
    ap.add_argument("--seqlen", type=int, default=default_of(RunOptions, "seqlen"))
    ap.add_argument("--out-dir", default="results/cost")
    return ap


def cell_command(args: argparse.Namespace, method: str) -> list[str]:
    pattern = ["--pattern", args.setting] if ":" in args.setting else ["--sparsity", args.setting]
    return ["python", "-m", "crepe.prune", "--model", args.model, "--method", method, *pattern, "--nsamples",
            str(args.nsamples), "--seqlen", str(args.seqlen), "--eval-dataset", "none", "--time-dense-pass",
            "--log-level", "WARNING", "--report", str(Path(args.out_dir) / f"{method}.json")]


def planned(argv: list[str]) -> dict[str, dict]:
    """Report path -> {command, config it resolves to now} of every method this command runs."""
    args = build_parser().parse_args(argv)
    return {str(Path(args.out_dir) / f"{m}.json"): planned_prune(cell_command(args, m)) for m in METHODS}


def recorded(argv: list[str]) -> dict[str, dict]:
    return {path: rec for path in planned(argv) if (rec := prune_report(path))}


def table(rows: list[dict], setting: str, stamp: str = "") -> str:
    r0 = rows[0]
    lines = [stamp, ""] if stamp else []
    lines += [f"Model `{r0['model']}`, {setting}; calibration: {r0['calibration']}; "
              f"torch threads {r0['versions']['threads']}", "",
              "| method | prune s | dense pass s | prune / dense pass | peak RSS MiB |", "|---|---|---|---|---|"]
    lines += [f"| {r['config']['method']} | {r['prune_seconds']:.1f} | {r['dense_pass_seconds']:.1f} | "
              f"{r['prune_over_dense_pass']:.2f} | {r['peak_rss_mb']:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = build_parser().parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for method in METHODS:
        report = out / f"{method}.json"
        if not report.exists():
            subprocess.run([sys.executable, *cell_command(args, method)[1:]], check=True)
        rows.append(json.loads(report.read_text()))
    command = current_command()
    record = provenance(command, {path: p["config"] for path, p in planned(sys.argv[1:]).items()})
    text = table(rows, args.setting, markdown_stamp(record))
    Path(str(out) + ".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
