"""Does the sparsity pay? Prefill and decode tokens/s, dense against the same weights in a sparse
format, and per-linear matmul times, all measured in the same run.

    python -m eval.speed --model runs/crepe24 --device cuda --batch 1,8 --prompt-len 512
    python -m eval.speed --model runs/crepe50 --threads 1             # CPU: CSR
    python -m eval.speed --shape 4096x4096 --sparsity 0.5,0.9 --tokens 512 --threads 1

Formats: on CUDA, 2:4 semi-structured (``torch.sparse.to_sparse_semi_structured``, fp16/bf16, compute
capability >= 8.0) for a model whose decoder linears are all 2:4; on CPU, CSR (``torch.sparse_csr``,
float32), which only pays at high unstructured sparsity. ``ratio`` = dense time / sparse time: above
1 the sparse format is faster, below 1 it is slower and the table says so. Without a GPU the GPU rows
are skipped with one line. Times are the minimum over ``--repeats`` runs after a warm-up.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from typing import Any, Callable

import torch
from torch import nn

from crepe.methods.masks import is_valid_nm
from crepe.models.adapters import decoder_linears, weight_view


def best_seconds(fn: Callable[[], Any], repeats: int, device: torch.device) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` runs after one warm-up (CUDA synchronised)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def sparse_format(device: torch.device) -> str:
    return "2:4-semi-structured" if device.type == "cuda" else "csr"


def to_sparse(weight: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``weight`` [out, in] in the device's sparse format (CSR on CPU, 2:4 semi-structured on CUDA)."""
    if device.type == "cuda":
        from torch.sparse import to_sparse_semi_structured

        return to_sparse_semi_structured(weight)
    return weight.to_sparse_csr()


def sparse_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x [..., in] @ weight.T`` with a CSR (``weight @ x.T`` kernel) or semi-structured ``weight``."""
    if weight.layout == torch.sparse_csr:
        flat = x.reshape(-1, x.shape[-1])
        out = torch.sparse.mm(weight, flat.T).T.reshape(*x.shape[:-1], weight.shape[0])
        return out if bias is None else out + bias
    return nn.functional.linear(x, weight, bias)


class SparseLinear(nn.Module):
    """A Linear whose weight [out, in] is stored in a sparse format (same outputs as the dense one)."""

    def __init__(self, linear: nn.Linear, device: torch.device):
        super().__init__()
        self.weight_sparse = to_sparse(linear.weight.detach(), device)
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_linear(x, self.weight_sparse, self.bias)


def sparse_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A copy of ``model`` with every decoder ``nn.Linear`` in the sparse format (embeddings, head dense)."""
    twin = copy.deepcopy(model)
    targets = {id(m) for m in decoder_linears(twin).values()}
    for parent in list(twin.modules()):
        for child_name, child in list(parent.named_children()):
            if id(child) in targets and isinstance(child, nn.Linear):
                setattr(parent, child_name, SparseLinear(child, device))
    return twin


def matmul_row(weight: torch.Tensor, tokens: int, repeats: int, device: torch.device, label: str) -> dict[str, Any]:
    """Dense ``x @ W.T`` against the sparse format, x [tokens, in]."""
    x = torch.randn(tokens, weight.shape[1], dtype=weight.dtype, device=device)
    sparse = to_sparse(weight, device)
    dense_s = best_seconds(lambda: x @ weight.T, repeats, device)
    sparse_s = best_seconds(lambda: sparse_linear(x, sparse, None), repeats, device)
    return {"kind": "matmul", "what": label, "format": sparse_format(device), "tokens": tokens,
            "sparsity": round(float((weight == 0).float().mean()), 4), "dense_ms": 1e3 * dense_s,
            "sparse_ms": 1e3 * sparse_s, "ratio": dense_s / sparse_s}


