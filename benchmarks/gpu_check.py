"""The one-command GPU check (``bash scripts/gpu_check.sh`` installs, then runs this): write a 7B-shaped
random checkpoint, prune it streamed with ``--device cuda`` at 50% with the default update and with
``--update none``, time dense against 2:4 on the 7B linear shapes with ``python -m eval.speed`` (fp16,
bf16, FP8 where the GPU has it; a prefill and a decode token count), and write every result as JSON
under ``--out``. Without CUDA it runs the CPU-sized variant (a tiny shape, few tokens, CSR timing), so
that CI can check it does not rot.

    python -m benchmarks.gpu_check --out gpu_check_out                    # GPU when there is one
    python -m benchmarks.gpu_check --out /tmp/check --variant cpu         # the CPU variant
    python -m benchmarks.gpu_check --out gpu_check_out --nsamples 32      # fewer calibration tokens

Every step runs in its own process under what is left of ``--budget-s``; a step that fails or runs out
of time is recorded as such (with the tail of its output) and the next one still runs. Files:
``environment.json``, ``checkpoint.json``, ``prune-default.json``, ``prune-none.json``,
``speed-<dtype>.json`` and ``summary.json`` (all of them together); the exit code is 1 if any step failed.

``--steps cost`` (not in the default steps: it fills a device call of its own) runs issue 22's GPU
timing instead: ``python -m benchmarks.cost_7b --device cuda --layers 2`` at 2:4 and 70%, first
SparseGPT with the default (and its float32 row), then SparseGPT with ADMM-Grad, ALPS and mask-only
crepe, each group and setting its own process with an even share of what is left of the budget.
Records under ``cost_7b_cuda/<group>/`` (``cost-<group>-<setting>.json`` for each step), to be
committed as ``results/cost_7b_cuda*`` from a clean commit. GPU variant only.

    bash scripts/gpu_check.sh --steps cost --budget-s 480
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import cost_7b

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Variant:
    """The sizes of one variant of the check (each is also a command-line option)."""

    device: str
    shape: str  # a benchmarks.tools.make_synthetic_llama shape
    layers: int | None  # None: all of the shape's decoder layers
    nsamples: int
    seqlen: int
    speed_shapes: str  # eval.speed --shape
    tokens: str  # eval.speed --tokens: a prefill and a decode count
    dtypes: str  # eval.speed --gpu-dtype values (the CPU times float32 CSR)
    budget_s: float


VARIANTS = {
    "gpu": Variant("cuda", "llama-2-7b", None, 128, 2048, "4096x4096,11008x4096,4096x11008", "2048,16",
                   "float16,bfloat16,float8_e4m3fn", 420.0),
    "cpu": Variant("cpu", "tiny", 2, 4, 64, "256x256,688x256,256x688", "64,16", "float32", 480.0),  # a busy 2-core CI machine
}
UPDATES = {"none": ["--update", "none"], "default": []}  # label -> crepe.prune flags, the cheaper first
STEPS = ("speed", "prune", "cost")
DEFAULT_STEPS = "speed,prune"
COST_GROUPS = {"default": cost_7b.TWO_LAYER_ROWS[1:], "baselines": cost_7b.ROWS[1:]}
"""benchmarks.cost_7b row groups for ``--steps cost`` (SparseGPT, first in both, runs in each: every
ratio's reference), the default's first."""
COST_SETTINGS = cost_7b.SETTINGS  # the rows for the 7B timing


def environment() -> dict[str, Any]:
    import torch

    from crepe.io.environment import versions

    cuda = torch.cuda.is_available()
    return {"versions": versions(), "cuda": cuda, "cuda_version": torch.version.cuda,
            "device_name": torch.cuda.get_device_name() if cuda else None,
            "capability": list(torch.cuda.get_device_capability()) if cuda else None,
            "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None}


def write_model(folder: Path, v: Variant) -> dict[str, Any]:
    """The synthetic checkpoint (SmolLM2's tokenizer), reused when ``folder`` already holds the same config."""
    from benchmarks.tools.make_synthetic_llama import (
        SHAPES,
        llama_config,
        smollm2_tokenizer,
        write_checkpoint,
    )

    tokenizer = smollm2_tokenizer()
    cfg = llama_config(v.shape, v.layers, max(SHAPES[v.shape][5], len(tokenizer)))
    if (folder / "config.json").exists() and json.loads((folder / "config.json").read_text()) == cfg:
        return {"shape": v.shape, "layers": cfg["num_hidden_layers"], "reused": True, "folder": str(folder)}
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    size = write_checkpoint(folder, cfg, progress=False, device=v.device)
    tokenizer.save_pretrained(folder)
    return {"shape": v.shape, "layers": cfg["num_hidden_layers"], "reused": False, "folder": str(folder),
            "gigabytes": round(size / 1e9, 2), "seconds": round(time.perf_counter() - start, 1)}


def run_step(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run one step's command from the repository root; its exit code, wall time and output tail."""
    start = time.perf_counter()
    if timeout <= 0:
        return {"command": argv, "returncode": None, "skipped": "no time left in --budget-s"}
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out = None, f"{exc.stdout or ''}{exc.stderr or ''}" + f"\ntimed out after {timeout:.0f} s"
        out = out if isinstance(out, str) else out.decode(errors="replace")
    return {"command": argv, "returncode": code, "wall_seconds": round(time.perf_counter() - start, 1),
            "output_tail": out[-3000:]}


def prune(model: Path, out: Path, label: str, v: Variant, timeout: float, keep: bool) -> dict[str, Any]:
    """``crepe.prune`` streamed at 50% with one update; the report's figures (the pruned folder is then
    removed unless ``keep``: a 7B copy is 13.5 GB)."""
    report, saved = out / f"prune-{label}.report.json", out / f"pruned-{label}"
    argv = [sys.executable, "-m", "crepe.prune", "--model", str(model), "--sparsity", "0.5", "--offload", "disk",
            "--nsamples", str(v.nsamples), "--seqlen", str(v.seqlen), "--calib-dataset", "wikivital",
            "--eval-dataset", "none", "--save", str(saved), "--overwrite", "--report", str(report), *UPDATES[label]]
    if v.device == "cuda":
        argv += ["--device", "cuda"]
    record = {"update": label, "calibration": f"{v.nsamples} x {v.seqlen}", **run_step(argv, timeout)}
    if record["returncode"] == 0:
        figures = json.loads(report.read_text())
        record.update({k: figures.get(k) for k in ("device", "streamed", "load_seconds", "prune_seconds",
                                                   "prune_and_write_seconds", "realised_sparsity", "peak_rss_mb")},
                      resolved_update=figures["config"]["resolved_update"])
    if not keep:
        shutil.rmtree(saved, ignore_errors=True)
    return record


def speed(out: Path, dtype: str, v: Variant, timeout: float) -> dict[str, Any]:
    """``python -m eval.speed`` on the variant's linear shapes, dense against 2:4 (GPU) or CSR (CPU)."""
    json_path = out / f"speed-{dtype}.json"
    argv = [sys.executable, "-m", "eval.speed", "--shape", v.speed_shapes, "--tokens", v.tokens, "--device", v.device,
            "--sparsity", "0.5", "--repeats", "5", "--json", str(json_path)]
    if v.device == "cuda":
        argv += ["--gpu-dtype", dtype]
    record = {"dtype": dtype, **run_step(argv, timeout)}
    if record["returncode"] == 0:
        record["rows"] = json.loads(json_path.read_text())["rows"]
    return record


def cost(out: Path, group: str, setting: str, timeout: float) -> dict[str, Any]:
    """One ``benchmarks.cost_7b --device cuda --layers 2`` process: SparseGPT and ``group``'s rows at
    ``setting`` (the 2-layer 7B-shaped checkpoint made once, beside the records); its table's figures."""
    folder = out / "cost_7b_cuda" / group
    argv = [sys.executable, "-m", "benchmarks.cost_7b", "--device", "cuda", "--layers", "2", "--settings", setting,
            "--rows", ",".join(COST_GROUPS[group]), "--out-dir", str(folder),
            "--model", str(out / "cost_7b_checkpoint")]
    record = {"group": group, "setting": setting, **run_step(argv, timeout)}
    found = folder / f"{cost_7b.record_name(setting, 2)}.json"
    if record["returncode"] == 0 and found.is_file():
        rec = json.loads(found.read_text())
        record.update(seconds=rec["seconds"], layer_seconds=rec["layer_seconds"], peak_added_gib=rec["peak_added_gib"])
    return record


def table(summary: dict[str, Any]) -> str:
    """The results as a markdown table (prune rows, then one row per timed matmul)."""
    lines = ["| step | what | result |", "|---|---|---|"]
    for p in summary["prune"]:
        result = (f"{p['prune_and_write_seconds']:.1f} s prune + write, sparsity {p['realised_sparsity']:.4f}, peak RSS "
                  f"{p['peak_rss_mb'] / 1024:.2f} GiB" if p["returncode"] == 0 else _failure(p))
        lines.append(f"| prune {p.get('resolved_update') or p['update']} | {summary['checkpoint'].get('shape')}, {p['calibration']} | {result} |")
    for c in summary.get("cost", []):
        if c["returncode"] != 0 or "seconds" not in c:
            lines.append(f"| cost {c['group']} {c['setting']} | | {_failure(c) if c['returncode'] != 0 else 'no record'} |")
            continue
        base = c["layer_seconds"]["SparseGPT"][-1]
        for label, secs in c["seconds"].items():
            lines.append(f"| cost {c['setting']} {label} | 7B-shaped, 2 layers | {secs:.1f} s wall, second layer "
                         f"{c['layer_seconds'][label][-1] / base:.2f}× SparseGPT's |")
    for s in summary["speed"]:
        if s["returncode"] != 0 or not s.get("rows"):
            lines.append(f"| speed {s['dtype']} | | {_failure(s) if s['returncode'] != 0 else 'no rows (see output)'} |")
        for r in s.get("rows", []):
            lines.append(f"| speed {r['dtype']} {r['format']} | {r['what']}, {r['tokens']} tokens | dense "
                         f"{r['dense_ms']:.3f} ms, sparse {r['sparse_ms']:.3f} ms, ratio {r['ratio']:.2f} |")
    return "\n".join(lines)


def _failure(step: dict[str, Any]) -> str:
    if step.get("skipped"):
        return f"skipped: {step['skipped']}"
    last = [line for line in step.get("output_tail", "").splitlines() if line.strip()]
    return f"failed (exit {step['returncode']}): {last[-1] if last else ''}"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Variant]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="gpu_check_out", help="folder for the JSON files and the checkpoint")
    ap.add_argument("--variant", default="auto", choices=("auto", *VARIANTS), help="auto: gpu when CUDA is available")
    for name, kind in (("shape", str), ("layers", int), ("nsamples", int), ("seqlen", int), ("speed-shapes", str),
                       ("tokens", str), ("dtypes", str), ("budget-s", float)):
        ap.add_argument(f"--{name}", type=kind, default=None, help="default: the variant's (see VARIANTS)")
    ap.add_argument("--keep", action="store_true", help="keep the pruned folders (13.5 GB each at 7B)")
    ap.add_argument("--steps", default=DEFAULT_STEPS,
                    help=f"comma-separated, from {', '.join(STEPS)} (default {DEFAULT_STEPS}; cost: GPU variant only)")
    ap.add_argument("--install-seconds", type=float, default=None, help="recorded as given (scripts/gpu_check.sh)")
    args = ap.parse_args(argv)
    unknown = set(args.steps.split(",")) - set(STEPS)
    if unknown:
        ap.error(f"unknown --steps {', '.join(sorted(unknown))}; choose from {', '.join(STEPS)}")
    name = args.variant
    if name == "auto":
        import torch

        name = "gpu" if torch.cuda.is_available() else "cpu"
    base = asdict(VARIANTS[name])
    return args, Variant(**{**base, **{k: getattr(args, k) for k in base if getattr(args, k, None) is not None}})


def main(argv: list[str] | None = None) -> int:
    from crepe.io.files import write_json_atomic

    args, v = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + v.budget_s
    summary: dict[str, Any] = {"variant": asdict(v), "install_seconds": args.install_seconds, "environment": environment()}
    write_json_atomic(out / "environment.json", summary["environment"])
    print(f"gpu_check: {v.device} variant, {v.shape} shape, calibration {v.nsamples} x {v.seqlen}", flush=True)
    steps = args.steps.split(",")
    summary["prune"], summary["speed"], summary["cost"] = [], [], []
    if "speed" in steps or "prune" in steps:
        summary["checkpoint"] = write_model(out / "checkpoint", v)
        write_json_atomic(out / "checkpoint.json", summary["checkpoint"])
    for dtype in v.dtypes.split(",") if "speed" in steps else ():  # the timings first: seconds each, so a slow prune cannot crowd them out
        print(f"gpu_check: eval.speed {dtype}", flush=True)
        summary["speed"].append(speed(out, dtype, v, deadline - time.monotonic()))
        if summary["speed"][-1]["returncode"] != 0:  # eval.speed wrote no JSON of its own: keep the record
            write_json_atomic(out / f"speed-{dtype}.json", summary["speed"][-1])
    for label in UPDATES if "prune" in steps else ():
        print(f"gpu_check: prune --update {label}", flush=True)
        summary["prune"].append(prune(out / "checkpoint", out, label, v, deadline - time.monotonic(), args.keep))
        write_json_atomic(out / f"prune-{label}.json", summary["prune"][-1])
    runs = [(group, setting) for group in COST_GROUPS for setting in COST_SETTINGS] if "cost" in steps else []
    for i, (group, setting) in enumerate(runs):
        print(f"gpu_check: cost_7b {group} {setting}", flush=True)
        if v.device != "cuda":
            step = {"group": group, "setting": setting, "command": [], "returncode": None,
                    "skipped": "the cost step times a 7B shape on CUDA: GPU variant only"}
        else:
            step = cost(out, group, setting, (deadline - time.monotonic()) / (len(runs) - i))
        summary["cost"].append(step)
        write_json_atomic(out / f"cost-{group}-{setting.replace(':', '-')}.json", step)
    summary["table"] = table(summary)
    write_json_atomic(out / "summary.json", summary)
    print(summary["table"])
    failed = [s for s in summary["prune"] + summary["speed"] + summary["cost"] if s["returncode"] != 0 and not
              (s.get("skipped") and s["command"] == [])]  # a step this variant does not run is not a failure
    print(f"gpu_check: {len(failed)} step(s) failed; JSON under {out}" if failed else f"gpu_check: done; JSON under {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
