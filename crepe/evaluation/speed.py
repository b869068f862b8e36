"""Timing dense weights against the same weights in a sparse format (the command is
:mod:`crepe.cli.speed`): 2:4 semi-structured on CUDA (fp16/bf16, and FP8 through ``torch._scaled_mm``
where the GPU and torch build have it), CSR on CPU. Times are the minimum over repeats after a warm-up."""

from __future__ import annotations

import copy
import time
from typing import Any, Callable

import torch
from torch import nn

from crepe.models.adapters import decoder_linears


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


FP8 = torch.float8_e4m3fn


def fp8_matmuls(weight: torch.Tensor, x: torch.Tensor) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(dense, 2:4 sparse) ``W @ x.T`` in FP8 e4m3 with unit per-tensor scales and a bf16 output, both
    through ``torch._scaled_mm`` (the sparse one on cuSPARSELt); raises where the GPU or build lacks them."""
    from torch.sparse import to_sparse_semi_structured

    one = torch.ones((), device=weight.device)
    w8, x8 = weight.to(FP8), x.to(FP8)
    packed = to_sparse_semi_structured(w8)

    def dense():
        return torch._scaled_mm(w8, x8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    def sparse():
        return torch._scaled_mm(packed, x8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    return dense, sparse


def matmul_row(weight: torch.Tensor, tokens: int, repeats: int, device: torch.device, label: str,
               dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Dense ``x @ W.T`` against the sparse format, x [tokens, in]; ``dtype`` FP8 times both in FP8."""
    dtype = dtype or weight.dtype
    x = torch.randn(tokens, weight.shape[1], dtype=weight.dtype, device=device)
    if dtype == FP8:
        dense, sparse = fp8_matmuls(weight, x)
    else:
        packed = to_sparse(weight, device)

        def dense():
            return x @ weight.T

        def sparse():
            return sparse_linear(x, packed, None)
    dense_s, sparse_s = best_seconds(dense, repeats, device), best_seconds(sparse, repeats, device)
    return {"kind": "matmul", "what": label, "format": sparse_format(device), "dtype": str(dtype).removeprefix("torch."),
            "tokens": tokens, "sparsity": round(float((weight == 0).float().mean()), 4), "dense_ms": 1e3 * dense_s,
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
