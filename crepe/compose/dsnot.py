"""DSnoT-style training-free mask refinement (Zhang et al. 2024), written anew.

For a row i of W [out, in] with prune mask P (True = pruned) and mean calibration input x̄ [in],
the expected output error of pruning is estimated as

    e_i = sum_{j in P_i} W_ij x̄_j        (c_ij = W_ij x̄_j is weight j's contribution).

While |e_i| > threshold, each row swaps one pruned and one kept weight, all rows in parallel:
regrow the pruned j with sign(c_ij) = sign(e_i) that maximises |c_ij| / var_j^p (removing its term
moves e_i towards 0; high-variance inputs are less trusted), then prune the kept k with the lowest
initial score among those whose c_ik has the sign opposite to the new error (any kept one if none);
under N:M, k is taken from j's group of M so every group keeps exactly N zeros. A row accepts a
swap only when |e_i| strictly decreases, and stops otherwise, so the counts per row (and per group)
never change and the error estimate never grows. At most ``max_cycles`` swaps per row.
"""

from __future__ import annotations

import logging

import torch

from crepe.config import RepruneConfig

log = logging.getLogger(__name__)


def applies_to(in_attention: bool, cfg: RepruneConfig) -> bool:
    """Whether a linear is refined: every linear with scope "all", else attention linears only
    (the adapter tells which those are)."""
    return cfg.scope == "all" or in_attention


def error_estimate(weight: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """e = sum over pruned j of W_ij x̄_j: weight/mask [out, in], mean [in] -> [out] float64."""
    return (weight.double() * mean.double().unsqueeze(0) * mask).sum(1)


def _allowed_for_pruning(mask: torch.Tensor, regrow: torch.Tensor, m: int | None) -> torch.Tensor:
    """Kept positions that may be pruned after regrowing column ``regrow`` [out]: [out, in] bool."""
    allowed = ~mask
    if m is not None:
        cols = torch.arange(mask.shape[1], device=mask.device)
        allowed = allowed & ((cols.unsqueeze(0) // m) == (regrow.unsqueeze(1) // m))
    return allowed


def _swap_step(contrib: torch.Tensor, mask: torch.Tensor, error: torch.Tensor, regrow_rank: torch.Tensor,
               prune_rank: torch.Tensor, m: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Propose one swap per row: (regrow col [out], prune col [out], new error [out], valid [out])."""
    rows = torch.arange(mask.shape[0], device=mask.device)
    same_sign = torch.sign(contrib) == torch.sign(error).unsqueeze(1)
    candidates = mask & same_sign & (contrib != 0)
    regrow = torch.where(candidates, regrow_rank, torch.full_like(regrow_rank, -torch.inf)).argmax(1)
    valid = candidates.any(1)
    after_regrow = error - contrib[rows, regrow]
    allowed = _allowed_for_pruning(mask, regrow, m)
    allowed[rows, regrow] = False
    opposite = allowed & (torch.sign(contrib) == -torch.sign(after_regrow).unsqueeze(1))
    pool = torch.where(opposite.any(1, keepdim=True), opposite, allowed)
    prune = torch.where(pool, prune_rank, torch.full_like(prune_rank, torch.inf)).argmin(1)
    valid &= pool.any(1)
    return regrow, prune, after_regrow + contrib[rows, prune], valid


@torch.no_grad()
def dsnot_refine(weight: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor, mean: torch.Tensor,
                 var: torch.Tensor, cfg: RepruneConfig = RepruneConfig(), m: int | None = None) -> torch.Tensor:
    """Refined prune mask [out, in] (True = pruned) with the same count per row (per M-group if
    ``m``). weight: the *unpruned* W [out, in]; scores: the initial importance [out, in];
    mean, var: input mean and variance per channel [in]."""
    contrib = weight.double() * mean.double().unsqueeze(0)
    regrow_rank = contrib.abs() / var.double().clamp_min(1e-12).pow(cfg.var_power).unsqueeze(0)
    prune_rank = scores.double()
    mask = mask.clone()
    error = (contrib * mask).sum(1)
    active = error.abs() > cfg.update_threshold
    rows = torch.arange(mask.shape[0], device=mask.device)
    swaps = 0
    for _ in range(cfg.max_cycles):
        if not active.any():
            break
        regrow, prune, new_error, valid = _swap_step(contrib, mask, error, regrow_rank, prune_rank, m)
        accept = active & valid & (new_error.abs() < error.abs())
        r = rows[accept]
        mask[r, regrow[accept]] = False
        mask[r, prune[accept]] = True
        error = torch.where(accept, new_error, error)
        active = accept & (error.abs() > cfg.update_threshold)
        swaps += int(accept.sum())
    log.debug("dsnot: %d swaps", swaps)
    return mask
