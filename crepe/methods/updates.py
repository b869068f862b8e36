"""Weight reconstruction after (or while) choosing a mask: pure tensor functions.

All three minimise the layer's output error ||(W - W_hat) X||^2 = tr((W - W_hat) H (W - W_hat)^T)
for H = X^T X [in, in] (dampened by ``damp`` x mean(diag H), as SparseGPT does), keeping the pruned
entries at exactly 0. Masks are bool [out, in], True = prune.

- :func:`obs_update`: SparseGPT's sequential OBS column sweep with the mask *given*.
- :func:`admm_update`: the masked least squares by ADMM (Boza 2024), batched over rows.
- :func:`sweep_prune`: the OBS sweep choosing its mask on the way with CRePE's relative importance
  of the current, already updated weights over the OBS diagonal (:class:`SweepForm`).

Each ``--update`` is a registry row (:class:`crepe.methods.declare.Update`) declared here with
:func:`~crepe.methods.declare.weight_update` on its per-linear function: none, obs, admm (fixed
mask: :func:`obs_linear`, :func:`admm_linear`), sweep and sweep-admm (they choose the mask:
:func:`sweep_linear`, :func:`sweep_admm_linear`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from crepe.methods.declare import Update, register_update, weight_update
from crepe.methods.masks import nm_mask, unstructured_mask
from crepe.methods.params import CrepeParams, Pattern
from crepe.methods.scorers import InputStats, col_term, neighbourhood_term
from crepe.methods.sparsegpt import _inverse_hessian_factor

_EPS = 1e-12

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


ADMM_ITERATIONS = 10
"""ADMM iterations after the sweep (``sweep-admm``) and in ``admm``: chosen on SmolLM2 2:4 PPL by
``python -m benchmarks.quality`` (docs/quality.md, "ADMM iterations")."""


def admm_system(hessian: torch.Tensor, rho: float, damp: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(H_n [in, in], (H_n + rho I)^-1 [in, in], scale D [in]) for ADMM on the dampened ``hessian``.

    H_n = D^-1 H D^-1 has a unit diagonal (D = sqrt(diag H), dead inputs get 1), so H_n + rho I has
    every eigenvalue >= rho: its float32 Cholesky inverse is accurate (cond <= 1 + in / rho).
    """
    h = hessian.detach().float().clone()
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    h.diagonal().add_(damp * h.diagonal().mean())
    scale = h.diagonal().sqrt()
    h_n = h / scale.unsqueeze(0) / scale.unsqueeze(1)
    shifted = h_n.clone()
    shifted.diagonal().add_(rho)
    return h_n, torch.cholesky_inverse(torch.linalg.cholesky(shifted)), scale


def _admm(weight: torch.Tensor, hessian: torch.Tensor, keep_at: Callable[[int, torch.Tensor], torch.Tensor],
          iterations: int, rho: float, damp: float, init: torch.Tensor | None = None) -> torch.Tensor:
    """ADMM for min ||(W - W_hat) X||^2 with W_hat zero where ``keep_at(t, V)`` [out, in] (float
    0/1; V = X + U, the current unconstrained iterate on the unit-diagonal scale) is 0."""
    if iterations < 1 or not rho > 0:
        raise ValueError(f"admm needs iterations >= 1 and rho > 0, got {iterations} and {rho}")
    h_n, inv, scale = admm_system(hessian, rho, damp)
    scale = scale.unsqueeze(0)
    w_n = weight.detach().float() * scale
    target = w_n @ h_n
    z = w_n if init is None else init.detach().float() * scale
    u = torch.zeros_like(w_n)
    for t in range(iterations):
        v = torch.addmm(u, torch.add(target, z - u, alpha=rho), inv)
        z = keep_at(t, v) * v
        u = v - z
    return z / scale


