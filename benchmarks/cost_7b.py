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

``--device cuda`` (a GPU machine: ``python -m benchmarks.gpu_check --steps cost`` runs it) times the same
prunes by synchronised wall clock, with the peak GPU memory each one allocated above what was
allocated before it, into ``results/cost_7b_cuda`` (the layers compute there one at a time, as
``crepe.prune --device cuda`` does).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from benchmarks import common
from benchmarks.common import Table
from benchmarks.headline_cells import FLOAT32_ROW, CELLS, DEFAULT_ROW, LABELS, base_options
from benchmarks.tools.make_synthetic_llama import SHAPES, llama_config
from crepe.data.prepare import dataset_tokens
from crepe.io.memory import release_freed_memory
from crepe.models.adapters import get_adapter

log = logging.getLogger("cost_7b")
SETTINGS = ("2:4", "0.7")  # the rows for the 7B timing
ROWS = ("SparseGPT", "ADMM-Grad", "ALPS", "crepe mask-only (--update none)")  # one layer, default --rows: the baselines
PAIR_ROWS = ("SparseGPT", DEFAULT_ROW)  # one layer: the default beside SparseGPT alone, so a moved default re-runs only this
TABLE_ROWS = (*ROWS, DEFAULT_ROW)  # the one-layer table
TWO_LAYER_ROWS = ("SparseGPT", DEFAULT_ROW, FLOAT32_ROW)
ALL_ROWS = (*TABLE_ROWS, FLOAT32_ROW)  # what --rows may name, in table order
SHAPE = "llama-2-7b"
SMOLLM2_VOCAB = 49152  # the tokenizer make_synthetic_llama copies in; the vocabulary grows to it
OUT = common.RESULTS / "cost_7b"
DEVICES = ("cpu", "cuda")  # --device: where the layers compute (cpu: process CPU time; cuda: synchronised wall time)
TABLES = [Table("results/cost_7b.md", tuple(f"python -m benchmarks.cost_7b --settings {s}" for s in SETTINGS)
                + tuple(f"python -m benchmarks.cost_7b --settings {s} --rows '{','.join(PAIR_ROWS)}'"
                        for s in SETTINGS)
                + tuple(f"python -m benchmarks.cost_7b --layers 2 --settings {s} --rows '{','.join(TWO_LAYER_ROWS)}'"
                        for s in SETTINGS), covers=("results/cost_7b/*",))]


def default_model(layers: int) -> str:
    return f"/work/scale/{SHAPE}-{layers}layer"


def device_options(model: str, device: str = "cpu"):
    """The headline's run options on ``model``, with the layers computing on ``device`` (cpu: the
    default, None, so CPU records keep their config)."""
    base = base_options(model)
    return base if device == "cpu" else dataclasses.replace(base, device=device)


def options(model: str, setting: str, rows: tuple[str, ...] = ROWS, device: str = "cpu") -> dict[str, Any]:
    """Row label -> its options at ``setting``: the headline's cells on ``model``, no evaluation."""
    base = device_options(model, device)
    return {label: common.prune_options(base, CELLS[label][0], setting, **CELLS[label][1])
            for label in rows}


def shape(layers: int) -> dict[str, Any]:
    """The synthetic checkpoint's shape (what was timed; the folder's path is this machine's)."""
    cfg = llama_config(SHAPE, layers, max(SHAPES[SHAPE][5], SMOLLM2_VOCAB))
    return {k: cfg[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                "num_key_value_heads", "vocab_size")}


def config(model: str, setting: str, layers: int = 1, rows: tuple[str, ...] = ROWS, device: str = "cpu") -> dict[str, Any]:
    return {"setting": setting, "shape": shape(layers),
            "rows": {label: common.cell_config(opts) for label, opts in options(model, setting, rows, device).items()}}


def clock(device: str) -> Callable[[], float]:
    """Seconds now on ``device``'s clock: process CPU time on the CPU; wall time after the GPU's queued
    work is done on CUDA (its kernels run asynchronously)."""
    if device == "cpu":
        return time.process_time

    def synchronised() -> float:
        torch.cuda.synchronize()
        return time.perf_counter()
    return synchronised


def record_name(setting: str, layers: int, rows: tuple[str, ...] = ROWS) -> str:
    """``<setting>`` (one layer, the baselines; older records hold the default's row too),
    ``<setting>__pair`` (one layer, SparseGPT and the default alone: the default timed without
    re-running the slow baselines) or ``<setting>__<n>layers``."""
    if layers != 1:
        return common.setting_name(setting) + f"__{layers}layers"
    return common.setting_name(setting) + ("__pair" if rows == PAIR_ROWS else "")


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


