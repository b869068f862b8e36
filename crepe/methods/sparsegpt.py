"""SparseGPT (Frantar & Alistarh 2023): OBS pruning with weight reconstruction, as a pure function.

For H = X^T X (+ damping), columns are processed left to right in blocks; within a block the mask
is chosen adaptively from w^2 / [H^-1]_jj^2, each pruned weight's error is spread over the
not-yet-processed columns through the upper Cholesky factor of H^-1, and lazily for later blocks.
:func:`sparsegpt_linear` is the method's registry entry point (with an optional column order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch

from crepe.methods.declare import Method, register
from crepe.methods.masks import in_column_order, nm_mask, unstructured_mask
from crepe.methods.params import Pattern

if TYPE_CHECKING:
    from crepe.config import PruneConfig


def _inverse_hessian_factor(h: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor U of (H + damp*mean(diag H)*I)^-1: [in, in]."""
    h = h.clone()
    h.diagonal().add_(damp * h.diagonal().mean())
    for attempt in range(5):
        try:
            lower = torch.linalg.cholesky(h)
            break
        except torch.linalg.LinAlgError:  # not positive definite: damp harder
            h.diagonal().add_(0.1 * h.diagonal().mean() * (attempt + 1))
    else:
        raise RuntimeError("SparseGPT: Hessian is not positive definite even after extra damping")
    return torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)


def sparsegpt_prune(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    sparsity: float,
    pattern: Pattern = Pattern(),
    blocksize: int = 128,
    damp: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune ``weight`` [out, in] given ``hessian`` [in, in] = sum X^T X.

    Returns (new weight [out, in] float32 with pruned entries exactly 0, prune mask [out, in]).
    Unstructured: exactly round(sparsity * out * blocksize) weights per column block; N:M: n of
    every m columns per row, chosen when the block of m is reached (so earlier updates count).
    """
    w = weight.detach().float().clone()
    h = hessian.detach().float().clone()
    cols = w.shape[1]
    if pattern.structured and cols % pattern.m:
        raise ValueError(f"N:M pattern {pattern} needs the input width to be a multiple of {pattern.m}, got {cols}")
    if pattern.structured and blocksize % pattern.m:
        raise ValueError(f"SparseGPT blocksize {blocksize} must be a multiple of M={pattern.m}")
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    hinv = _inverse_hessian_factor(h, damp)
    mask = torch.zeros_like(w, dtype=torch.bool)

    for start in range(0, cols, blocksize):
        end = min(start + blocksize, cols)
        w_blk = w[:, start:end].clone()
        hinv_blk = hinv[start:end, start:end]
        diag = hinv_blk.diagonal()
        err_blk = torch.zeros_like(w_blk)
        if not pattern.structured:
            mask[:, start:end] = unstructured_mask(w_blk.pow(2) / diag.pow(2).unsqueeze(0), sparsity, "layer")
        for i in range(end - start):
            if pattern.structured and i % pattern.m == 0:
                group = slice(i, i + pattern.m)
                crit = w_blk[:, group].pow(2) / diag[group].pow(2).unsqueeze(0)
                mask[:, start + i : start + i + pattern.m] = nm_mask(crit, pattern.n, pattern.m)
            col = w_blk[:, i]
            pruned = torch.where(mask[:, start + i], torch.zeros_like(col), col)
            err = (col - pruned) / diag[i]
            w_blk[:, i:] -= err.unsqueeze(1) * hinv_blk[i, i:].unsqueeze(0)
            w_blk[:, i] = pruned
            err_blk[:, i] = err
        w[:, start:end] = w_blk
        w[:, end:] -= err_blk @ hinv[start:end, end:]
    w[mask] = 0.0
    return w, mask


def sparsegpt_linear(weight: torch.Tensor, stats, sparsity: float, pattern: Pattern, cfg: PruneConfig,
                     order: Callable[[torch.Tensor, Pattern], torch.Tensor] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """SparseGPT on one linear: (new weight [out, in], prune mask [out, in], column permutation [in] or None).

    With ``order`` (the channel-permutation step) and an N:M pattern, the columns are reordered
    first, searched on the Wanda proxy |W_ij| sqrt(H_jj) (SparseGPT's own saliency depends on the
    updates it makes); OBS runs on W[:, perm] with H[perm][:, perm] and the result is mapped back.
    """
    if stats.hessian is None:
        raise ValueError("sparsegpt needs the input Hessian; none was collected")
    hessian, perm = stats.hessian, None
    if order is not None and pattern.structured:
        proxy = weight.float().abs() * hessian.diagonal().float().clamp_min(0).sqrt().unsqueeze(0)
        perm = order(proxy, pattern)
    new, mask = in_column_order(perm, weight, hessian, lambda w, h: sparsegpt_prune(
        w, h, sparsity, pattern, cfg.sparsegpt_blocksize, cfg.sparsegpt_damp))
    return new, mask, perm


register(Method("sparsegpt", needs=frozenset({"hessian"}), default_group="block", updates_weights=True,
                prune=sparsegpt_linear))