def admm_update(weight: torch.Tensor, hessian: torch.Tensor, mask: torch.Tensor, iterations: int = ADMM_ITERATIONS,
                rho: float = 1.0, damp: float = 0.01, init: torch.Tensor | None = None) -> torch.Tensor:
    """Masked least squares min ||(W - W_hat) X||^2 s.t. W_hat[mask] = 0 by ADMM: [out, in] float32.

    H is dampened, then scaled to a unit diagonal (H_n = D^-1 H D^-1, W_n = W D, D = sqrt(diag H)) so
    that one ``rho`` suits every layer. One Cholesky inverse of H_n + rho I per layer, then every
    iteration is two [out, in] x [in, in] products for all rows at once:
    X = (W_n H_n + rho (Z - U)) (H_n + rho I)^-1; Z = keep * (X + U); U += X - Z. Returns Z / D.
    ``init`` [out, in]: a starting point for Z (e.g. the OBS sweep's result), default W.
    """
    if mask.shape != weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match weight {tuple(weight.shape)}")
    keep = (~mask.to(torch.bool)).float()
    return _admm(weight, hessian, lambda t, v: keep, iterations, rho, damp, init * keep if init is not None else None)


@weight_update("admm", needs=("hessian",))
def admm_linear(weight: torch.Tensor, mask: torch.Tensor, stats: InputStats, cfg) -> torch.Tensor:
    """The admm update of one linear: :func:`admm_update` of the unpruned weight [out, in] on the
    final mask [out, in] with the config's damping; new weight [out, in] float32."""
    return admm_update(weight, input_hessian(stats, "admm"), mask, damp=cfg.sparsegpt_damp)


def admm_prune(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float, pattern: Pattern = Pattern(),
               params: CrepeParams = CrepeParams(), group: str = "layer", iterations: int = 30,
               prune_iterations: int = 15, rho: float = 1.0, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """ADMM that chooses its mask on the way (Boza 2024's gradual pruning) by CRePE's relative
    importance of the current iterate: (new weight [out, in], mask [out, in]).

    During the first ``prune_iterations`` iterations the mask is re-chosen from A = |V| (V = X + U
    on the unit-diagonal scale, i.e. |W| ||X_j|| for the dense W) with alpha A/rowsum + beta
    A/colsum (+ gamma nbr_k(A)); the sparsity rises as s (1 - (1 - (t+1)/P)^3) (N:M: the number
    pruned per group of M, at least 1). Then the mask stays and ADMM converges on it.
    """
    state: dict[str, torch.Tensor] = {}

    def keep_at(t: int, v: torch.Tensor) -> torch.Tensor:
        if t < prune_iterations or "keep" not in state:
            a = v.abs()
            sal = params.alpha * a / a.sum(1, keepdim=True).clamp_min(_EPS) + params.beta * col_term(a)
            if params.gamma:
                sal = sal + params.gamma * neighbourhood_term(a, params.kernel, params.nbr_form, params.padding)
            ramp = 1 - (1 - min(t + 1, prune_iterations) / prune_iterations) ** 3
            if pattern.structured:
                mask = nm_mask(sal, max(1, round(pattern.n * ramp)), pattern.m)
            else:
                mask = unstructured_mask(sal, sparsity * ramp, group)
            state["keep"] = (~mask).float()
        return state["keep"]

    new = _admm(weight, hessian, keep_at, iterations, rho, damp)
    return new, state["keep"] == 0


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
        weight, hessian = weight[:, perm], hessian[perm][:, perm]
    new, mask = sweep_prune(weight, hessian, sparsity, pattern, params, SweepForm(), cfg.resolved_group,
                            cfg.sparsegpt_blocksize, cfg.sparsegpt_damp)
    if then_admm:
        new = admm_update(weight, hessian, mask, damp=cfg.sparsegpt_damp, init=new)
    if perm is not None:
        inverse = torch.argsort(perm)
        new, mask = new[:, inverse], mask[:, inverse]
    return new, mask, perm


@weight_update("sweep", selects_mask=True, needs=("hessian",), methods=("crepe",), reprune_stand_in="admm",
               unread=SWEEP_UNREAD)
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
               unread=SWEEP_UNREAD)
def sweep_admm_linear(weight: torch.Tensor, stats: InputStats, sparsity: float, pattern: Pattern, cfg,
                      order: Callable[[torch.Tensor, Pattern], torch.Tensor] | None = None, role: str | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`sweep_linear`, then ADMM re-solves the kept weights of the sweep's mask (started from
    the sweep's result; crepe's default update): (new weight [out, in], mask [out, in], permutation or None)."""
    return _sweep(weight, stats, sparsity, pattern, cfg, order, role, "sweep-admm", then_admm=True)
