"""Scale benchmark: prune a large checkpoint streamed through the public CLI and compare its time with
a floor measured in the same run; peak memory per model size, with the per-layer arithmetic.

    python -m benchmarks.tools.make_synthetic_llama --shape llama-2-7b --out /work/scale/llama-2-7b-shape
    python -m benchmarks.scale --model /work/scale/llama-2-7b-shape --out results/scale/llama-2-7b.json

Floor = reading every tensor of the checkpoint once + writing it once + two compute passes over the
calibration set (collect statistics, propagate pruned outputs). The compute pass is measured as one
streamed dense pass through the engine minus the time its store spent reading layers. The prune is
``python -m crepe.prune --model DIR --offload disk --save OUT`` in a subprocess; its report gives
prune time and peak RSS. The saved folder is then checked: sharded, source dtype, zeros per linear.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # the floor runs with the same allocator as the prune (see crepe.io.memory)
    from crepe.io.memory import reexec_with_hugepage_malloc

    reexec_with_hugepage_malloc()

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from benchmarks.common import Table
from crepe.data.prepare import calibration_set  # noqa: E402
from crepe.engine.layerwise import run_layerwise  # noqa: E402
from crepe.io.files import write_json_atomic  # noqa: E402
from crepe.io.memory import reuse_freed_memory  # noqa: E402
from crepe.io.provenance import current_command, provenance  # noqa: E402
from crepe.streaming.checkpoint import Checkpoint  # noqa: E402
from crepe.streaming.open import open_streamed  # noqa: E402

TABLES = [Table("results/scale/llama-2-7b.json", ("python -m benchmarks.scale",), covers=("results/scale/llama-2-7b_*",))]


class Clock:
    """Wall and CPU (all threads of this process) seconds, added up over ``with`` blocks."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._w, self._c = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c


def time_io(folder: Path, scratch: Path) -> tuple[Clock, Clock]:
    """Clocks of reading every shard's tensors once (materialised: safetensors maps files lazily),
    and of writing them once (into ``scratch``). The written shards are kept until all are written,
    as the prune keeps its output: a shard deleted right after its write never has to reach the disk,
    so its dirty pages cost nothing (the floor of the first benchmark runs did that, and was too low)."""
    ckpt = Checkpoint.open(folder)
    read, write = Clock(), Clock()
    copy = scratch / "floor-copy"
    copy.mkdir()
    for shard in sorted(set(ckpt.weight_map.values())):
        with read:
            with safe_open(str(folder / shard), framework="pt") as handle:
                tensors = {k: handle.get_tensor(k).clone() for k in handle.keys()}
        with write:
            save_file(tensors, str(copy / shard), metadata={"format": "pt"})
        del tensors
    shutil.rmtree(copy)
    return read, write


class TimedStore:
    """Wraps a layer store and adds up the seconds spent loading and releasing layers."""

    def __init__(self, inner):
        self.inner, self.device, self.compute_dtype = inner, inner.device, inner.compute_dtype
        self.io = Clock()

    def _timed(self, fn, *args):
        with self.io:
            fn(*args)

    def load(self, index, layer):
        self._timed(self.inner.load, index, layer)

    def settle(self, index, layer):
        self.inner.settle(index, layer)

    def release(self, index, layer):
        self._timed(self.inner.release, index, layer)


def time_compute_pass(folder: Path, nsamples: int, seqlen: int) -> tuple[Clock, Clock]:
    """Clocks of one dense pass over the calibration set: (compute, the store's reading)."""
    model = open_streamed(folder)
    from transformers import AutoTokenizer

    calib, _ = calibration_set(AutoTokenizer.from_pretrained(folder), "wikivital", nsamples, seqlen, 0)
    store = TimedStore(model.crepe_layer_store)
    total = Clock()
    with total:
        run_layerwise(model, calib, (), lambda *a: False, store=store, desc="dense pass")
    compute = Clock()
    compute.wall, compute.cpu = total.wall - store.io.wall, total.cpu - store.io.cpu
    return compute, store.io


def check_output(out: Path) -> dict:
    """Shards, dtypes and the zero fraction of every decoder linear of a saved folder."""
    ckpt = Checkpoint.open(out)
    zeros = size = 0
    dtypes = set()
    per_linear = []
    for name, shard in ckpt.weight_map.items():
        with safe_open(str(out / shard), framework="pt") as handle:
            t = handle.get_tensor(name)
        dtypes.add(str(t.dtype).removeprefix("torch."))
        if ".layers." in name and name.endswith("proj.weight"):
            z = int((t == 0).sum())
            zeros, size = zeros + z, size + t.numel()
            per_linear.append(z / t.numel())
    return {"shards": len(set(ckpt.weight_map.values())), "dtypes": sorted(dtypes), "linear_sparsity": zeros / size,
            "min_linear_sparsity": min(per_linear), "max_linear_sparsity": max(per_linear), "bytes": ckpt.nbytes}


