"""Prune one linear layer with a named method: score -> select -> apply, or SparseGPT's OBS update.

A method is described by the statistics it needs from the engine and one function that prunes a
weight in place. The engine knows nothing about individual methods beyond ``needs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from crepe.config import PruneConfig
from crepe.masks import select_mask
from crepe.scorers import InputStats, score
from crepe.sparsegpt import sparsegpt_prune


@dataclass(frozen=True)
class LinearResult:
    """What pruning one linear did: shape, zeros before/after."""

    shape: tuple[int, int]
    zeros_before: int
    zeros_after: int

    @property
    def sparsity(self) -> float:
        return self.zeros_after / (self.shape[0] * self.shape[1])


def needed_stats(method: str) -> frozenset[str]:
    """Statistics the engine must collect for ``method``: subset of {"sq_sum", "hessian"}."""
    if method == "magnitude" or method == "ri":
        return frozenset()
    if method == "sparsegpt":
        return frozenset({"hessian"})
    return frozenset({"sq_sum"})


def projection_type(name: str) -> str:
    """Short projection type of a linear's qualified name: 'self_attn.q_proj' -> 'q'."""
    leaf = name.rsplit(".", 1)[-1]
    for suffix in ("_proj", "_lin"):
        leaf = leaf.removesuffix(suffix)
    return leaf


def prune_weight(weight: torch.Tensor, stats: InputStats, cfg: PruneConfig, name: str = "",
                 sparsity: float | None = None) -> LinearResult:
    """Prune ``weight`` [out, in] in place (it may be a transposed view) and report the result.

    ``sparsity`` overrides ``cfg.sparsity`` for this layer (non-uniform allocation).
    """
    target = cfg.sparsity if sparsity is None else sparsity
    zeros_before = int((weight == 0).sum())
    if target > 0:
        if cfg.method == "sparsegpt":
            if stats.hessian is None:
                raise ValueError("sparsegpt needs the input Hessian; none was collected")
            new, _ = sparsegpt_prune(weight, stats.hessian, target, cfg.pattern, cfg.sparsegpt_blocksize,
                                     cfg.sparsegpt_damp)
            weight.copy_(new.to(weight.dtype))
        else:
            params = cfg.crepe.for_projection(projection_type(name))
            scores = score(cfg.method, weight, stats, params)
            if not torch.isfinite(scores).all():
                raise ValueError(f"non-finite {cfg.method} scores in {name or 'a layer'}: check weights and inputs")
            weight.masked_fill_(select_mask(scores, target, cfg.pattern, cfg.resolved_group), 0)
    return LinearResult(tuple(weight.shape), zeros_before, int((weight == 0).sum()))