@contextmanager
def layer_clock(model: torch.nn.Module, now: Callable[[], float] = time.process_time):
    """Yields a list that, after the block, holds each decoder layer's seconds on ``now`` (process CPU by default) in a prune
    run inside it: from the first call of layer i (its statistics pass) to the first call of layer
    i + 1, the last to the block's end (the first includes capturing the layer inputs, the last the
    final accounting). Every row's layers are timed in its own prune, so no two runs are differenced."""
    starts: list[float] = []
    per_layer: list[float] = []

    def mark(index: int):
        def hook(module, args):
            if len(starts) == index:  # the layer's first call: the previous layer is done
                starts.append(now())
        return hook

    handles = [layer.register_forward_pre_hook(mark(i)) for i, layer in enumerate(get_adapter(model).layers(model))]
    try:
        yield per_layer
        end = now()
    finally:
        for handle in handles:
            handle.remove()
    per_layer.extend(b - a for a, b in zip(starts, [*starts[1:], end]))


def measure(bench: common.Bench, model: str, setting: str, layers: int, rows: tuple[str, ...],
            device: str = "cpu") -> dict[str, Any]:
    """Each row's seconds (process CPU; on CUDA synchronised wall), each decoder layer's
    (:func:`layer_clock`), and the peak memory its prune added (GiB, None where unknown: resident
    memory on the CPU, allocated GPU memory on CUDA)."""
    seconds: dict[str, float] = {}
    layer_seconds: dict[str, list[float]] = {}
    added: dict[str, float | None] = {}
    base = device_options(model, device)
    now = clock(device)
    dataset_tokens(bench.tokenizer, base.calib_dataset, "calibration")  # tokenised once, before any timing
    for label, opts in options(model, setting, rows, device).items():
        gc.collect()
        release_freed_memory()  # what earlier prunes freed goes back to the system, so "before" is live memory
        before, reset = _memory_mark(device)
        start = now()
        with layer_clock(bench.model, now) as per_layer:
            report = common.prune(bench, opts)
        seconds[label] = report["prune_cpu_seconds"] if device == "cpu" else now() - start
        layer_seconds[label] = per_layer
        added[label] = _memory_added(device, before, reset)
        log.info("%s %s: %.1f s %s, +%s GiB", setting, label, seconds[label], "CPU" if device == "cpu" else "wall",
                 f"{added[label]:.2f}" if added[label] is not None else "?")
    gpu = {"clock": "cuda wall", "memory": "GPU allocated", "device_name": torch.cuda.get_device_name()} if device != "cpu" else {}
    return common.record(config(model, setting, layers, rows, device), seconds=seconds, layer_seconds=layer_seconds,
                         peak_added_gib=added, threads=torch.get_num_threads(),
                         calibration=f"{base.nsamples} x {base.seqlen} {base.calib_dataset}", **gpu)


def _memory_mark(device: str) -> tuple[int | None, bool]:
    """(memory now in KiB, whether the peak was reset): resident memory on the CPU, allocated GPU memory on CUDA."""
    if device == "cpu":
        before = _rss_kib("VmRSS")
        return before, _reset_peak()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated() // 1024, True