def prefill_decode(model: nn.Module, batch: int, prompt_len: int, new_tokens: int, repeats: int,
                   device: torch.device) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s): one forward of [batch, prompt_len], then greedy
    ``generate`` of exactly ``new_tokens`` with the KV cache; decode time = generate - prefill."""
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt_len), generator=torch.Generator().manual_seed(0)).to(device)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        prefill_s = best_seconds(lambda: model(ids, attention_mask=mask), repeats, device)
        total_s = best_seconds(lambda: model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens,
                                                      min_new_tokens=new_tokens, do_sample=False, pad_token_id=0),
                               repeats, device)
    return batch * prompt_len / prefill_s, batch * new_tokens / max(total_s - prefill_s, 1e-9)


def verdict(ratio: float) -> str:
    return "pays" if ratio > 1.05 else "does not pay" if ratio < 0.95 else "break-even"


def pruned_random(shape: tuple[int, int], sparsity: float, nm: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A random weight [out, in] with its smallest magnitudes zeroed (per 4-group 2:4 when ``nm``)."""
    w = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if nm:
        groups = w.reshape(shape[0], -1, 4)
        drop = groups.abs().topk(2, dim=-1, largest=False).indices
        w = groups.scatter(-1, drop, 0.0).reshape(shape)
    else:
        k = int(sparsity * w.numel())
        if k:
            w.view(-1)[w.abs().view(-1).argsort()[:k]] = 0.0
    return w.to(device=device, dtype=dtype)


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
        rows.append(matmul_row(w.detach(), args.tokens or args.prompt_len, args.repeats, device,
                               f"{name.split('.')[-1]} {shape[0]}x{shape[1]}"))
    return rows


def shape_rows(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> list[dict]:
    """Matmul rows for a random ``--shape`` weight at each ``--sparsity`` (2:4 only on CUDA)."""
    out, inp = args.shape
    levels = [0.5] if device.type == "cuda" else args.sparsity
    return [matmul_row(pruned_random((out, inp), s, device.type == "cuda", dtype, device), args.tokens or 512,
                       args.repeats, device, f"random {out}x{inp}") for s in levels]


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'device':<6} {'row':<9} {'what':<26} {'format':<20} {'sparsity':>8} {'dense':>12} {'sparse':>12} "
             f"{'ratio':>6}  verdict"]
    for r in rows:
        if r["kind"] == "matmul":
            dense, sparse, sp = f"{r['dense_ms']:.2f} ms", f"{r['sparse_ms']:.2f} ms", f"{r['sparsity']:.2f}"
        else:
            dense, sparse, sp = f"{r['dense_tok_s']:.0f} tok/s", f"{r['sparse_tok_s']:.0f} tok/s", "-"
        lines.append(f"{r['device']:<6} {r['kind']:<9} {r['what']:<26} {r['format']:<20} {sp:>8} {dense:>12} "
                     f"{sparse:>12} {r['ratio']:>6.2f}  {verdict(r['ratio'])}")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def check_args(args: argparse.Namespace) -> None:
    """One ValueError line for a value argparse's types let through (sizes, sparsities, the shape)."""
    if args.repeats < 1 or not args.batch or min(args.batch) < 1 or args.prompt_len < 1 or args.decode_tokens < 1:
        raise ValueError("--repeats, --batch, --prompt-len and --decode-tokens must be >= 1")
    if (args.tokens is not None and args.tokens < 1) or (args.threads is not None and args.threads < 1):
        raise ValueError("--tokens and --threads must be >= 1")
    if not args.sparsity or not all(0 <= s < 1 for s in args.sparsity):
        raise ValueError(f"--sparsity takes fractions in [0, 1), comma-separated, got {args.sparsity}")
    if args.shape is not None and (len(args.shape) != 2 or min(args.shape) < 1):
        raise ValueError(f"--shape must be OUTxIN with two positive sizes (e.g. 4096x4096), got {args.shape}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval.speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="model (a pruned folder, alias, ...) to time end to end")
    what.add_argument("--shape", type=lambda t: tuple(_ints(t.replace("x", ","))), help="OUTxIN: time one random weight")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="auto: CPU rows, plus GPU rows when CUDA is available; cuda: GPU rows (one line if absent)")
    ap.add_argument("--gpu-dtype", default="float16", choices=("float16", "bfloat16"))
    ap.add_argument("--batch", type=_ints, default=[1], help="batch sizes, comma-separated")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=None, help="rows of x in the matmul rows (default: --prompt-len; 512 with --shape)")
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


if __name__ == "__main__":
    from crepe.io.console import run_cli

    run_cli("eval.speed", main)
