"""Coupled head-dimension pruning (ToaSt SCWP): pure scoring and selection functions.

For head h with rows ``Q_h, K_h, V_h`` [d, C] and output columns ``O_h`` [C, d] we score

    qk rows of  W_QK = [Q_h | K_h]   [d, 2C]     (Q and K share a mask)
    vo rows of  W_VO = [V_h | O_h^T] [d, 2C]     (V rows share a mask with O columns)

and keep the same number ``k`` of rows in every head. Scores: "median" = ||w_i - median_col(W)||_2
(FPGM-style; rows near the median are redundant), "l1" = ||w_i||_1, "l2" = ||w_i||_2^2.
Larger is more important. All functions are vectorised over heads and take plain tensors.
"""

from __future__ import annotations

from typing import Callable

import torch

HeadScore = Callable[[torch.Tensor], torch.Tensor]


def median_score(w: torch.Tensor) -> torch.Tensor:
    """[H, d, D] -> [H, d]: Euclidean distance of each row to its head's column-wise median."""
    med = w.median(dim=1, keepdim=True).values
    return (w - med).pow(2).sum(-1).sqrt()


def l1_score(w: torch.Tensor) -> torch.Tensor:
    """[H, d, D] -> [H, d]: row L1 norm."""
    return w.abs().sum(-1)


def l2_score(w: torch.Tensor) -> torch.Tensor:
    """[H, d, D] -> [H, d]: squared row L2 norm."""
    return w.pow(2).sum(-1)


HEAD_SCORERS: dict[str, HeadScore] = {"median": median_score, "l1": l1_score, "l2": l2_score}


def per_head(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Output-row weight [H*d, C] -> [H, d, C]."""
    return w.reshape(heads, -1, w.shape[-1])


def coupled_scores(
    wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor, wo: torch.Tensor, heads: int, score: str = "median"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of the coupled rows: ``qk`` [H, d] from [Q_h | K_h], ``vo`` [H, d] from [V_h | O_h^T].

    ``wq, wk, wv``: [H*d, C] projection weights (rows = output dims); ``wo``: [C, H*d].
    """
    if score not in HEAD_SCORERS:
        raise ValueError(f"unknown head score {score!r}; choose one of {sorted(HEAD_SCORERS)}")
    f = HEAD_SCORERS[score]
    qk = torch.cat([per_head(wq, heads), per_head(wk, heads)], dim=-1)
    vo = torch.cat([per_head(wv, heads), per_head(wo.t(), heads)], dim=-1)
    return f(qk.float()), f(vo.float())


def top_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [..., k] of the ``k`` largest entries of each row, ascending; ties go to the lower index."""
    if not 1 <= k <= scores.shape[-1]:
        raise ValueError(f"keep count {k} outside [1, {scores.shape[-1]}]")
    return torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :k].sort(dim=-1).values


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask [..., n] keeping the ``k`` largest of each row (see :func:`top_indices`)."""
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, top_indices(scores, k), True)


def head_dim_masks(qk: torch.Tensor, vo: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-head top-``keep`` masks [H, d] for the Q/K and the V/O rows (same count in every head)."""
    return topk_mask(qk, keep), topk_mask(vo, keep)


def whole_head_masks(qk: torch.Tensor, vo: torch.Tensor, keep_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-head removal: keep the ``keep_heads`` heads with the largest total score ``sum(qk)+sum(vo)``.

    Returns [H, d] masks that are all-True for kept heads and all-False for removed ones.
    """
    head_score = qk.sum(-1) + vo.sum(-1)
    kept = topk_mask(head_score, keep_heads)
    mask = kept[:, None].expand_as(qk).clone()
    return mask, mask.clone()
