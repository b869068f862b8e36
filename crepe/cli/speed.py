"""Does the sparsity pay? Prefill and decode tokens/s, dense against the same weights in a sparse
format, and per-linear matmul times, all measured in the same run (the timing is :mod:`crepe.evaluation.speed`).

    python -m eval.speed --model runs/crepe24 --device cuda --batch 1,8 --prompt-len 512
    python -m eval.speed --model runs/crepe50 --threads 1             # CPU: CSR
    python -m eval.speed --shape 4096x4096 --sparsity 0.5,0.9 --tokens 512 --threads 1
    python -m eval.speed --shape 4096x4096,11008x4096 --tokens 2048,16 --device cuda --gpu-dtype float8_e4m3fn

Installed, the same command is ``crepe-eval-speed``. Formats: on CUDA, 2:4 semi-structured
(``torch.sparse.to_sparse_semi_structured``, fp16/bf16, compute capability >= 8.0; FP8 e4m3 through
``torch._scaled_mm`` with ``--shape`` where the GPU has it) for a model whose decoder linears are all 2:4;
on CPU, CSR (``torch.sparse_csr``, float32), which only pays at high unstructured sparsity. ``ratio`` =
dense time / sparse time: above 1 the sparse format is faster, below 1 it is slower and the table says
so. Without a GPU the GPU rows are skipped with one line. Times are the minimum over ``--repeats`` runs
after a warm-up.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from torch import nn

from crepe.evaluation.speed import (
    FP8,
    matmul_row,
    prefill_decode,
    pruned_random,
    sparse_copy,
    sparse_format,
    verdict,
)
from crepe.methods.masks import is_valid_nm
from crepe.models.adapters import decoder_linears, weight_view

GPU_DTYPES = ("float16", "bfloat16", "float8_e4m3fn")


def model_rows(model: nn.Module, args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> list[dict]:
    """Prefill/decode rows per batch size and one matmul row per distinct linear shape."""
    model = model.to(device=device, dtype=dtype).eval()
    linears = decoder_linears(model)
    weights = [weight_view(m) for m in linears.values()]
    if device.type == "cuda" and not all(w.shape[1] % 4 == 0 and is_valid_nm(w, 2, 4) for w in weights):
        print("GPU rows skipped: the decoder linears are not all 2:4, which semi-structured kernels need")
        return []
    rows = []
    twin = sparse_copy(model, device)
    for batch in args.batch:
        dense = prefill_decode(model, batch, args.prompt_len, args.decode_tokens, args.repeats, device)
        sparse = prefill_decode(twin, batch, args.prompt_len, args.decode_tokens, args.repeats, device)
        for phase, d, s in (("prefill", dense[0], sparse[0]), ("decode", dense[1], sparse[1])):
            rows.append({"kind": phase, "what": f"batch {batch}, prompt {args.prompt_len}", "format": sparse_format(device),
                         "dense_tok_s": d, "sparse_tok_s": s, "ratio": s / d})
    seen = {}
    for name, w in zip(linears, weights):
        seen.setdefault(tuple(w.shape), (name, w))
    for shape, (name, w) in seen.items():
        rows += [matmul_row(w.detach(), tokens, args.repeats, device, f"{name.split('.')[-1]} {shape[0]}x{shape[1]}")
                 for tokens in args.tokens or [args.prompt_len]]
    return rows


def shape_rows(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> list[dict]:
    """Matmul rows for a random weight of each ``--shape``, at each ``--sparsity`` (2:4 only on CUDA) and
    each ``--tokens``; FP8 rows stop with one line where the GPU or the torch build lacks them."""
    levels = [0.5] if device.type == "cuda" else args.sparsity
    weight_dtype = torch.bfloat16 if dtype == FP8 else dtype
    rows = []
    for out, inp in args.shape:
        for s in levels:
            weight = pruned_random((out, inp), s, device.type == "cuda", weight_dtype, device)
            for tokens in args.tokens or [512]:
                try:
                    rows.append(matmul_row(weight, tokens, args.repeats, device, f"random {out}x{inp}", dtype))
                except (RuntimeError, NotImplementedError) as exc:
                    if dtype != FP8:
                        raise
                    print(f"FP8 rows skipped: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                    return rows
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'device':<6} {'row':<9} {'what':<26} {'format':<20} {'dtype':<13} {'tokens':>6} {'sparsity':>8} "
             f"{'dense':>12} {'sparse':>12} {'ratio':>6}  verdict"]
    for r in rows:
        if r["kind"] == "matmul":
            dense, sparse, sp = f"{r['dense_ms']:.2f} ms", f"{r['sparse_ms']:.2f} ms", f"{r['sparsity']:.2f}"
        else:
            dense, sparse, sp = f"{r['dense_tok_s']:.0f} tok/s", f"{r['sparse_tok_s']:.0f} tok/s", "-"
        lines.append(f"{r['device']:<6} {r['kind']:<9} {r['what']:<26} {r['format']:<20} {r.get('dtype', '-'):<13} "
                     f"{r.get('tokens', '-'):>6} {sp:>8} {dense:>12} {sparse:>12} {r['ratio']:>6.2f}  {verdict(r['ratio'])}")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def _shapes(text: str) -> list[tuple[int, ...]]:
    return [tuple(_ints(s.replace("x", ","))) for s in text.split(",") if s.strip()]


def check_args(args: argparse.Namespace) -> None:
    """One ValueError line for a value argparse's types let through (sizes, sparsities, the shape)."""
    if args.repeats < 1 or not args.batch or min(args.batch) < 1 or args.prompt_len < 1 or args.decode_tokens < 1:
        raise ValueError("--repeats, --batch, --prompt-len and --decode-tokens must be >= 1")
    if (args.tokens is not None and (not args.tokens or min(args.tokens) < 1)) or (args.threads is not None and args.threads < 1):
        raise ValueError("--tokens and --threads must be >= 1")
    if not args.sparsity or not all(0 <= s < 1 for s in args.sparsity):
        raise ValueError(f"--sparsity takes fractions in [0, 1), comma-separated, got {args.sparsity}")
    if args.shape is not None and (not args.shape or any(len(s) != 2 or min(s) < 1 for s in args.shape)):
        raise ValueError(f"--shape must be OUTxIN with two positive sizes (e.g. 4096x4096), comma-separated, got {args.shape}")
    if args.model is not None and args.gpu_dtype == "float8_e4m3fn":
        raise ValueError("--gpu-dtype float8_e4m3fn times --shape weights only (a model runs in float16 or bfloat16)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval.speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="model (a pruned folder, alias, ...) to time end to end")
    what.add_argument("--shape", type=_shapes, help="OUTxIN[,OUTxIN...]: time a random weight of each shape")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="auto: CPU rows, plus GPU rows when CUDA is available; cuda: GPU rows (one line if absent)")
    ap.add_argument("--gpu-dtype", default="float16", choices=GPU_DTYPES, help="float8_e4m3fn: with --shape, where the GPU has it")
    ap.add_argument("--batch", type=_ints, default=[1], help="batch sizes, comma-separated")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--tokens", type=_ints, default=None,
                    help="rows of x in the matmul rows, comma-separated, e.g. 2048,16 for prefill and decode "
                         "(default: --prompt-len; 512 with --shape)")
    ap.add_argument("--sparsity", type=lambda t: [float(v) for v in t.split(",")], default=[0.5, 0.9],
                    help="unstructured sparsities of the --shape weight on CPU")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (state it next to any figure)")
    ap.add_argument("--json", default=None)
    return ap