def _memory_added(device: str, before: int | None, reset: bool) -> float | None:
    """GiB the peak rose above ``before`` (:func:`_memory_mark`) since the mark, None where unknown."""
    peak = _rss_kib("VmHWM") if device == "cpu" else torch.cuda.max_memory_allocated() // 1024
    return (peak - before) / 2**20 if reset and peak is not None and before is not None else None


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    args = build_parser().parse_args(argv)
    model, rows = args.model or default_model(args.layers), chosen_rows(args.rows)
    return {str(out_dir(args) / f"{record_name(s, args.layers, rows)}.json"):
            {"command": None, "config": config(model, s, args.layers, rows, args.device)}
            for s in common.chosen_settings(args.settings, SETTINGS)}


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as stored, its rows cut to those the command plans: a baselines
    record made when that run also timed the default keeps the default's row, which the table reads
    from the pair record instead (:func:`_one_layer_source`)."""
    plan = planned(argv)
    found = common.stored_cells(plan)
    for key, rec in found.items():
        rows = rec["config"].get("rows")
        if isinstance(rows, dict):
            rec["config"] = {**rec["config"], "rows": {k: v for k, v in rows.items() if k in plan[key]["config"]["rows"]}}
    return found


def chosen_rows(text: str | None) -> tuple[str, ...]:
    """``--rows`` as a tuple in table order, SparseGPT (the ratio's reference) always first; exit with
    one line on an unknown label."""
    picked = ROWS if text is None else common.chosen(text, ALL_ROWS, "--rows")
    return tuple(label for label in ALL_ROWS if label in picked or label == "SparseGPT")


def _cells(rec: dict | None, label: str) -> tuple[float | None, float | None, float | None]:
    """(seconds, ratio to SparseGPT, peak added GiB) of ``label`` in ``rec``."""
    if rec is None or label not in rec["seconds"]:
        return None, None, None
    secs = rec["seconds"][label]
    return secs, secs / rec["seconds"]["SparseGPT"], rec["peak_added_gib"][label]


def _layers(rec: dict | None, label: str) -> list[float] | None:
    """Per-layer seconds of ``label`` in ``rec`` (:func:`layer_clock`), None where not recorded."""
    found = None if rec is None else rec.get("layer_seconds", {}).get(label)
    return found if found and len(found) >= 2 else None


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _one_layer_source(one: dict | None, pair: dict | None, label: str) -> dict | None:
    """The one-layer record that times ``label``: for the default the pair record (re-timed beside its
    own SparseGPT, its ratio's reference), when present; else the run of every row."""
    return pair if pair is not None and label in PAIR_ROWS and label != "SparseGPT" else one


def table(out: Path) -> str:
    records = common.read_records(out)
    if not records:
        return "no results yet"
    one = {s: records.get(record_name(s, 1)) for s in SETTINGS}
    pair = {s: records.get(record_name(s, 1, PAIR_ROWS)) for s in SETTINGS}
    two = {s: records.get(record_name(s, 2)) for s in SETTINGS}
    first = next(iter(records.values()))
    dims = first["provenance"]["config"]["shape"]
    gpu = first.get("clock") == "cuda wall"
    unit = "wall s" if gpu else "CPU s"
    header = ["row", *(f"{LABELS[s]} {unit}" for s in SETTINGS), *(f"{LABELS[s]} ×SparseGPT" for s in SETTINGS),
              *(f"{LABELS[s]} peak added GiB" for s in SETTINGS)]
    rows = []
    for label in TABLE_ROWS:
        cells = [_cells(_one_layer_source(one[s], pair[s], label), label) for s in SETTINGS]
        rows.append([label, *(_fmt(c[0], ".0f") for c in cells), *(_fmt(c[1], ".2f") for c in cells),
                     *(_fmt(c[2], ".2f") for c in cells)])
    timing = (f"{first['device_name']} (CUDA), the layers computing there one at a time. Wall time of one prune per row "
              "in one process (SparseGPT first), the GPU's queued work finished at both ends, its ratio to SparseGPT's, "
              "and the peak GPU memory the prune allocated above what was allocated before it." if gpu else
              f"{first['threads']} thread(s), CPU. Process CPU time of one prune per row in one process (SparseGPT "
              "first), its ratio to SparseGPT's, and the peak resident memory the prune added above the loaded model "
              "(freed memory returned to the system before each prune).")
    lines = [common.stamp(records.values(), out), "",
             (f"Llama-2-7B's shape (hidden {dims.get('hidden_size')}, intermediate {dims.get('intermediate_size')}, "
              f"{dims.get('num_attention_heads')} heads; random weights: time only), calibration {first['calibration']}, "
              + timing)]
    if any(one.values()) or any(pair.values()):
        lines += ["", ("**One decoder layer.** The first layer's two streams are equal, so the default carries no dense "
                       "stream there: this is its cost without the dense target."), "", *common.markdown_table(header, rows)]
    if any(pair.values()):
        timed = "; ".join(f"{LABELS[s]} {rec['seconds']['SparseGPT']:.0f} s at {rec['provenance']['commit']}"
                          for s, rec in pair.items() if rec is not None)
        lines += ["", (f"The default's row is from a later run of SparseGPT and the default alone (`--rows`), its ratio "
                       f"to the SparseGPT timed in that run ({timed}); the other rows are from the baselines' run.")]
    if any(two.values()):
        header2 = ["row", *(f"{LABELS[s]} {unit}" for s in SETTINGS), *(f"{LABELS[s]} ×SparseGPT" for s in SETTINGS),
                   *(f"{LABELS[s]} layer 1 / layer 2 {unit}" for s in SETTINGS),
                   *(f"{LABELS[s]} second layer ×SparseGPT" for s in SETTINGS)]
        rows2 = []
        timed_rows = {label for rec in two.values() if rec is not None for label in rec["seconds"]}
        for label in (label for label in ALL_ROWS if label in timed_rows):  # table order
            cells = [_cells(two[s], label) for s in SETTINGS]
            split = [_layers(two[s], label) for s in SETTINGS]
            second = []
            for s, c, layers in zip(SETTINGS, cells, split):
                reference = _layers(two[s], "SparseGPT")
                if layers is not None and reference is not None:  # each layer timed inside its own prune
                    second.append(layers[1] / reference[1])
                    continue
                base = pair[s] if pair[s] is not None else one[s]  # older records: two runs differenced
                c1, ref1, ref2 = _cells(base, label), _cells(base, "SparseGPT"), _cells(two[s], "SparseGPT")
                known = None not in (c[0], c1[0], ref1[0], ref2[0])
                second.append((c[0] - c1[0]) / (ref2[0] - ref1[0]) if known else None)
            rows2.append([label, *(_fmt(c[0], ".0f") for c in cells), *(_fmt(c[1], ".2f") for c in cells),
                          *("–" if x is None else f"{x[0]:.0f} / {x[1]:.0f}" for x in split),
                          *(_fmt(v, ".2f") for v in second)])
        lines += ["", ("**Two decoder layers.** The second layer carries the dense stream (one more layer forward and "
                  "the shift), as every layer after the first of a whole model does. Layer 1 / layer 2: each decoder "
                  "layer's seconds inside the same prune (from the layer's first forward to the next layer's; "
                  "the first includes capturing the inputs, the second the final accounting). Second layer: the "
                  "second layer's seconds over SparseGPT's second layer's in the same run, the per-layer ratio of a "
                  "deep model."), "", *common.markdown_table(header2, rows2)]
    lines += ["", "A whole 7B has 32 such layers: about 32 times the second layer's seconds (arithmetic, not a run)."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = common.settings_parser(__doc__, SETTINGS, OUT)
    ap.set_defaults(model=None, out_dir=None)
    ap.add_argument("--device", default="cpu", choices=DEVICES,
                    help="where the layers compute: cpu (process CPU time) or cuda (synchronised wall time; "
                         "records in results/cost_7b_cuda unless --out-dir)")
    ap.add_argument("--layers", type=int, default=1, help="decoder layers of the synthetic checkpoint (1 or 2)")
    ap.add_argument("--rows", default=None, help="comma-separated row labels (default: all; SparseGPT always runs)")
    return ap


def out_dir(args: argparse.Namespace) -> Path:
    """--out-dir, else results/cost_7b (results/cost_7b_cuda with --device cuda)."""
    if args.out_dir is not None:
        return args.out_dir
    return OUT if args.device == "cpu" else OUT.with_name(f"{OUT.name}_{args.device}")


def ensure_checkpoint(model: str, layers: int) -> None:
    """Make the synthetic checkpoint when ``model`` holds none; exit with one line when it holds another shape."""
    folder = Path(model)
    if not (folder / "config.json").is_file():  # made beside it, then renamed: two settings started together both see it whole
        log.info("making %s (%s shape, %d layer(s))", folder, SHAPE, layers)
        scratch = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        subprocess.run([sys.executable, "-m", "benchmarks.tools.make_synthetic_llama", "--shape", SHAPE,
                        "--layers", str(layers), "--out", str(scratch)], check=True)
        try:
            scratch.rename(folder)
        except OSError:  # another process made it first
            shutil.rmtree(scratch, ignore_errors=True)
    found = json.loads((folder / "config.json").read_text())
    if any(found.get(k) != v for k, v in shape(layers).items()):
        raise SystemExit(f"{folder} is not the synthetic {SHAPE} shape with {layers} layer(s) this benchmark records; "
                         "pass another --model folder")


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    if args.layers < 1:
        raise SystemExit(f"--layers must be at least 1, got {args.layers}")
    model, rows = args.model or default_model(args.layers), chosen_rows(args.rows)
    by_name = {record_name(s, args.layers, rows): s for s in common.chosen_settings(args.settings, SETTINGS)}
    out = out_dir(args)
    if not args.table:
        if args.device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device here (torch.cuda.is_available() is False)")
        ensure_checkpoint(model, args.layers)
        bench = common.open_bench(device_options(model, args.device), second_text=False)
        common.run_cells(by_name, out, lambda name: measure(bench, model, by_name[name], args.layers, rows, args.device))
    common.publish(out, table(out))


if __name__ == "__main__":
    main()
