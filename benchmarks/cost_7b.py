"""The cost target at a 7B shape: one decoder layer of Llama-2-7B's shape, pruned on CPU (issue 22).

SmolLM2's ratio (``benchmarks.cost_ratio``) is a small model's: its linears are 576 to 1,536 wide, so
the per-linear solves weigh little next to the layer forwards. The solves grow as out x in^2 per
ADMM iteration and the forwards as tokens x parameters, so at a 7B shape the split differs. This
prunes one decoder layer of the synthetic Llama-2-7B shape (random weights: time only, never
quality) with the issue table's rows, through :func:`benchmarks.common.prune` (the library's path),
on the headline's 16 x 512 wikivital calibration (tokenised before any timing), one process per
setting, SparseGPT first. Each
row's record keeps its process CPU time and the peak resident memory its prune added above the
loaded model (the kernel's high-water mark, reset before each prune, after the memory earlier
prunes freed went back to the system). Every decoder layer of a
Llama has this shape, so 32 layers cost about 32 times as much; that is arithmetic, not a run.

    python -m benchmarks.tools.make_synthetic_llama --shape llama-2-7b --layers 1 --out /work/scale/llama-2-7b-1layer
    OMP_NUM_THREADS=1 python -m benchmarks.cost_7b --model /work/scale/llama-2-7b-1layer --settings 2:4
    python -m benchmarks.cost_7b --table
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
from pathlib import Path
from typing import Any

import torch

from benchmarks import common
from benchmarks.common import Table
from benchmarks.headline import CELLS, LABELS, base_options
from crepe.data.prepare import dataset_tokens
from crepe.io.memory import release_freed_memory

log = logging.getLogger("cost_7b")
SETTINGS = ("2:4", "0.7")  # the rows for the 7B timing
ROWS = ("SparseGPT", "ADMM-Grad", "ALPS", "crepe mask-only (--update none)", "crepe default (--update admm-grad)")
MODEL = "/work/scale/llama-2-7b-1layer"
OUT = common.RESULTS / "cost_7b"
TABLES = [Table("results/cost_7b.md", tuple(f"python -m benchmarks.cost_7b --model {MODEL} --settings {s}" for s in SETTINGS),
                covers=("results/cost_7b/*",))]


def options(model: str, setting: str) -> dict[str, Any]:
    """Row label -> its options at ``setting``: the headline's cells on ``model``, no evaluation."""
    base = base_options(model)
    return {label: common.prune_options(base, CELLS[label][0], setting, **CELLS[label][1]) for label in ROWS}


def shape(model: str) -> dict[str, Any]:
    """The checkpoint's shape from its config.json (the path is this machine's; the shape is what was timed)."""
    path = Path(model) / "config.json"
    if not path.is_file():
        return {"config.json": "missing"}
    cfg = json.loads(path.read_text())
    return {k: cfg.get(k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                    "num_key_value_heads", "vocab_size")}


def config(model: str, setting: str) -> dict[str, Any]:
    return {"setting": setting, "shape": shape(model),
            "rows": {label: common.cell_config(opts) for label, opts in options(model, setting).items()}}


def _rss_kib(field: str) -> int | None:
    """VmHWM / VmRSS of this process in KiB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's resident high-water mark (Linux ``clear_refs`` 5); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(bench: common.Bench, model: str, setting: str) -> dict[str, Any]:
    """Each row's process CPU seconds and the peak memory its prune added (GiB, None where unknown)."""
    seconds: dict[str, float] = {}
    added: dict[str, float | None] = {}
    base = base_options(model)
    dataset_tokens(bench.tokenizer, base.calib_dataset, "calibration")  # tokenised once, before any timing
    for label, opts in options(model, setting).items():
        gc.collect()
        release_freed_memory()  # what earlier prunes freed goes back to the system, so "before" is live memory
        before = _rss_kib("VmRSS")
        reset = _reset_peak()
        seconds[label] = common.prune(bench, opts)["prune_cpu_seconds"]
        peak = _rss_kib("VmHWM")
        added[label] = (peak - before) / 2**20 if reset and peak is not None and before is not None else None
        log.info("%s %s: %.1f s CPU, +%s GiB", setting, label, seconds[label],
                 f"{added[label]:.2f}" if added[label] is not None else "?")
    return common.record(config(model, setting), seconds=seconds, peak_added_gib=added,
                         threads=torch.get_num_threads(), calibration=f"{base.nsamples} x {base.seqlen} {base.calib_dataset}")


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    args = build_parser().parse_args(argv)
    return {str(args.out_dir / f"{common.setting_name(s)}.json"): {"command": None, "config": config(args.model, s)}
            for s in common.chosen_settings(args.settings, SETTINGS)}


def recorded(argv: list[str]) -> dict[str, dict]:
    return common.stored_cells(planned(argv))


def table(out: Path) -> str:
    records = common.read_records(out)
    if not records:
        return "no results yet"
    first = next(iter(records.values()))
    dims = first["provenance"]["config"]["shape"]
    header = ["row", *(f"{LABELS[s]} CPU s" for s in SETTINGS), *(f"{LABELS[s]} ×SparseGPT" for s in SETTINGS),
              *(f"{LABELS[s]} peak added GiB" for s in SETTINGS)]
    recs = [records.get(common.setting_name(s)) for s in SETTINGS]
    rows = []
    for label in ROWS:
        secs = [r["seconds"][label] if r else None for r in recs]
        base = [r["seconds"]["SparseGPT"] if r else None for r in recs]
        mem = [r["peak_added_gib"][label] if r else None for r in recs]
        rows.append([label, *(f"{s:.0f}" if s is not None else "–" for s in secs),
                     *(f"{s / b:.2f}" if s is not None else "–" for s, b in zip(secs, base)),
                     *(f"{m:.2f}" if m is not None else "–" for m in mem)])
    return "\n".join([common.stamp(records.values(), out), "",
                      (f"One decoder layer of the Llama-2-7B shape (hidden {dims.get('hidden_size')}, intermediate "
                       f"{dims.get('intermediate_size')}, {dims.get('num_attention_heads')} heads; random weights: time "
                       f"only), calibration {first['calibration']}, {first['threads']} thread(s), CPU. Process CPU time "
                       "of one prune per row in one process (SparseGPT first), its ratio to SparseGPT's, and the peak "
                       "resident memory the prune added above the loaded model (freed memory returned to the system before each "
                       "prune). Each Llama decoder layer has this "
                       "shape, so a whole 7B costs about 32 times these seconds (arithmetic, not a run)."), "",
                      *common.markdown_table(header, rows)])


def build_parser() -> argparse.ArgumentParser:
    ap = common.settings_parser(__doc__, SETTINGS, OUT)
    ap.set_defaults(model=MODEL)
    return ap


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    by_name = {common.setting_name(s): s for s in common.chosen_settings(args.settings, SETTINGS)}
    if not args.table:
        if not (Path(args.model) / "config.json").is_file():
            raise SystemExit(f"{args.model} is not a checkpoint folder; make one with "
                             f"python -m benchmarks.tools.make_synthetic_llama --shape llama-2-7b --layers 1 --out {args.model}")
        bench = common.open_bench(base_options(args.model), second_text=False)
        common.run_cells(by_name, args.out_dir, lambda name: measure(bench, args.model, by_name[name]))
    body = table(args.out_dir)
    if args.out_dir.resolve().parent == common.RESULTS:
        (common.RESULTS / f"{args.out_dir.name}.md").write_text(body + "\n")
    print(body)


if __name__ == "__main__":
    main()
