"""Input-channel permutation for N:M sparsity: pure, vectorised search, any device.

An N:M mask keeps the K = M - N highest scores of every M consecutive input columns of each row.
Reordering the columns by a permutation ``perm`` (column q of the permuted matrix is original
column ``perm[q]``) changes which columns share a group, hence how much score can be kept:

    kept(perm) = sum_rows sum_groups topK( S[:, perm].view(out, G, M) ),   G = in / M.

Search (after the RIA reference, written anew):
1. reallocation: sort columns by summed score, cut the order into M quantile chunks of G columns
   and deal chunk p into position p of the G groups, reversing every other chunk (snake order);
2. refinement: for each position p, hold the other M-1 columns of every group fixed and assign
   the G columns at position p to the G groups by a linear assignment maximising the kept score.
   With o_K[r, g] the K-th largest of the fixed scores of group g in row r, a candidate c kept in
   g contributes max(S[r, c], o_K[r, g]) = (S[r, c] + o_K[r, g] + |S[r, c] - o_K[r, g]|) / 2, so the
   cost matrix is an L1 distance, ``torch.cdist(..., p=1)``. Fast mode splits the G groups into
   independent blocks of ``block_groups``. Each step can only raise the kept score; the identity
   is kept unless the result keeps strictly more.
"""

from __future__ import annotations

import logging

import torch
from scipy.optimize import linear_sum_assignment

from crepe.config import PermuteConfig
from crepe.methods.masks import nm_mask

log = logging.getLogger(__name__)


def inverse_permutation(perm: torch.Tensor) -> torch.Tensor:
    """inv with inv[perm[q]] = q: [in] long."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device)
    return inv


def kept_score(scores: torch.Tensor, n: int, m: int, perm: torch.Tensor | None = None) -> float:
    """Total score N:M keeps in the (optionally permuted) matrix: scores [out, in] -> float64 sum."""
    s = scores if perm is None else scores[:, perm]
    rows, cols = s.shape
    return float(s.double().view(rows, cols // m, m).topk(m - n, dim=-1).values.sum())


def snake_reallocation(scores: torch.Tensor, m: int) -> torch.Tensor:
    """Deal columns, sorted by summed score, into M position classes in snake order: perm [in]."""
    cols = scores.shape[1]
    order = torch.sort(scores.double().sum(0), stable=True).indices
    chunks = order.view(m, cols // m).clone()
    chunks[1::2] = chunks[1::2].flip(-1)
    return chunks.t().reshape(-1)


def _position_costs(grouped: torch.Tensor, position: int, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates and thresholds for one position: grouped [out, G, M] -> cand, o_K both [G, out].

    The gain of putting candidate c into group g is sum_r max(cand[c, r], o_K[g, r]) + const.
    """
    others = torch.cat([grouped[..., :position], grouped[..., position + 1:]], dim=-1)
    thresholds = others.topk(keep, dim=-1).values[..., keep - 1]
    return grouped[..., position].t().contiguous(), thresholds.t().contiguous()


def _assign(cand: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """Optimal assignment of candidates [G, out] to groups [G, out]: group index of each candidate."""
    gain = torch.cdist(cand.unsqueeze(0), thr.unsqueeze(0), p=1)[0] + cand.sum(1, keepdim=True) + thr.sum(1)
    rows, cols = linear_sum_assignment(gain.double().cpu().numpy(), maximize=True)
    target = torch.empty(cand.shape[0], dtype=torch.long)
    target[torch.from_numpy(rows)] = torch.from_numpy(cols).long()
    return target.to(cand.device)


def refine_position(scores: torch.Tensor, perm: torch.Tensor, n: int, m: int, position: int,
                    block_groups: int = 0) -> torch.Tensor:
    """One assignment step at ``position``: returns the new perm [in] (others fixed)."""
    rows, cols = scores.shape
    groups = cols // m
    grouped = scores[:, perm].float().view(rows, groups, m)
    cand, thr = _position_costs(grouped, position, m - n)
    block = block_groups or groups
    slots = perm.view(groups, m).clone()
    column = slots[:, position].clone()
    for start in range(0, groups, block):
        stop = min(start + block, groups)
        target = _assign(cand[start:stop], thr[start:stop]) + start
        slots[target, position] = column[start:stop]
    return slots.reshape(-1)


def find_permutation(scores: torch.Tensor, n: int, m: int, cfg: PermuteConfig = PermuteConfig()) -> torch.Tensor:
    """Column order for N:M selection of ``scores`` [out, in]: perm [in] long on scores' device.

    Never keeps less score than the identity order (checked in float64); the identity is returned
    unless the search keeps strictly more.
    """
    cols = scores.shape[1]
    if cols % m:
        raise ValueError(f"channel permutation for {n}:{m} needs the input width to be a multiple of {m}, got {cols}")
    identity = torch.arange(cols, device=scores.device)
    perm = snake_reallocation(scores, m)
    for _ in range(cfg.iterations):
        for position in range(m):
            perm = refine_position(scores, perm, n, m, position, cfg.block_groups)
    base, found = kept_score(scores, n, m), kept_score(scores, n, m, perm)
    log.debug("permutation kept score %.6g -> %.6g", base, found)
    return perm if found > base * (1 + 1e-12) else identity


def permuted_nm_mask(scores: torch.Tensor, n: int, m: int, perm: torch.Tensor) -> torch.Tensor:
    """N:M prune mask chosen in permuted column order, mapped back to the original order: [out, in]."""
    mask = torch.empty_like(scores, dtype=torch.bool)
    mask[:, perm] = nm_mask(scores[:, perm], n, m)
    return mask
