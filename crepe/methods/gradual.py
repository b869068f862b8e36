"""ADMM with the mask chosen during the first iterations (Boza 2024's "gradual" ADMM pruning).

The iterate V = X + U (the unconstrained ADMM variable on the unit-diagonal scale W_n = W D,
D = sqrt(diag H)) is re-scored during the first ``select_iterations`` iterations and the mask
re-chosen from it; then the mask stays and ADMM converges on it. ``score`` decides what "important"
means: |V| (= |W| ||X_j||, ADMM-Grad itself) or CRePE's relative importance of the current weights.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import cache

import torch

from crepe.io.environment import bfloat16_native
from crepe.methods.admm import admm_system
from crepe.methods.declare import Method, register, weight_update
from crepe.methods.masks import in_column_order, nm_mask, unstructured_mask
from crepe.methods.obs import input_hessian
from crepe.methods.params import SCORE_FIELDS, Pattern
from crepe.methods.scorers import InputStats

log = logging.getLogger(__name__)

PRODUCT_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""The admm-grad update's product precisions: name -> the dtype of the two operands of each
iteration's [out, in] x [in, in] product (the iterate, the mask choice and the inverse's
factorisation stay float32)."""
PRODUCT_CHOICES = ("auto", *PRODUCT_DTYPES)
"""``admm_grad_products`` and ``dense_precision`` values: "auto" (the default) is bfloat16 on hardware
that multiplies it natively (:func:`~crepe.io.environment.bfloat16_native`), float32 elsewhere."""

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(current iterate V [out, in] on the unit-diagonal scale, i.e. W D; D [in]) -> importance [out, in];
higher = keep. The weight on the original scale is V / D."""


def ramped_mask(score: torch.Tensor, sparsity: float, pattern: Pattern, group: str, share: float) -> torch.Tensor:
    """Prune mask [out, in] at ``share`` (0..1] of the way to the target. Unstructured: the target
    sparsity's mask (``share`` ignored: Boza re-selects at the final sparsity). N:M: the N:M mask,
    of which only the lowest-scored share x (its count) of the layer is pruned yet."""
    if not pattern.structured:
        return unstructured_mask(score, sparsity, group)
    full = nm_mask(score, pattern.n, pattern.m)
    total = score.numel() // pattern.m * pattern.n  # nm_mask prunes exactly n of every m
    count = round(total * share)
    if count >= total:
        return full
    # the N:M mask's entries keep their scores; the rest rise above them all (+ float max, finite so
    # that 0 x max adds nothing: 4x faster than masked_fill with inf on CPU)
    lifted = (~full).to(score.dtype).mul_(torch.finfo(score.dtype).max).add_(score)
    return unstructured_mask(lifted, count / score.numel(), "layer")


def gradual_admm(weight: torch.Tensor, hessian: torch.Tensor, score: Score, sparsity: float,
                 pattern: Pattern = Pattern(), group: str = "layer", iterations: int = 20,
                 select_iterations: int = 15, rho: float = 1.0, damp: float = 0.1,
                 dense_shift: torch.Tensor | None = None, toward_dense: float = 0.0,
                 relaxation: float = 1.0, product_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(new weight [out, in] float32 with the pruned entries 0, prune mask [out, in]).

    weight [out, in], hessian [in, in] = sum X^T X. ADMM for min ||(W - W_hat) X||^2 + damp ||(W - W_hat) D||^2
    (damping on the unit-diagonal scale, :func:`~crepe.methods.admm.unit_hessian` "unit"): X = (W_n H_n + rho (Z - U)) (H_n + rho I)^-1, Z = keep * (X + U), U += X - Z;
    for t < ``select_iterations`` the keep mask is re-chosen from ``score`` of the current X + U
    (:func:`ramped_mask`; the N:M share rises as 1 - (1 - (t + 1) / T)^3). Each iteration is one
    [out, in] x [in, in] product: W_n H_n (H_n + rho I)^-1 = W_n - rho W_n (H_n + rho I)^-1 folds the
    target's product into it.

    ``dense_shift`` [out, in] = sum (Y_dense - Y)^T X = W (X_dense^T X - H) (X_dense: the same tokens'
    inputs in the dense model) and ``toward_dense`` = b move the target from W X to
    (1 - b) W X + b W X_dense, the dense model's outputs: W_n H_n gains b dense_shift D^-1.

    ``relaxation`` = a in (0, 2) over-relaxes each step (Boyd et al. 2011, 3.4.3): the projection and
    the dual update read a X + (1 - a) Z for X, so V = U + a X + (1 - a) Z; 1 is plain ADMM.

    ``product_dtype`` torch.bfloat16 rounds both operands of each iteration's product to bfloat16 (about
    three significant digits; the product sums in float32 and is added to the float32 iterate): half the
    time where the hardware multiplies bfloat16 natively, slower where it does not (:func:`bfloat16_native`).
    """
    if iterations < 1 or select_iterations < 1 or not rho > 0 or not 0 < relaxation < 2:
        raise ValueError(f"gradual admm needs iterations >= 1, select_iterations >= 1, rho > 0 and relaxation in "
                         f"(0, 2), got {iterations}, {select_iterations}, {rho} and {relaxation}")
    _, inv, scale = admm_system(hessian, rho, damp, "unit")
    low = inv.to(product_dtype) if product_dtype != inv.dtype else None
    row_scale = scale.unsqueeze(0)
    v = weight.detach().float() * row_scale
    # (W_n H_n + S + rho sign V) (H_n + rho I)^-1 = W_n + (S - rho W_n + rho sign V) (H_n + rho I)^-1, as
    # H_n (H_n + rho I)^-1 = I - rho (H_n + rho I)^-1: one [out, in] x [in, in] product per iteration, none for W_n H_n
    start = v.mul(relaxation)  # a W_n
    offset = v.mul(-rho)  # S - rho W_n
    if dense_shift is not None and toward_dense:
        offset += toward_dense * dense_shift.float() / row_scale
    pruned = torch.zeros_like(v, dtype=torch.bool)
    sign, drop = torch.ones_like(v), torch.zeros_like(v)  # -1 / 1 and 1 / 0 where pruned / kept: Z - U = sign V, U = drop V
    carry = drop  # U + (1 - a) Z = (a drop + 1 - a) V
    rhs, nxt = torch.empty_like(v), torch.empty_like(v)  # reused: fresh [out, in] tensors fault their pages in
    for t in range(iterations):
        if t < select_iterations:
            share = 1 - (1 - (t + 1) / select_iterations) ** 3
            pruned = ramped_mask(score(v, scale), sparsity, pattern, group, share)
            drop = pruned.float()
            sign = drop.mul(-2.0).add_(1.0)
            carry = drop if relaxation == 1 else drop.mul(relaxation).add_(1.0 - relaxation)
        # float products: several times faster than masked_fill/where on CPU
        torch.addcmul(offset, sign, v, value=rho, out=rhs)
        torch.addcmul(start, carry, v, out=nxt)
        if low is None:
            nxt.addmm_(rhs, inv, alpha=relaxation)
        else:
            nxt.add_(torch.mm(rhs.to(product_dtype), low), alpha=relaxation)
        v, nxt = nxt, v
    return (1.0 - drop).mul_(v).div_(row_scale), pruned


