"""The composition steps that plug into the per-linear path (:mod:`crepe.prune.linear`), built
from a :class:`~crepe.config.PruneConfig`: channel permutation gives the column order N:M groups
are selected in, DSnoT refines the mask. Pure functions of tensors and configs."""

from __future__ import annotations

from functools import partial

import torch

from crepe.compose.dsnot import applies_to, dsnot_refine
from crepe.compose.permutation import find_permutation
from crepe.config import PermuteConfig, PruneConfig, RepruneConfig
from crepe.methods.params import Pattern
from crepe.methods.scorers import InputStats
from crepe.prune.linear import LinearSteps


def input_moments(stats: InputStats) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of each input channel over the calibration tokens: two [in] tensors."""
    if stats.lin_sum is None or stats.sq_sum is None or stats.tokens == 0:
        raise ValueError("dsnot needs the per-channel input sum and square sum; none were collected")
    mean = stats.lin_sum / stats.tokens
    return mean, (stats.sq_sum / stats.tokens - mean.pow(2)).clamp_min(0)


def permutation_order(cfg: PermuteConfig, scores: torch.Tensor, pattern: Pattern) -> torch.Tensor:
    """The column order [in] that keeps the most score under ``pattern`` (identity if none keeps more)."""
    return find_permutation(scores, pattern.n, pattern.m, cfg)


def dsnot_step(cfg: RepruneConfig, weight: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor,
               stats: InputStats, perm: torch.Tensor | None, pattern: Pattern, in_attention: bool) -> torch.Tensor:
    """DSnoT on the mask [out, in] of the unpruned ``weight``, in the column order it was selected
    in (so N:M groups stay groups); linears outside the configured scope keep their mask."""
    if not applies_to(in_attention, cfg):
        return mask
    mean, var = input_moments(stats)
    m = pattern.m if pattern.structured else None
    order = perm if perm is not None else torch.arange(weight.shape[1], device=weight.device)
    refined = dsnot_refine(weight[:, order], mask[:, order], scores[:, order], mean[order], var[order], cfg, m)
    mask[:, order] = refined
    return mask


def linear_steps(cfg: PruneConfig) -> LinearSteps:
    """The steps ``cfg`` asks for: permutation (``cfg.permute``), DSnoT (``cfg.repruning``) and the
    weight update, from its registry row (``cfg.update_entry``): a fixed-mask update runs after the
    mask, one that chooses its mask (the CRePE sweep) runs in place of score -> select."""
    update = cfg.update_entry
    needs = frozenset({"sum", "sq_sum"}) if cfg.repruning is not None else frozenset()
    return LinearSteps(
        order=partial(permutation_order, cfg.permute) if cfg.permute is not None else None,
        refine=partial(dsnot_step, cfg.repruning) if cfg.repruning is not None else None,
        update=partial(update.apply, cfg=cfg) if update.apply is not None else None,
        prune=update.select,
        needs=needs | update.needs,
    )
