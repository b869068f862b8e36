"""Prune one linear layer with a named method: score -> select -> apply, or SparseGPT's OBS update.

A method is described by the statistics it needs from the engine and one function that prunes a
weight in place. The engine knows nothing about individual methods beyond ``needs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from crepe.compose.select import compose_mask, sparsegpt_with_permutation
from crepe.config import PruneConfig
from crepe.scorers import InputStats, score


@dataclass(frozen=True)
class LinearResult:
    """What pruning one linear did: shape, zeros before/after; with scores, the fraction of the
    total score the mask kept; with channel permutation, the column order [in] it was chosen in."""

    shape: tuple[int, int]
    zeros_before: int
    zeros_after: int
    kept_score_fraction: float | None = None
    permutation: torch.Tensor | None = field(default=None, compare=False, repr=False)

    @property
    def sparsity(self) -> float:
        return self.zeros_after / (self.shape[0] * self.shape[1])


def needed_stats(method: str, cfg: PruneConfig | None = None) -> frozenset[str]:
    """Statistics the engine must collect for ``method`` (and DSnoT re-pruning in ``cfg``): subset
    of {"sq_sum", "hessian", "sum"}."""
    extra = frozenset({"sum", "sq_sum"}) if cfg is not None and cfg.repruning is not None else frozenset()
    if method == "magnitude" or method == "ri":
        return extra
    if method == "sparsegpt":
        return frozenset({"hessian"}) | extra
    return frozenset({"sq_sum"}) | extra


def projection_type(name: str) -> str:
    """Short projection type of a linear's qualified name: 'self_attn.q_proj' -> 'q'."""
    leaf = name.rsplit(".", 1)[-1]
    for suffix in ("_proj", "_lin"):
        leaf = leaf.removesuffix(suffix)
    return leaf


def prune_weight(weight: torch.Tensor, stats: InputStats, cfg: PruneConfig, name: str = "",
                 sparsity: float | None = None, in_attention: bool = False) -> LinearResult:
    """Prune ``weight`` [out, in] in place (it may be a transposed view) and report the result.

    ``name``: the linear's name inside its layer (per-projection parameters); ``sparsity``
    overrides ``cfg.sparsity`` for this layer (non-uniform allocation); ``in_attention``: the
    linear is part of an attention block (from the adapter; DSnoT's default scope).
    """
    target = cfg.sparsity if sparsity is None else sparsity
    zeros_before = int((weight == 0).sum())
    kept, perm = None, None
    if target > 0:
        if cfg.method == "sparsegpt":
            if stats.hessian is None:
                raise ValueError("sparsegpt needs the input Hessian; none was collected")
            new, perm = sparsegpt_with_permutation(weight, stats.hessian, cfg, target)
            weight.copy_(new.to(weight.dtype))
        else:
            params = cfg.crepe.for_projection(projection_type(name))
            scores = score(cfg.method, weight, stats, params)
            if not torch.isfinite(scores).all():
                raise ValueError(f"non-finite {cfg.method} scores in {name or 'a layer'}: check weights and inputs")
            mask, perm = compose_mask(weight, scores, stats, cfg, in_attention, target)
            kept = float(scores.double()[~mask].sum() / scores.double().sum().clamp_min(1e-30))
            weight.masked_fill_(mask, 0)
    return LinearResult(tuple(weight.shape), zeros_before, int((weight == 0).sum()), kept, perm)
