"""The README's headline table: crepe's default against the baselines on SmolLM2-135M.

SparseGPT, Wanda, RIA, crepe mask-only (``--update none``) and crepe's default (the sweep + ADMM)
at 50%, 2:4 and 70%, each pruned through ``crepe.run.job.run`` with the default 16 x 512 wikivital
calibration; PPL on the wikivital test windows and on the second text (the CPython language
reference); prune CPU time as a ratio to SparseGPT's, measured in the same process.

    OMP_NUM_THREADS=1 python -m benchmarks.headline              # run the missing cells, write the table
    python -m benchmarks.headline --table                        # only rebuild results/headline.md
    python -m benchmarks.headline --table --readme README.md     # also fill README's headline block
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from benchmarks import common
from benchmarks.common import Table
from crepe.io.files import read_json
from crepe.run.options import RunOptions

SETTINGS = ("0.5", "2:4", "0.7")
LABELS = {"0.5": "50%", "2:4": "2:4", "0.7": "70%"}
CELLS: dict[str, tuple[str, dict[str, Any]]] = {  # row label -> (method, other PruneConfig fields)
    "SparseGPT": ("sparsegpt", {}),
    "Wanda": ("wanda", {}),
    "RIA": ("ria", {}),
    "crepe mask-only (--update none)": ("crepe", {"update": "none"}),
    "crepe default (sweep + ADMM)": ("crepe", {}),
}
OUT = common.RESULTS / "headline"
TABLE = common.RESULTS / "headline.md"
EVAL_WINDOWS = 24  # per text: the protocol of docs/quality.md
TABLES = [Table("results/headline.md", ("python -m benchmarks.headline",), covers=("results/headline/*",))]


def cell_name(label: str, setting: str) -> str:
    method, prune = CELLS[label]
    return f"{method}{'_' + prune['update'] if 'update' in prune else ''}__{common.setting_name(setting)}"


def base_options(model: str) -> RunOptions:
    return RunOptions(model=model, max_eval_windows=EVAL_WINDOWS)


def cells(model: str) -> dict[str, RunOptions]:
    """Cell name -> its options, SparseGPT first in every setting (the ratio's reference)."""
    base = base_options(model)
    return {cell_name(label, s): common.prune_options(base, method, s, **prune)
            for s in SETTINGS for label, (method, prune) in CELLS.items()}


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    args = build_parser().parse_args(argv)
    return {str(args.out_dir / f"{name}.json"): {"command": None, "config": common.cell_config(opts, cell=name)}
            for name, opts in cells(args.model).items()}


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as stored, for the cells that exist."""
    found = {path: read_json(Path(path)) for path in planned(argv) if Path(path).is_file()}
    return {path: {"command": rec["provenance"]["argv"], "config": rec["provenance"]["config"]}
            for path, rec in found.items()}


def run(model: str, out: Path) -> None:
    plan = cells(model)
    base = base_options(model)
    bench = common.open_bench(base)
    common.run_dense(bench, base, out)
    common.run_cells(plan, out, lambda name: common.prune_and_evaluate(bench, plan[name], cell=name))


def _ratio(rep: dict, ref: dict | None) -> str:
    return f"{rep['prune_cpu_seconds'] / ref['prune_cpu_seconds']:.2f}" if ref else "–"


def table(out: Path) -> str:
    """The headline table: PPL per text and setting, and the CPU-time ratio to SparseGPT's."""
    records = common.read_records(out, "*__*.json")
    if not records:
        return "no results yet"
    dense = common.read_records(out, "dense.json").get("dense", {"ppl": {}})
    texts = list(next(iter(records.values()))["ppl"])
    header = (["method"] + [f"{LABELS[s]} {t}" for s in SETTINGS for t in texts]
              + [f"CPU ×SparseGPT {LABELS[s]}" for s in SETTINGS])
    rows = []
    for label in CELLS:
        row = [label]
        for s in SETTINGS:
            rep = records.get(cell_name(label, s))
            row += [f"{rep['ppl'][t]:.2f}" if rep else "–" for t in texts]
        for s in SETTINGS:
            rep, ref = records.get(cell_name(label, s)), records.get(cell_name("SparseGPT", s))
            row.append(_ratio(rep, ref) if rep else "–")
        rows.append(row)
    first = next(iter(records.values()))
    protocol = "; ".join(f"{t}: {p}" for t, p in first["eval"].items())
    lines = [common.stamp(records.values(), out), "",
             f"SmolLM2-135M; calibration {first['calibration']}; PPL on {protocol}; "
             "dense " + ", ".join(f"{t} {v:.2f}" for t, v in dense["ppl"].items()) + ". "
             "CPU ×SparseGPT: process CPU time of the prune over SparseGPT's at the same setting, same process.",
             "", *common.markdown_table(header, rows)]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=RunOptions.model)
    ap.add_argument("--out-dir", type=Path, default=OUT)
    ap.add_argument("--table", action="store_true", help="only rebuild the table from the records")
    ap.add_argument("--readme", type=Path, help="also write the table between README's headline markers")
    return ap


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    if not args.table:
        run(args.model, args.out_dir)
    body = table(args.out_dir)
    if args.out_dir == OUT:
        TABLE.write_text(body + "\n")
    print(body)
    if args.readme:
        common.write_block(args.readme, "headline", body)


if __name__ == "__main__":
    main()
