"""Prune one linear: the one per-linear path every caller uses (the model loop, one-shot pruning, PHO).

    score -> select (in a column order, if a permutation step gives one) -> refine -> update

1. score: the method's score function (:mod:`crepe.methods.registry`), with the CRePE parameters of the
   linear's projection role; a method with a ``prune`` hook (SparseGPT) selects and updates itself.
2. select: the N:M or unstructured mask of the lowest scores (:mod:`crepe.methods.masks`), chosen in the
   column order of ``steps.order`` when there is one.
3. refine: ``steps.refine`` may swap pruned and kept weights (DSnoT), same counts.
4. update: ``steps.update`` may change the kept weights for the final mask.

The steps are plain functions in :class:`LinearSteps`; the composition package builds them from a
config (:func:`crepe.compose.steps.linear_steps`), so this core module never imports it.
:func:`plan_linear` decides without touching the weight; :func:`prune_linear` also applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from crepe.config import PruneConfig
from crepe.methods.gradual import dense_forward_dtype
from crepe.methods.masks import all_finite, count_zeros, select_mask
from crepe.methods.params import Pattern
from crepe.methods.scorers import InputStats

OrderFn = Callable[[torch.Tensor, Pattern], torch.Tensor]
"""(scores [out, in], N:M pattern) -> column order perm [in] to select the N:M groups in."""
RefineFn = Callable[..., torch.Tensor]
"""(weight, scores, mask, stats, perm or None, pattern, in_attention) -> refined mask [out, in]."""
UpdateFn = Callable[[torch.Tensor, torch.Tensor, InputStats], torch.Tensor]
"""(unpruned weight [out, in], final mask [out, in], stats) -> new weight [out, in]."""


@dataclass(frozen=True)
class LinearSteps:
    """Steps that plug into the path; ``needs``: the extra input statistics they read; ``prune``:
    a step that chooses the mask while it updates (the CRePE sweep, in place of score -> select):
    (W, stats, sparsity, pattern, cfg, order, role) -> (new W, mask, perm or None)."""

    order: OrderFn | None = None
    refine: RefineFn | None = None
    update: UpdateFn | None = None
    prune: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] | None = None
    needs: frozenset[str] = frozenset()


NO_STEPS = LinearSteps()


@dataclass(frozen=True)
class LinearPlan:
    """What the path chose for one linear, not yet applied: ``mask`` [out, in] (True = prune),
    ``scores`` [out, in] (None for a self-selecting method), column order ``perm`` [in] or None,
    ``weight``: the new weight [out, in] of a weight-updating step, None if the kept ones stay."""

    mask: torch.Tensor
    scores: torch.Tensor | None
    perm: torch.Tensor | None = None
    weight: torch.Tensor | None = None


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


def layer_pattern(pattern: Pattern, sparsity: float) -> Pattern:
    """The N:M pattern of one layer whose planned sparsity may differ from the global N/M:
    n = sparsity * M, which must be a whole number (allocation plans under N:M are quantised)."""
    if not pattern.structured or math.isclose(sparsity, pattern.sparsity_or(0)):
        return pattern
    n = round(sparsity * pattern.m)
    if not math.isclose(n / pattern.m, sparsity, abs_tol=1e-9) or not 0 < n < pattern.m:
        raise ValueError(f"layer sparsity {sparsity:g} is not k/{pattern.m} with 0 < k < {pattern.m}; "
                         f"an N:M plan needs multiples of 1/{pattern.m}")
    return Pattern(n, pattern.m)


def needed_stats(cfg: PruneConfig, steps: LinearSteps = NO_STEPS) -> frozenset[str]:
    """Statistics the engine must collect: the method's and the steps' (subset of
    :data:`~crepe.methods.declare.STATISTICS`); the method's own only where its score is read (not under an
    update declared ``reads_score=False`` without permutation); "dense_shift" (the dense stream) only with a ``dense_target``."""
    score_read = cfg.update_entry.reads_score or cfg.permute is not None
    needs = (cfg.method_entry.needs if score_read else frozenset()) | steps.needs
    return needs if cfg.dense_target else needs - {"dense_shift"}


def dense_stream_dtype(cfg: PruneConfig, needs: frozenset[str], device: torch.device) -> torch.dtype | None:
    """The dtype of the dense stream's layer forward on ``device`` (the engine's ``dense_dtype``), None
    when ``needs`` carries no dense stream (:func:`crepe.methods.gradual.dense_forward_dtype`)."""
    return dense_forward_dtype(cfg, device) if "dense_shift" in needs else None


def _check_steps(cfg: PruneConfig, steps: LinearSteps | None) -> LinearSteps:
    if steps is None:
        if cfg.permute is not None or cfg.repruning is not None or cfg.resolved_update != "none":
            raise ValueError("this config composes permutation/re-pruning/a weight update: pass steps="
                             "crepe.compose.steps.linear_steps(cfg)")
        return NO_STEPS
    return steps


def plan_linear(weight: torch.Tensor, stats: InputStats, cfg: PruneConfig, *, role: str | None = None,
                sparsity: float | None = None, in_attention: bool = False, steps: LinearSteps | None = None,
                name: str = "") -> LinearPlan:
    """Choose the mask (and new weight) of ``weight`` [out, in] under ``cfg`` without changing it.

    role: the linear's projection role (per-projection CRePE parameters); sparsity: this layer's
    own target (non-uniform allocation), default ``cfg.sparsity``; in_attention: the linear is in
    an attention block (DSnoT's default scope); name: for error messages.
    """
    steps = _check_steps(cfg, steps)
    target = cfg.sparsity if sparsity is None else sparsity
    method = cfg.method_entry
    pattern = layer_pattern(cfg.pattern, target)
    order = steps.order if pattern.structured else None
    if method.prune is not None:
        new, mask, perm = method.prune(weight, stats, target, pattern, cfg, order)
        return LinearPlan(mask, None, perm, new)
    if steps.prune is not None:  # a step that selects while it updates (the CRePE sweep)
        new, mask, perm = steps.prune(weight, stats, target, pattern, cfg, order, role)
        return LinearPlan(mask, None, perm, new)
    params = cfg.crepe.for_projection(role)
    scores = method.score(weight.float(), stats, params)
    if not all_finite(scores):
        raise ValueError(f"non-finite {cfg.method} scores in {name or 'a layer'}: check weights and inputs")
    perm = order(scores, pattern) if order is not None else None
    if perm is None:
        mask = select_mask(scores, target, pattern, cfg.resolved_group)
    else:
        mask = torch.empty_like(scores, dtype=torch.bool)
        mask[:, perm] = select_mask(scores[:, perm], target, pattern, cfg.resolved_group)
    if steps.refine is not None:
        mask = steps.refine(weight, scores, mask, stats, perm, pattern, in_attention)
    new = steps.update(weight, mask, stats) if steps.update is not None else None
    return LinearPlan(mask, scores, perm, new)


def kept_sum(scores: torch.Tensor, keep: torch.Tensor) -> float:
    """Sum of ``scores`` [out, in] where ``keep``: a dot product per block of 1024 rows (no
    score-sized temporary; float x bool products take a slow type-promotion path, 8x slower)."""
    total = 0.0
    for i in range(0, scores.shape[0], 1024):
        total += float(torch.einsum("ij,ij->", scores[i:i + 1024], keep[i:i + 1024].to(scores.dtype)))
    return total


@torch.no_grad()
def apply_plan(weight: torch.Tensor, plan: LinearPlan) -> LinearResult:
    """Write ``plan`` into ``weight`` [out, in] in place (it may be a transposed view) and report it."""
    zeros_before = count_zeros(weight)
    kept = None
    keep = ~plan.mask
    if plan.weight is not None:
        weight.copy_(plan.weight.to(weight.dtype))
    else:  # = masked_fill_(mask, 0), 3x faster on CPU; adding 0.0 turns -0.0 (negative weights) into +0.0
        weight.mul_(keep).add_(0.0)
    if plan.scores is not None:
        kept = kept_sum(plan.scores, keep) / max(float(plan.scores.sum()), 1e-30)
    return LinearResult(tuple(weight.shape), zeros_before, count_zeros(weight), kept, plan.perm)


def prune_linear(weight: torch.Tensor, stats: InputStats, cfg: PruneConfig, *, role: str | None = None,
                 sparsity: float | None = None, in_attention: bool = False, steps: LinearSteps | None = None,
                 name: str = "") -> LinearResult:
    """Prune ``weight`` [out, in] in place along the path (arguments as :func:`plan_linear`)."""
    target = cfg.sparsity if sparsity is None else sparsity
    if target <= 0:
        zeros = count_zeros(weight)
        return LinearResult(tuple(weight.shape), zeros, zeros)
    plan = plan_linear(weight, stats, cfg, role=role, sparsity=target, in_attention=in_attention, steps=steps,
                       name=name)
    return apply_plan(weight, plan)
