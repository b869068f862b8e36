"""The CRePE sweep: SparseGPT's OBS column sweep choosing its mask on the way by CRePE's relative
importance of the current, already updated weights over the OBS diagonal (:class:`SweepForm`).
Declares the updates ``sweep`` and ``sweep-admm`` (the sweep's mask, its kept weights re-solved by ADMM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from crepe.methods.admm import admm_update
from crepe.methods.declare import weight_update
from crepe.methods.masks import in_column_order, nm_mask, unstructured_mask
from crepe.methods.obs import input_hessian, obs_sweep
from crepe.methods.params import CrepeParams, Pattern
from crepe.methods.scorers import InputStats, col_term, neighbourhood_term

_EPS = 1e-12

@dataclass(frozen=True)
class SweepForm:
    """How CRePE's score reads the sweep's current weights A = |W_cur|.

    saliency = (alpha A/rowsum + beta A/colsum + gamma nbr_k(A)) * d^-diag_power * ||X_j||^act_power,
    d = diag of U (U^T U = H^-1; SparseGPT's saliency is (|w|/d)^2). rowsum: over the whole current
    row (``row_scope="row"``; beyond the current block as lazily updated) or over the block only
    ("block"); colsum: over the column; nbr: the k x k window of current weights.
    act_power: extra activation-norm factor (0: the OBS diagonal alone stands for the inputs).
    """

    diag_power: float = 1.0
    act_power: float = 0.0
    row_scope: str = "row"

    def __post_init__(self) -> None:
        if self.row_scope not in ("row", "block"):
            raise ValueError(f"unknown sweep row_scope {self.row_scope!r}; choose from row, block")


def sweep_saliency(w: torch.Tensor, rows: torch.Tensor, diag: torch.Tensor, act: torch.Tensor, lo: int, hi: int,
                   params: CrepeParams, form: SweepForm) -> torch.Tensor:
    """CRePE saliency of the columns lo:hi of the current weight w [out, in]: [out, hi - lo].

    rows [out]: the row sums of A = |w| to normalise by; diag [in]: the OBS diagonal d; act [in]:
    ||X_j||. The column term sums over all rows of a column, the neighbourhood term reads A around
    the unit (zero-padded beyond the matrix). Higher = more important.
    """
    a = w[:, lo:hi].abs()
    total = torch.zeros_like(a)
    if params.alpha:
        total += params.alpha * a / rows.unsqueeze(1).clamp_min(_EPS)
    if params.beta:
        total += params.beta * col_term(a)
    if params.gamma:
        r = params.kernel // 2
        left, right = max(0, lo - r), min(w.shape[1], hi + r)
        nbr = neighbourhood_term(w[:, left:right].abs(), params.kernel, params.nbr_form, params.padding)
        total += params.gamma * nbr[:, lo - left : hi - left]
    factor = diag[lo:hi].pow(-form.diag_power)
    if form.act_power:
        factor = factor * act[lo:hi].pow(form.act_power)
    return total * factor.unsqueeze(0)


def sweep_prune(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float, pattern: Pattern = Pattern(),
                params: CrepeParams = CrepeParams(), form: SweepForm = SweepForm(), group: str = "layer",
                blocksize: int = 128, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune ``weight`` [out, in] inside the OBS sweep with CRePE's saliency: (new weight, mask).

    Unstructured: each block of ``blocksize`` columns gets its mask when it is reached (``group``
    "layer": the lowest round(sparsity * out * blocksize) of the block; "row": per row of the
    block); N:M: each group of M when it is reached. Either way on the weights as updated so far.
    """
    if pattern.structured and weight.shape[1] % pattern.m:
        raise ValueError(f"N:M pattern {pattern} needs the input width to be a multiple of {pattern.m}, "
                         f"got {weight.shape[1]}")
    act = hessian.diagonal().float().clamp_min(0).sqrt()
    outside: dict[int, torch.Tensor] = {}

    def pick(w, diag, lo, hi):
        start = lo // blocksize * blocksize
        end = min(start + blocksize, w.shape[1])
        rows = w[:, start:end].abs().sum(1)
        if form.row_scope == "row":  # columns outside the block do not change while it is swept
            if start not in outside:
                outside.clear()
                outside[start] = w[:, :start].abs().sum(1) + w[:, end:].abs().sum(1)
            rows = rows + outside[start]
        sal = sweep_saliency(w, rows, diag, act, lo, hi, params, form)
        return nm_mask(sal, pattern.n, pattern.m) if pattern.structured else unstructured_mask(sal, sparsity, group)

    if pattern.structured and blocksize % pattern.m:
        raise ValueError(f"sweep blocksize {blocksize} must be a multiple of M={pattern.m}")
    return obs_sweep(weight, hessian, pick, pattern.m if pattern.structured else blocksize, blocksize, damp)


SWEEP_UNREAD = ("act_power", "term_scale")
"""CrepeParams fields the sweep's saliency never reads (:class:`SweepForm`: the OBS diagonal stands for
the inputs); only N:M channel permutation, which orders the columns by the mask score, reads them."""


def _sweep(weight: torch.Tensor, stats: InputStats, sparsity: float, pattern: Pattern, cfg,
           order: Callable[[torch.Tensor, Pattern], torch.Tensor] | None, role: str | None, update: str,
           then_admm: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The CRePE sweep on one linear (see :func:`sweep_linear`); ``then_admm``: re-solve the kept
    weights of its mask by :func:`admm_update`, started from the sweep's result, before mapping back."""
    hessian = input_hessian(stats, update)
    params = cfg.crepe.for_projection(role)
    perm = None
    if order is not None and pattern.structured:
        from crepe.methods.scorers import crepe

        perm = order(crepe(weight.float(), InputStats(sq_sum=hessian.diagonal().float().clamp_min(0)), params), pattern)

    def solve(w: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        new, mask = sweep_prune(w, h, sparsity, pattern, params, SweepForm(), cfg.resolved_group,
                                cfg.sparsegpt_blocksize, cfg.sparsegpt_damp)
        return (admm_update(w, h, mask, damp=cfg.sparsegpt_damp, init=new) if then_admm else new), mask

    new, mask = in_column_order(perm, weight, hessian, solve)
    return new, mask, perm


@weight_update("sweep", selects_mask=True, needs=("hessian",), methods=("crepe",), reprune_stand_in="admm",
               unread=SWEEP_UNREAD, reads_score=False)
def sweep_linear(weight: torch.Tensor, stats: InputStats, sparsity: float, pattern: Pattern, cfg,
                 order: Callable[[torch.Tensor, Pattern], torch.Tensor] | None = None, role: str | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The CRePE sweep on one linear: (new weight [out, in], mask [out, in], column permutation or None).

    cfg: the PruneConfig (CRePE parameters of ``role``, comparison group, blocksize, damping). With
    ``order`` (channel permutation) and N:M, the columns are reordered first by CRePE's mask score
    of the dense weight (||X_j|| from the Hessian's diagonal), swept, and mapped back.
    """
    return _sweep(weight, stats, sparsity, pattern, cfg, order, role, "sweep", then_admm=False)


@weight_update("sweep-admm", selects_mask=True, needs=("hessian",), methods=("crepe",), reprune_stand_in="admm",
               unread=SWEEP_UNREAD, reads_score=False)
def sweep_admm_linear(weight: torch.Tensor, stats: InputStats, sparsity: float, pattern: Pattern, cfg,
                      order: Callable[[torch.Tensor, Pattern], torch.Tensor] | None = None, role: str | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`sweep_linear`, then ADMM re-solves the kept weights of the sweep's mask (started from
    the sweep's result; crepe's default update): (new weight [out, in], mask [out, in], permutation or None)."""
    return _sweep(weight, stats, sparsity, pattern, cfg, order, role, "sweep-admm", then_admm=True)