def product_dtype(cfg, device: torch.device) -> torch.dtype:
    """The admm-grad update's product dtype on ``device``: the config's ``admm_grad_products``, "auto"
    resolved by :func:`resolve_auto`; warns once per device type when bfloat16 is asked on
    hardware that emulates it."""
    return _precision(cfg.admm_grad_products, device, "--admm-grad-products")


def dense_forward_dtype(cfg, device: torch.device) -> torch.dtype:
    """The dtype of the dense stream's layer forward on ``device`` (the engine's ``dense_dtype``): the
    config's ``dense_precision``, "auto" resolved by :func:`resolve_auto`, as :func:`product_dtype`."""
    return _precision(cfg.dense_precision, device, "--dense-precision")


def _precision(name: str, device: torch.device, flag: str) -> torch.dtype:
    if name == "auto":
        return PRODUCT_DTYPES[resolve_auto(device.type)]
    if name == "bfloat16" and bfloat16_native(device.type) is False:
        _warn_emulated(device.type, flag)
    return PRODUCT_DTYPES[name]


@cache
def resolve_auto(device_type: str) -> str:
    """What ``auto`` (``--admm-grad-products``, ``--dense-precision``) runs on ``device_type``:
    "bfloat16" where it multiplies bfloat16 natively (about 40% off the solve at a 7B shape and off
    the dense forward, the same held-out error: docs/quality.md), else "float32"; said once per
    device type in the log."""
    name = "bfloat16" if bfloat16_native(device_type) else "float32"
    log.info("precision auto: %s on this %s (--admm-grad-products and --dense-precision auto; float32 or "
             "bfloat16 to choose)", name, device_type)
    return name


@cache
def _warn_emulated(device_type: str, flag: str) -> None:
    log.warning("%s bfloat16: this %s has no native bfloat16 matrix products (%s), so they "
                "are slower than float32 here; use auto or float32", flag, device_type,
                "a CUDA GPU before Ampere" if device_type == "cuda" else "no AVX512-BF16 or AMX")


def selecting_iterations(iterations: int) -> int:
    """The iterations that re-choose the mask: the first three quarters, as ADMM-Grad's 15 of 20,
    rounded half up (5 of 6, 8 of 10, 11 of 15)."""
    return max(1, math.floor(0.75 * iterations + 0.5))