def layer_arithmetic(hidden: int, inter: int, layers: int, vocab: int, kv_heads: int, heads: int,
                     tokens: int, stored_bytes: int = 2) -> dict:
    """Peak-memory estimate of streamed pruning (GiB): one layer in fp32 plus its stored copy, the
    resident embeddings/head, calibration hidden states in and out, and the largest Hessian (SparseGPT)."""
    kv = hidden // heads * kv_heads
    layer = 2 * hidden * hidden + 2 * kv * hidden + 3 * hidden * inter
    resident = 2 * vocab * hidden
    gib = 2**30
    return {"params_billion": round((layers * layer + resident) / 1e9, 2),
            "in_memory_fp32_gib": round((layers * layer + resident) * 4 / gib, 1),
            "in_memory_stored_gib": round((layers * layer + resident) * stored_bytes / gib, 1),
            "one_layer_fp32_gib": round(layer * (4 + stored_bytes) / gib, 2),
            "resident_gib": round(resident * stored_bytes / gib, 2),
            "hidden_states_gib": round(2 * tokens * hidden * 4 / gib, 2),
            "hidden_states_128x2048_gib": round(2 * 128 * 2048 * hidden * 4 / gib, 1),
            "largest_hessian_gib": round(inter * inter * 4 / gib, 2),
            "streamed_estimate_gib": round((layer * (4 + stored_bytes) + resident * stored_bytes
                                            + 2 * tokens * hidden * 4) / gib, 2)}


SHAPES = {"llama-2-7b": (4096, 11008, 32, 32000, 32, 32), "llama-2-13b": (5120, 13824, 40, 32000, 40, 40),
          "llama-2-70b": (8192, 28672, 80, 32000, 8, 64)}


def autogroup() -> str | None:
    """The scheduler group of this process and its niceness (Linux autogroups share the CPU between
    sessions by their group niceness, whatever the processes' own), e.g. "/autogroup-6 nice -10"."""
    try:
        return Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint folder (e.g. from make_synthetic_llama.py)")
    ap.add_argument("--out", required=True, help="JSON results file")
    ap.add_argument("--nsamples", type=int, default=2)
    ap.add_argument("--seqlen", type=int, default=128)
    ap.add_argument("--method", default="crepe")
    ap.add_argument("--update", default="none", help="weight update (crepe.prune --update); the scale target is the "
                    "mask-only streamed prune, so none here, while crepe's own default adds the sweep + ADMM")
    ap.add_argument("--device", default=None)
    ap.add_argument("--skip-floor", action="store_true", help="only run the prune (e.g. on a GPU machine)")
    ap.add_argument("--keep-output", default=None, help="keep the pruned folder here (default: a temporary one)")
    ap.add_argument("--markdown-only", action="store_true", help="only rewrite the .md next to --out from its JSON")
    args = ap.parse_args()
    if args.markdown_only:
        Path(args.out).with_suffix(".md").write_text(markdown(json.loads(Path(args.out).read_text())))
        return 0
    folder = Path(args.model)
    reuse_freed_memory()  # as crepe.prune does: the floor gets the same allocator settings
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=folder.parent))
    out_folder = Path(args.keep_output) if args.keep_output else work / "pruned"
    result: dict = {"model": str(folder), "method": args.method, "update": args.update, "calibration": f"{args.nsamples} x {args.seqlen}",
                    "load_average_start": os.getloadavg()[0], "niceness": os.nice(0), "autogroup": autogroup(),
                    "glibc_tunables": os.environ.get("GLIBC_TUNABLES")}
    try:
        if not args.skip_floor:
            read, write = time_io(folder, work)
            compute, pass_read = time_compute_pass(folder, args.nsamples, args.seqlen)
            result["floor"] = {
                "read_seconds": read.wall, "write_seconds": write.wall, "compute_pass_seconds": compute.wall,
                "dense_pass_read_seconds": pass_read.wall, "floor_seconds": read.wall + write.wall + 2 * compute.wall,
                "floor_cpu_seconds": read.cpu + write.cpu + 2 * compute.cpu}
            print(f"floor: read {read.wall:.1f} s + write {write.wall:.1f} s + 2 x compute pass {compute.wall:.1f} s "
                  f"= {result['floor']['floor_seconds']:.1f} s (CPU {result['floor']['floor_cpu_seconds']:.1f} s)",
                  flush=True)
        report = work / "report.json"
        cmd = [sys.executable, "-m", "crepe.prune", "--model", str(folder), "--method", args.method,
               "--update", args.update, "--sparsity", "0.5", "--offload", "disk", "--nsamples", str(args.nsamples), "--seqlen", str(args.seqlen),
               "--eval-dataset", "none", "--save", str(out_folder), "--overwrite", "--report", str(report)]
        if args.device:
            cmd += ["--device", args.device]
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - start
        rep = json.loads(report.read_text())
        result["prune"] = {"command": " ".join(cmd[1:]), "wall_seconds": wall, "prune_seconds": rep["prune_seconds"],
                           "prune_and_write_seconds": rep["prune_and_write_seconds"], "load_seconds": rep["load_seconds"],
                           "peak_rss_mib": rep["peak_rss_mb"], "realised_sparsity": rep["realised_sparsity"]}
        result["prune"]["prune_and_write_cpu_seconds"] = rep.get("prune_and_write_cpu_seconds")
        if "floor" in result:
            result["prune_over_floor"] = rep["prune_and_write_seconds"] / result["floor"]["floor_seconds"]
            result["prune_over_floor_cpu"] = rep["prune_and_write_cpu_seconds"] / result["floor"]["floor_cpu_seconds"]
        result["output"] = check_output(out_folder)
        print(json.dumps({k: result[k] for k in ("prune", "output")}, indent=1))
        if "prune_over_floor" in result:
            print(f"prune + write = {result['prune_over_floor']:.2f} x the floor in wall time, "
                  f"{result['prune_over_floor_cpu']:.2f} x in CPU time (robust to other load on the machine)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_average_end"] = os.getloadavg()[0]
    tokens = args.nsamples * args.seqlen
    result["arithmetic"] = {name: layer_arithmetic(*shape, tokens=tokens) for name, shape in SHAPES.items()}
    result["provenance"] = provenance(current_command(), {k: v for k, v in vars(args).items()})
    write_json_atomic(args.out, result)
    Path(args.out).with_suffix(".md").write_text(markdown(result))
    return 0


