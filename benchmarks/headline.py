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

from benchmarks.common import (
    RESULTS,
    cell_config,
    markdown_table,
    open_bench,
    perplexities,
    prune_and_evaluate,
    prune_options,
    read_records,
    record,
    run_cells,
    setting_name,
    stamp,
    write_block,
)
from crepe.run.options import RunOptions

SETTINGS = ("0.5", "2:4", "0.7")
CELLS: dict[str, tuple[str, dict[str, Any]]] = {  # row label -> (method, other PruneConfig fields)
    "SparseGPT": ("sparsegpt", {}),
    "Wanda": ("wanda", {}),
    "RIA": ("ria", {}),
    "crepe mask-only (--update none)": ("crepe", {"update": "none"}),
    "crepe default (sweep + ADMM)": ("crepe", {}),
}
OUT = RESULTS / "headline"
TABLE = RESULTS / "headline.md"
EVAL_WINDOWS = 24  # per text: the protocol of docs/quality.md


def cell_name(label: str, setting: str) -> str:
    method, prune = CELLS[label]
    return f"{method}{'_' + prune['update'] if 'update' in prune else ''}__{setting_name(setting)}"


def base_options(model: str) -> RunOptions:
    return RunOptions(model=model, max_eval_windows=EVAL_WINDOWS)


def planned(model: str) -> dict[str, RunOptions]:
    """Cell name -> its options, SparseGPT first in every setting (the ratio's reference)."""
    base = base_options(model)
    return {cell_name(label, s): prune_options(base, method, s, **prune)
            for s in SETTINGS for label, (method, prune) in CELLS.items()}


def run(model: str, out: Path) -> None:
    plan = planned(model)
    base = base_options(model)
    bench = open_bench(base)
    if not (out / "dense.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        config = {k: v for k, v in cell_config(base, cell="dense").items() if k != "prune_config"}
        dense = record(config, ppl=perplexities(bench, base), eval={k: p for k, (_, p) in bench.evals.items()})
        run_cells(["dense"], out, lambda _: dense)
    run_cells(plan, out, lambda name: prune_and_evaluate(bench, plan[name], cell=name))


def _ratio(rep: dict, ref: dict | None) -> str:
    return f"{rep['prune_cpu_seconds'] / ref['prune_cpu_seconds']:.2f}" if ref else "–"


def table(out: Path) -> str:
    """The headline table: PPL per text and setting, and the CPU-time ratio to SparseGPT's."""
    records = read_records(out, "*__*.json")
    if not records:
        return "no results yet"
    dense = read_records(out, "dense.json").get("dense", {"ppl": {}})
    texts = list(next(iter(records.values()))["ppl"])
    header = ["method"] + [f"{s} {t}" for s in SETTINGS for t in texts] + [f"CPU x SparseGPT {s}" for s in SETTINGS]
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
    lines = [stamp(records.values(), out), "",
             f"SmolLM2-135M; calibration {first['calibration']}; PPL on {protocol}; "
             "dense " + ", ".join(f"{t} {v:.2f}" for t, v in dense["ppl"].items()) + ". "
             "CPU x SparseGPT: process CPU time of the prune over SparseGPT's at the same setting, same process.",
             "", *markdown_table(header, rows)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=RunOptions.model)
    ap.add_argument("--out-dir", type=Path, default=OUT)
    ap.add_argument("--table", action="store_true", help="only rebuild the table from the records")
    ap.add_argument("--readme", type=Path, help="also write the table between README's headline markers")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    if not args.table:
        run(args.model, args.out_dir)
    body = table(args.out_dir)
    if args.out_dir == OUT:
        TABLE.write_text(body + "\n")
    print(body)
    if args.readme:
        write_block(args.readme, "headline", body)


if __name__ == "__main__":
    main()
