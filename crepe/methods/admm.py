"""The masked least squares min ||(W - W_hat) X||^2 s.t. W_hat[mask] = 0 by ADMM (Boza 2024),
batched over rows, on the unit-diagonal scale of the dampened Hessian. Declares the ``admm`` update
(fixed mask); :mod:`crepe.methods.gradual` chooses the mask inside the same iteration.
"""

from __future__ import annotations

from typing import Callable

import torch

from crepe.methods.declare import weight_update
from crepe.methods.obs import input_hessian
from crepe.methods.scorers import InputStats

ADMM_ITERATIONS = 10
"""ADMM iterations after the sweep (``sweep-admm``) and in ``admm``: chosen on SmolLM2 2:4 PPL by
``python -m benchmarks.quality`` (issue 12)."""


DAMPING_PLACEMENTS = ("mean", "unit")


def unit_hessian(hessian: torch.Tensor, damp: float, placement: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
    """(H_n [in, in], D [in]): the dampened ``hessian`` on a unit-diagonal scale, H_n = D^-1 H D^-1.

    Dead inputs (zero diagonal) get a unit one. ``placement`` "mean": H + damp mean(diag H) I first,
    D = sqrt of that diagonal (SparseGPT's damping; ALPS); "unit": D = sqrt(diag H), then damp I
    added to H_n, every input damped by the same share of its own energy (Boza's ADMM-Grad).
    """
    if placement not in DAMPING_PLACEMENTS:
        raise ValueError(f"unknown damping placement {placement!r}; choose from {', '.join(DAMPING_PLACEMENTS)}")
    h = hessian.detach().float().clone()
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    if placement == "mean":
        h.diagonal().add_(damp * h.diagonal().mean())
    scale = h.diagonal().sqrt()
    h_n = h / scale.unsqueeze(0) / scale.unsqueeze(1)
    if placement == "unit":
        h_n.diagonal().add_(damp)
    return h_n, scale


def admm_system(hessian: torch.Tensor, rho: float, damp: float, placement: str = "mean"
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(H_n [in, in], (H_n + rho I)^-1 [in, in], scale D [in]) for ADMM on the dampened ``hessian``
    (:func:`unit_hessian`). H_n + rho I has every eigenvalue >= rho: its float32 Cholesky inverse
    is accurate (cond <= 1 + in / rho)."""
    h_n, scale = unit_hessian(hessian, damp, placement)
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