def markdown(r: dict) -> str:
    """The README block: prune vs floor, the saved folder, the per-layer arithmetic per shape."""
    p, o = r["prune"], r["output"]
    lines = [f"Made by `{r['provenance']['command']}` at commit {r['provenance']['commit']}.", "",
             f"`python {p['command']}`", "",
             f"Calibration {r['calibration']} tokens (wikivital), crepe at 50%, streamed on CPU (2 cores)"
             + (f"; machine load average {r['load_average_start']:.1f} at the start, {r['load_average_end']:.1f} at the end, "
                f"this benchmark at niceness {r['niceness']}, scheduler group `{r.get('autogroup')}`; "
                f"floor and prune with GLIBC_TUNABLES={r.get('glibc_tunables')}."
                if "load_average_start" in r else "."), "",
             "| | seconds (wall) | seconds (CPU) |", "|---|---|---|"]
    if "floor" in r:
        f = r["floor"]
        lines += [f"| floor: read once | {f['read_seconds']:.1f} | |", f"| floor: write once (every shard kept until all are written) | {f['write_seconds']:.1f} | |",
                  f"| floor: 2 compute passes | {2 * f['compute_pass_seconds']:.1f} | |",
                  f"| **floor** | **{f['floor_seconds']:.1f}** | **{f['floor_cpu_seconds']:.1f}** |"]
    lines.append(f"| **prune + write (crepe.prune)** | **{p['prune_and_write_seconds']:.1f}** | "
                 f"**{p['prune_and_write_cpu_seconds']:.1f}** |")
    if "prune_over_floor" in r:
        lines.append(f"| ratio to the floor | {r['prune_over_floor']:.2f}x | {r['prune_over_floor_cpu']:.2f}x |")
    lines += ["", f"Peak RSS {p['peak_rss_mib'] / 1024:.2f} GiB. Saved folder: {o['shards']} shards, "
              f"{', '.join(o['dtypes'])}, {o['bytes'] / 1e9:.2f} GB; decoder-linear sparsity {o['linear_sparsity']:.4f} "
              f"(each linear between {o['min_linear_sparsity']:.4f} and {o['max_linear_sparsity']:.4f}).", "",
             "Per-layer arithmetic of streamed pruning (GiB; one layer in fp32 plus its stored copy, the resident "
             "embeddings and head, the calibration hidden states in and out):", "",
             "| shape | params (B) | in memory fp32 | in memory bf16 | one layer | resident | hidden states | "
             "largest Hessian (SparseGPT) | streamed estimate | hidden states at 128 x 2048 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, a in r["arithmetic"].items():
        lines.append(f"| {name} | {a['params_billion']} | {a['in_memory_fp32_gib']} | {a['in_memory_stored_gib']} | "
                     f"{a['one_layer_fp32_gib']} | {a['resident_gib']} | {a['hidden_states_gib']} | "
                     f"{a['largest_hessian_gib']} | {a['streamed_estimate_gib']} | {a['hidden_states_128x2048_gib']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