ADMM_GRAD_DAMP_BY_TOKENS: tuple[tuple[int, float], ...] = ((0, 0.5), (65_536, 0.3))
"""The admm-grad update's damping by calibration size, as (from this many calibration tokens, damping):
each chosen on whole prunes scored on held-out text at one size (16 x 512: ``benchmarks.default_choice``;
128 x 512: ``benchmarks.damping_c128``). More tokens estimate each Hessian better and need less of a
pull toward the dense weights; a size between two takes the smaller one's."""


def admm_grad_damp_for(tokens: int) -> float:
    """The admm-grad damping for a calibration of ``tokens`` tokens (:data:`ADMM_GRAD_DAMP_BY_TOKENS`)."""
    return [damp for least, damp in ADMM_GRAD_DAMP_BY_TOKENS if tokens >= least][-1]


def damping(cfg, stats: InputStats) -> float:
    """The admm-grad update's damping: the config's ``admm_grad_damp``, or, when that is None (a config
    not resolved for its calibration, :meth:`crepe.config.PruneConfig.at_calibration`), the damping for
    the tokens this linear's statistics saw."""
    return admm_grad_damp_for(stats.tokens) if cfg.admm_grad_damp is None else cfg.admm_grad_damp


def select_count(cfg) -> int:
    """The admm-grad update's mask-choosing iterations: the config's ``admm_grad_select_iterations``, or
    :func:`selecting_iterations` of its ``admm_grad_iterations`` when that is None."""
    given = cfg.admm_grad_select_iterations
    return selecting_iterations(cfg.admm_grad_iterations) if given is None else given


def magnitude_on_scale(scaled: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """|W_n| = |W| D for the iterate W_n [out, in] on the unit-diagonal scale: ADMM-Grad's saliency
    (Wanda's |W| ||X_j|| on the Hessian's diagonal)."""
    return scaled.abs()


def admm_grad_linear(weight: torch.Tensor, stats: InputStats, sparsity: float, pattern: Pattern, cfg,
                     order=None) -> tuple[torch.Tensor, torch.Tensor, None]:
    """The ``admm-grad`` method on one linear (Boza 2024 with its published settings: 20 iterations,
    the mask re-chosen by |W_n| per layer in the first 15, rho 1, damping 0.1 on the unit-diagonal
    scale): (new weight [out, in], prune mask [out, in], None)."""
    hessian = input_hessian(stats, "admm-grad")
    if order is not None and pattern.structured:
        raise ValueError("admm-grad chooses its N:M mask inside ADMM: channel permutation (--permute) does not apply")
    new, mask = gradual_admm(weight, hessian, magnitude_on_scale, sparsity, pattern, "layer")
    return new, mask, None


register(Method("admm-grad", needs=frozenset({"hessian"}), default_group="block", updates_weights=True,
                prune=admm_grad_linear))


@weight_update("admm-grad", selects_mask=True, needs=("hessian", "dense_shift"), reprune_stand_in="admm",
               unread=SCORE_FIELDS, reads_score=False)
def admm_grad_update_linear(weight: torch.Tensor, stats: InputStats, sparsity: float, pattern: Pattern, cfg,
                            order=None, role: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The ``admm-grad`` update on one linear (crepe's default): Boza's gradual ADMM with the config's
    ``admm_grad_damp``, ``admm_grad_iterations`` (``admm_grad_select_iterations`` of them choosing the mask), ``admm_grad_relaxation`` and ``admm_grad_products`` and, where the engine carried the dense stream (``stats.dense_shift``), its target
    moved ``dense_target`` of the way toward the dense model's outputs; with 0.1, 20 iterations and
    a target of 0 it gives the weights of the ``admm-grad`` method. The mask is re-chosen from |W_n| from the first iteration
    on, so the method's score only orders the columns under N:M channel permutation:
    (new weight [out, in], prune mask [out, in], column permutation [in] or None)."""
    hessian = input_hessian(stats, "admm-grad")
    perm = None
    if order is not None and pattern.structured:
        perm = order(cfg.method_entry.score(weight.float(), stats, cfg.crepe.for_projection(role)), pattern)
    shift = stats.dense_shift if perm is None or stats.dense_shift is None else stats.dense_shift[:, perm]
    new, mask = in_column_order(perm, weight, hessian,
                                lambda w, h: gradual_admm(w, h, magnitude_on_scale, sparsity, pattern, "layer",
                                                          iterations=cfg.admm_grad_iterations,
                                                          select_iterations=select_count(cfg),
                                                          damp=damping(cfg, stats), dense_shift=shift,
                                                          toward_dense=cfg.dense_target,
                                                          relaxation=cfg.admm_grad_relaxation,
                                                          product_dtype=product_dtype(cfg, weight.device)))
    return new, mask, perm
