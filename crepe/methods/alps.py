"""ALPS (Meng et al., NeurIPS 2024): ADMM on the sparse constraint with a rho schedule driven by how
much the support still moves, then preconditioner-free conjugate gradients on the final support.

Everything works on the unit-diagonal scale of the dampened Hessian (H_n = D^-1 (H + damp mean(diag H) I)
D^-1, W_n = W D), batched over the rows of W [out, in]. The support is chosen by ``keep`` (the
projection onto the sparse set by a saliency: |.| for ALPS itself, CRePE's score for crepe's update).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from crepe.methods.admm import unit_hessian
from crepe.methods.declare import Method, register, weight_update
from crepe.methods.masks import in_column_order, select_mask
from crepe.methods.obs import input_hessian
from crepe.methods.params import Pattern
from crepe.methods.scorers import InputStats

Projector = Callable[[torch.Tensor], torch.Tensor]
"""(candidate W_n [out, in] on the unit-diagonal scale) -> keep mask [out, in] float 0/1."""


def masked_cg(h: torch.Tensor, target: torch.Tensor, keep: torch.Tensor, start: torch.Tensor,
              iterations: int = 10, rtol: float = 1e-4) -> torch.Tensor:
    """Conjugate gradients for every row r of min_x ||x - w_r||^2_H on the support keep_r:
    solves (H x)_S = target_S with x zero off S, from ``start`` [out, in] (zero off S). target = W H
    [out, in]; h [in, in] symmetric positive definite. Stops after ``iterations`` or when every row's
    residual is below rtol times its target's norm."""
    x = start * keep
    r = (target - x @ h) * keep
    p = r.clone()
    rr = (r * r).sum(1, keepdim=True)
    limit = (rtol * target.norm(dim=1, keepdim=True)) ** 2
    for _ in range(iterations):
        if bool((rr <= limit).all()):
            break
        hp = (p @ h) * keep
        alpha = rr / (p * hp).sum(1, keepdim=True).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * hp
        rr_new = (r * r).sum(1, keepdim=True)
        p = r + (rr_new / rr.clamp_min(1e-30)) * p
        rr = rr_new
    return x


def alps_solve(weight: torch.Tensor, hessian: torch.Tensor, keep: Projector, kept: int, rho: float = 0.1,
               max_iterations: int = 300, check_every: int = 3, settle_after: int = 30, damp: float = 0.01,
               cg_iterations: int = 10, start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """ALPS on one linear: (new weight [out, in] float32, prune mask [out, in]).

    weight [out, in], hessian [in, in] = sum X^T X; ``keep`` projects a candidate onto the sparse set;
    ``kept``: the number of weights it keeps (the support-change rates are relative to it).
    ADMM splits W into B (least squares) and D (sparse): B = (W_n H_n - V + rho D)(H_n + rho I)^-1,
    D = P(B + V / rho), V += rho (B - D). Every ``check_every`` iterations the support change sets rho:
    > 10% of the kept count x1.3, > 0.5% x1.2, else x1.1 once rho has started to rise; before that a
    still support divides rho by 5 (a moving one restarts from W with the smaller rho). It stops when
    the support is still after rho rose, or after ``settle_after`` iterations once it changes by less
    than 0.03%. Then P(B) fixes the support and :func:`masked_cg` re-solves the kept weights.
    ``start``: the prune mask [out, in] of the starting support (default: the projection of W).
    """
    h, scale = unit_hessian(hessian, damp)
    w0 = weight.detach().float() * scale.unsqueeze(0)
    target = w0 @ h
    evals, evecs = (t.float() for t in torch.linalg.eigh(h.double()))  # once, in float64 as ALPS does

    def inverse(r: float) -> torch.Tensor:  # (H_n + r I)^-1 from the eigenpairs: exact for every r, no solve
        return (evecs / (evals + r)) @ evecs.T

    inv = inverse(rho)
    d_start = (keep(w0) if start is None else (~start).float()) * w0
    b, d, v = w0.clone(), d_start.clone(), torch.zeros_like(w0)
    support = d_start != 0
    risen = False
    for it in range(max_iterations):
        b = (target - v + rho * d) @ inv
        cand = b + v / rho
        kept_now = keep(cand)
        d = kept_now * cand
        v = v + rho * (b - d)
        if (it + 1) % check_every:
            continue
        now = kept_now != 0
        change = int((now != support).sum())
        support = now
        if change > 0.1 * kept:
            rho, risen = rho * 1.3, True
        elif change > 0.005 * kept:
            rho, risen = rho * 1.2, True
        elif change > 0:
            if risen:
                rho *= 1.1
            else:
                rho /= 5
                b, d, v = w0.clone(), d_start.clone(), torch.zeros_like(w0)
        elif risen:
            break
        else:
            rho /= 5
        rho = min(rho, 1e6)
        inv = inverse(rho)
        if it >= settle_after and change < 3e-4 * kept:
            break
    final = keep(b)
    solved = masked_cg(h, target, final, b * final, cg_iterations)
    return solved / scale.unsqueeze(0), final == 0


def magnitude_projector(sparsity: float, pattern: Pattern) -> tuple[Projector, float]:
    """(ALPS's projection: keep the largest |W_n| per layer, or per N:M group; the kept share)."""
    def keep(cand: torch.Tensor) -> torch.Tensor:
        return (~select_mask(cand.abs(), sparsity, pattern, "layer")).float()
    return keep, (1 - pattern.n / pattern.m) if pattern.structured else 1 - sparsity


def alps_linear(weight: torch.Tensor, stats: InputStats, sparsity: float, pattern: Pattern, cfg,
                order=None) -> tuple[torch.Tensor, torch.Tensor, None]:
    """The ``alps`` method on one linear with ALPS's published settings (rho from 0.1, at most 300
    iterations, checks every 3, 10 CG steps, 1% damping): (new weight [out, in], prune mask [out, in], None)."""
    hessian = input_hessian(stats, "alps")
    if order is not None and pattern.structured:
        raise ValueError("alps chooses its N:M mask inside ADMM: channel permutation (--permute) does not apply")
    keep, share = magnitude_projector(sparsity, pattern)
    new, mask = alps_solve(weight, hessian, keep, round(share * weight.numel()))
    return new, mask, None


register(Method("alps", needs=frozenset({"hessian"}), default_group="block", updates_weights=True,
                prune=alps_linear))


@weight_update("alps", selects_mask=True, needs=("hessian",), reprune_stand_in="admm")
def alps_update_linear(weight: torch.Tensor, stats: InputStats, sparsity: float, pattern: Pattern, cfg,
                       order=None, role: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The ``alps`` update on one linear: ALPS started from the method's own mask (its score of the
    dense weight, selected as the engine selects), projecting by |W_n| from there, with the config's
    ``alps_damp``: (new weight [out, in], prune mask [out, in], column permutation [in] or None).
    ALPS moves the support: the starting mask changed the layer error by under 0.3% in the screen of
    docs/quality.md. With ``order`` (channel permutation) and N:M, the columns are reordered first by
    the method's score, solved, and mapped back."""
    hessian = input_hessian(stats, "alps")
    scores = cfg.method_entry.score(weight.float(), stats, cfg.crepe.for_projection(role))
    perm = order(scores, pattern) if order is not None and pattern.structured else None
    start = select_mask(scores if perm is None else scores[:, perm], sparsity, pattern, cfg.resolved_group)
    keep, share = magnitude_projector(sparsity, pattern)
    new, mask = in_column_order(perm, weight, hessian, lambda w, h: alps_solve(
        w, h, keep, round(share * w.numel()), damp=cfg.alps_damp, start=start))
    return new, mask, perm
