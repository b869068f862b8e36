"""Where the composition techniques meet selection: per-layer N:M patterns, permuted N:M masks and
DSnoT refinement around ``crepe.masks.select_mask``, and SparseGPT in permuted column order.
Called by :func:`crepe.prune_linear.prune_weight`; pure functions of tensors and configs."""

from __future__ import annotations

import math

import torch

from crepe.compose.dsnot import applies_to, dsnot_refine
from crepe.compose.permutation import (
    find_permutation,
    inverse_permutation,
    permuted_nm_mask,
)
from crepe.config import Pattern, PruneConfig
from crepe.masks import select_mask
from crepe.scorers import InputStats
from crepe.sparsegpt import sparsegpt_prune


def layer_pattern(pattern: Pattern, sparsity: float) -> Pattern:
    """The N:M pattern of one layer whose planned sparsity may differ from the global N/M:
    n = sparsity * M, which must be a whole number (allocation plans under N:M are quantised)."""
    if not pattern.structured or math.isclose(sparsity, pattern.n / pattern.m):
        return pattern
    n = round(sparsity * pattern.m)
    if not math.isclose(n / pattern.m, sparsity, abs_tol=1e-9) or not 0 < n < pattern.m:
        raise ValueError(f"layer sparsity {sparsity:g} is not k/{pattern.m} with 0 < k < {pattern.m}; "
                         f"an N:M plan needs multiples of 1/{pattern.m}")
    return Pattern(n, pattern.m)


def input_moments(stats: InputStats) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of each input channel over the calibration tokens: two [in] tensors."""
    if stats.lin_sum is None or stats.sq_sum is None or stats.tokens == 0:
        raise ValueError("dsnot needs the per-channel input sum and square sum; none were collected")
    mean = stats.lin_sum / stats.tokens
    return mean, (stats.sq_sum / stats.tokens - mean.pow(2)).clamp_min(0)


def compose_mask(weight: torch.Tensor, scores: torch.Tensor, stats: InputStats, cfg: PruneConfig,
                 in_attention: bool, sparsity: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Prune mask [out, in] (True = prune) and the column permutation [in] it was chosen in (None:
    identity). weight: the unpruned W [out, in]; scores: its importance [out, in]; in_attention:
    whether the linear belongs to an attention block (DSnoT's default scope)."""
    pattern = layer_pattern(cfg.pattern, sparsity)
    perm = None
    if cfg.permute is not None and pattern.structured:
        perm = find_permutation(scores, pattern.n, pattern.m, cfg.permute)
        mask = permuted_nm_mask(scores, pattern.n, pattern.m, perm)
    else:
        mask = select_mask(scores, sparsity, pattern, cfg.resolved_group)
    if cfg.repruning is not None and applies_to(in_attention, cfg.repruning):
        mean, var = input_moments(stats)
        m = pattern.m if pattern.structured else None
        order = perm if perm is not None else torch.arange(weight.shape[1], device=weight.device)
        refined = dsnot_refine(weight[:, order], mask[:, order], scores[:, order], mean[order], var[order],
                               cfg.repruning, m)
        mask[:, order] = refined
    return mask, perm


def sparsegpt_with_permutation(weight: torch.Tensor, hessian: torch.Tensor, cfg: PruneConfig,
                               sparsity: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """SparseGPT on W[:, perm] with H[perm][:, perm], mapped back: (new weight [out, in], perm).

    The permutation is searched on the Wanda proxy |W_ij| sqrt(H_jj) (SparseGPT's own saliency
    depends on the updates it makes)."""
    pattern = layer_pattern(cfg.pattern, sparsity)
    perm = None
    if cfg.permute is not None and pattern.structured:
        proxy = weight.float().abs() * hessian.diagonal().float().clamp_min(0).sqrt().unsqueeze(0)
        perm = find_permutation(proxy, pattern.n, pattern.m, cfg.permute)
        weight, hessian = weight[:, perm], hessian[perm][:, perm]
    new, _ = sparsegpt_prune(weight, hessian, sparsity, pattern, cfg.sparsegpt_blocksize, cfg.sparsegpt_damp)
    if perm is not None:
        new = new[:, inverse_permutation(perm)]
    return new, perm
