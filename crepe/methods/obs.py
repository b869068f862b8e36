"""SparseGPT's OBS column sweep as a weight update: the mask given (``obs``) or chosen on the way
(:func:`obs_sweep` with a picker; the CRePE sweep in :mod:`crepe.methods.sweep`). Pure tensor functions.

Both minimise the layer's output error ||(W - W_hat) X||^2 = tr((W - W_hat) H (W - W_hat)^T) for
H = X^T X [in, in] (dampened by ``damp`` x mean(diag H), as SparseGPT does), keeping the pruned
entries at exactly 0. Masks are bool [out, in], True = prune. Declares the updates ``none`` (the kept
weights stay as they are) and ``obs``.
"""

from __future__ import annotations

from typing import Callable

import torch

from crepe.methods.declare import Update, register_update, weight_update
from crepe.methods.scorers import InputStats
from crepe.methods.sparsegpt import _inverse_hessian_factor

Picker = Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]
"""(current weight [out, in], OBS diagonal d [in], lo, hi) -> prune mask [out, hi - lo] for columns lo:hi."""

_SUB = 16  # columns per batched triangular solve inside a unit


def unit_errors(w_unit: torch.Tensor, u_unit: torch.Tensor, mask_unit: torch.Tensor) -> torch.Tensor:
    """OBS errors E [out, k] of pruning ``mask_unit`` [out, k] in the columns w_unit [out, k], given
    the upper Cholesky factor block u_unit [k, k] of H^-1.

    SparseGPT's column recursion E_i = m_i (w_i - sum_{j<i} E_j U_ji) / U_ii, solved for all rows at
    once, 16 columns at a time: per row r, E_r A_r = m_r * w_r with the upper triangular
    A_r = (m_r m_r^T) * U + diag(1 - m_r). The columns then become w - E U (pruned ones 0 up to rounding).
    """
    k = w_unit.shape[1]
    if k > _SUB:
        w, out = w_unit.clone(), torch.empty_like(w_unit)
        for s in range(0, k, _SUB):
            t = min(s + _SUB, k)
            out[:, s:t] = unit_errors(w[:, s:t], u_unit[s:t, s:t], mask_unit[:, s:t])
            w[:, t:] -= out[:, s:t] @ u_unit[s:t, t:]
        return out
    m = mask_unit.to(w_unit.dtype)
    a = u_unit.unsqueeze(0) * (m.unsqueeze(2) * m.unsqueeze(1))
    a.diagonal(dim1=1, dim2=2).add_(1 - m)
    return torch.linalg.solve_triangular(a, (w_unit * m).unsqueeze(1), upper=True, left=False).squeeze(1)


def inverse_hessian_factor(hessian: torch.Tensor, damp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(U [in, in], dead [in]): the upper Cholesky factor of the dampened H^-1 as SparseGPT takes it
    (dead inputs, with a zero diagonal, get a unit one), and the mask of those dead inputs."""
    h = hessian.detach().float().clone()
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    return _inverse_hessian_factor(h, damp), dead


def obs_sweep(weight: torch.Tensor, hessian: torch.Tensor, pick: Picker, unit: int = 128, blocksize: int = 128,
              damp: float = 0.01, zero_dead: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The OBS column sweep with the mask chosen by ``pick``, ``unit`` columns at a time.

    weight [out, in], hessian [in, in] = sum X^T X. For each unit of columns, left to right: ``pick``
    sees the weights as updated so far (lazily beyond the current block of ``blocksize`` columns, as
    in SparseGPT), the unit's errors are solved at once (:func:`unit_errors`) and spread over the
    later columns through U (U^T U = H^-1). This is SparseGPT's sweep reorganised, so with its
    saliency it gives its result up to float rounding. ``zero_dead``: zero the weights of inputs that
    are always 0 first (SparseGPT does). Returns (new weight float32 [out, in] with the pruned
    entries exactly 0, mask [out, in]).
    """
    if blocksize % unit:
        raise ValueError(f"the sweep's blocksize {blocksize} must be a multiple of its unit {unit}")
    w = weight.detach().float().clone()
    hinv, dead = inverse_hessian_factor(hessian, damp)
    if zero_dead:
        w[:, dead] = 0.0
    diag = hinv.diagonal()
    mask = torch.zeros_like(w, dtype=torch.bool)
    for start in range(0, w.shape[1], blocksize):
        end = min(start + blocksize, w.shape[1])
        err = torch.empty_like(w[:, start:end])
        for lo in range(start, end, unit):
            hi = min(lo + unit, end)
            mask[:, lo:hi] = pick(w, diag, lo, hi)
            err[:, lo - start : hi - start] = unit_errors(w[:, lo:hi], hinv[lo:hi, lo:hi], mask[:, lo:hi])
            w[:, lo:end] -= err[:, lo - start : hi - start] @ hinv[lo:hi, lo:end]
        w[:, end:] -= err @ hinv[start:end, end:]
    w[mask] = 0.0
    return w, mask


def obs_update(weight: torch.Tensor, hessian: torch.Tensor, mask: torch.Tensor, blocksize: int = 128,
               damp: float = 0.01) -> torch.Tensor:
    """SparseGPT's OBS sweep with a given ``mask`` [out, in] (True = prune): new weight [out, in] float32.

    The mask is never changed: pruned entries become exactly 0, kept ones absorb the error. With the
    mask SparseGPT itself chose it reproduces ``sparsegpt_prune`` to float rounding.
    Weights of dead inputs (zero Hessian diagonal) that the mask keeps stay as they are.
    """
    if mask.shape != weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match weight {tuple(weight.shape)}")
    given = mask.to(torch.bool)
    new, _ = obs_sweep(weight, hessian, lambda w, d, lo, hi: given[:, lo:hi], blocksize, blocksize, damp,
                       zero_dead=False)
    return new


def input_hessian(stats: InputStats, update: str) -> torch.Tensor:
    """The input Hessian [in, in] of ``stats``; a clear ValueError when none was collected."""
    if stats.hessian is None:
        raise ValueError(f"the {update} update needs the input Hessian; none was collected")
    return stats.hessian


register_update(Update("none"))  # the kept weights stay as they are


@weight_update("obs", needs=("hessian",))
def obs_linear(weight: torch.Tensor, mask: torch.Tensor, stats: InputStats, cfg) -> torch.Tensor:
    """The obs update of one linear: :func:`obs_update` of the unpruned weight [out, in] on the final
    mask [out, in], with the config's blocksize and damping; new weight [out, in] float32."""
    return obs_update(weight, input_hessian(stats, "obs"), mask, cfg.sparsegpt_blocksize, cfg.sparsegpt_damp)
