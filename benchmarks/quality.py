"""Weight reconstruction bench (issue 12): scorer x update x sparsity, each cell pruned as ``crepe.prune`` prunes.

One process loads the model once; every cell restores the dense weights and prunes through
``crepe.run.job.run`` with ``--update`` as a config field (``benchmarks.common``), then evaluates on
the wikivital test split and on the second text (the CPython language reference; calibration stays
on wikivital). One JSON record per cell under ``--out-dir``; finished cells are skipped on re-run;
``--table`` only rebuilds the tables (``--doc`` also writes them into a markdown file's block).

    python -m benchmarks.quality --settings 0.5,2:4,0.7 --cells sparsegpt,crepe+sweep,crepe+obs
    python -m benchmarks.quality --settings 2:4 --cells crepe+sweep-admm --compose permute --tag permute
    python -m benchmarks.quality --table --out-dir DIR --doc NOTES.md   # NOTES.md has a quality:DIR block

Prune cost: process CPU time of the prune call (OpenMP waits passive, so CPU time counts work).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    RESULTS,
    markdown_table,
    open_bench,
    prune_and_evaluate,
    prune_options,
    read_records,
    run_cells,
    run_dense,
    setting_name,
    stamp,
    write_block,
)
from crepe.config import AllocationConfig, PermuteConfig, RepruneConfig
from crepe.methods.registry import update_names
from crepe.run.options import RunOptions

SETTINGS = ("0.5", "0.6", "0.7", "2:4", "4:8")
SCORERS = ("crepe", "wanda", "ria")
CELLS = ("sparsegpt", *(f"{s}+{u}" for s in SCORERS for u in update_names()))  # scorer+update, or SparseGPT itself
COMPOSITIONS = ("permute", "owl", "dsnot")


def composition(compose: str) -> dict[str, Any]:
    """PruneConfig fields that turn on the composition steps named in ``compose`` (comma-separated)."""
    names = [c for c in compose.split(",") if c]
    unknown = set(names) - set(COMPOSITIONS)
    if unknown:
        raise SystemExit(f"unknown --compose {sorted(unknown)}; choose from {', '.join(COMPOSITIONS)}")
    return {"permute": PermuteConfig() if "permute" in names else None,
            "allocation": AllocationConfig(method="owl") if "owl" in names else AllocationConfig(),
            "repruning": RepruneConfig() if "dsnot" in names else None}


def cell_name(cell: str, setting: str, tag: str) -> str:
    return f"{cell.replace('+', '_')}__{setting_name(setting)}" + (f"__{tag}" if tag else "")


def cell_options(base: RunOptions, cell: str, setting: str, compose: str) -> RunOptions:
    """The run options of one cell: ``scorer+update`` (or ``sparsegpt``) at ``setting``."""
    method, _, update = cell.partition("+")
    if cell not in CELLS:
        raise SystemExit(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
    return prune_options(base, method, setting, update=update or None, **composition(compose))


def planned(args: argparse.Namespace) -> dict[str, RunOptions]:
    """Cell name -> its run options, for every setting x cell of this command."""
    base = RunOptions(model=args.model, calib_dataset=args.dataset, eval_dataset=args.dataset,
                      nsamples=args.nsamples, seqlen=args.seqlen, eval_seqlen=args.eval_seqlen,
                      max_eval_windows=args.max_eval_windows)
    return {cell_name(c, s, args.tag): cell_options(base, c, s, args.compose)
            for s in args.settings.split(",") for c in args.cells.split(",")}


def run(args: argparse.Namespace) -> None:
    plan = planned(args)
    base = next(iter(plan.values()))
    bench = open_bench(base, second_text=not args.no_second_text)
    out = Path(args.out_dir)
    run_dense(bench, base, out)
    run_cells(plan, out, lambda name: prune_and_evaluate(bench, plan[name], cell=name, tag=args.tag,
                                                         compose=args.compose))


def table(out: Path, tag: str | None = "") -> str:
    """Markdown tables (one per eval text) of the cells of ``tag`` (None: every tag, a row per cell
    and tag): PPL with its ratio to SparseGPT's, then the prune CPU-time ratio to SparseGPT's."""
    every = read_records(out, "*__*.json")
    records = {k: r for k, r in every.items() if tag is None or r["provenance"]["config"]["tag"] == tag}
    if not records:
        return "no results yet"
    dense = read_records(out, "dense.json").get("dense", {"ppl": {}})
    tags = sorted({r["provenance"]["config"]["tag"] for r in records.values()})
    rows = [(c, t) for t in tags for c in CELLS if any(cell_name(c, s, t) in records for s in SETTINGS)]
    first = next(iter(records.values()))

    def sparsegpt(setting: str, t: str) -> dict | None:
        return every.get(cell_name("sparsegpt", setting, t)) or every.get(cell_name("sparsegpt", setting, ""))

    def label(cell: str, t: str) -> str:
        return cell + (f" `{t}`" if t else "")

    lines = [stamp(records.values(), out), "", f"Calibration: {first['calibration']}."]
    lines += [f"Variant `{t}`: composed with {next(r for r in records.values() if r['provenance']['config']['tag'] == t)['provenance']['config']['compose']}."
              for t in tags if t]
    for text, protocol in first["eval"].items():
        body = []
        for cell, t in rows:
            row = [label(cell, t)]
            for s in SETTINGS:
                rep, ref = records.get(cell_name(cell, s, t)), sparsegpt(s, t)
                ratio = f" ({rep['ppl'][text] / ref['ppl'][text]:.3f}x)" if rep and ref and rep is not ref else ""
                row.append(f"{rep['ppl'][text]:.2f}{ratio}" if rep else "–")
            body.append(row)
        lines += ["", f"**{text}** ({protocol}), dense {dense['ppl'].get(text, float('nan')):.2f}", "",
                  *markdown_table(["scorer + update", *SETTINGS], body)]
    body = []
    for cell, t in rows:
        row = [label(cell, t)]
        for s in SETTINGS:
            rep, ref = records.get(cell_name(cell, s, t)), sparsegpt(s, t)
            row.append(f"{rep['prune_cpu_seconds'] / ref['prune_cpu_seconds']:.2f}" if rep and ref else "–")
        body.append(row)
    lines += ["", "Prune CPU time as a ratio to SparseGPT's at the same setting (same process):", "",
              *markdown_table(["scorer + update", *SETTINGS], body)]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=RunOptions.model)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--cells", default=",".join(CELLS), help=f"scorer+update ({', '.join(update_names())}) or sparsegpt")
    ap.add_argument("--dataset", default=RunOptions.calib_dataset, help="calibration split and first eval text")
    ap.add_argument("--nsamples", type=int, default=RunOptions.nsamples)
    ap.add_argument("--seqlen", type=int, default=RunOptions.seqlen)
    ap.add_argument("--eval-seqlen", type=int, default=RunOptions.eval_seqlen)
    ap.add_argument("--max-eval-windows", type=int, default=24)
    ap.add_argument("--no-second-text", action="store_true", help="evaluate on the wikivital test split only")
    ap.add_argument("--out-dir", default=str(RESULTS / "quality" / "c16"))
    ap.add_argument("--tag", default="", help="suffix of the record names (a composed variant)")
    ap.add_argument("--compose", default="", help=f"composition steps on (comma-separated: {', '.join(COMPOSITIONS)})")
    ap.add_argument("--table", action="store_true", help="only print the tables of --out-dir")
    ap.add_argument("--doc", default=None, help="also write every tag's tables into this markdown file, between "
                    "<!-- quality:DIR:start --> and <!-- quality:DIR:end --> (DIR: the folder name)")
    return ap


def main() -> None:
    args = build_parser().parse_args()
    if args.compose and not args.tag:
        raise SystemExit("--compose needs a --tag: its cells are a variant of the plain ones")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    if not args.table:
        run(args)
    out = Path(args.out_dir)
    print(table(out, args.tag))
    if args.doc:
        write_block(Path(args.doc), f"quality:{out.name}", table(out, None))


if __name__ == "__main__":
    main()