def main() -> int:
    from crepe.io.files import check_output_file, write_json_atomic
    from crepe.io.provenance import current_command, provenance
    from crepe.models.loading import load_model

    args = build_parser().parse_args()
    check_args(args)
    check_output_file(args.json, "--json")
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    devices = [torch.device("cpu")] if args.device in ("auto", "cpu") else []
    if args.device in ("auto", "cuda"):
        if torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0):
            devices.append(torch.device("cuda"))
        elif args.device == "cuda" or torch.cuda.is_available():
            print("GPU rows skipped: no CUDA device with compute capability >= 8.0 (2:4 semi-structured kernels need one)")
    model = load_model(args.model)[0] if args.model else None
    rows = []
    for device in devices:
        dtype = torch.float32 if device.type == "cpu" else getattr(torch, args.gpu_dtype)
        with torch.no_grad():  # not set_grad_enabled: main() also runs in-process (tests)
            new = model_rows(model, args, device, dtype) if model is not None else shape_rows(args, device, dtype)
        rows += [{"device": device.type, **r} for r in new]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; ratio = dense time / sparse time")
    print(format_rows(rows))
    if args.json:
        record = {"rows": rows, "threads": torch.get_num_threads(), "args": vars(args)}
        write_json_atomic(args.json, {**record, "provenance": provenance(current_command(), vars(args))})
        print(f"results written to {args.json}")
    return 0
