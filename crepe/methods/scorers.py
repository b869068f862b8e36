"""Importance scores: pure functions ``(W [out, in], stats, params) -> S [out, in]``.

Notation: A = |W|, ``stats.col_norm[j] = ||X_j||_2`` over all calibration tokens. Higher score =
more important; selection prunes the lowest scores. None of these touch a model. Each score is a
method: ``@scoring_method`` registers it (name, statistics it needs, default comparison group) in
:mod:`crepe.methods.registry`, so adding a method is one decorated function here plus its test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from crepe.methods.declare import scoring_method
from crepe.methods.neighbourhood import box_mean, box_sum
from crepe.methods.params import CrepeParams

_EPS = 1e-12


@dataclass
class InputStats:
    """Statistics of a linear layer's inputs X [tokens, in] over the calibration set.

    sq_sum: [in] sum over tokens of X_j^2; hessian: [in, in] sum of X^T X (only when needed);
    lin_sum: [in] sum over tokens of X_j (only when needed, e.g. DSnoT's mean input);
    dense_shift: [out, in] sum of (Y_dense - Y)^T X = W (X_dense^T X - X^T X), X_dense the same tokens'
    inputs in the dense model and Y = X W^T (per linear, only when needed: reconstruction toward the
    dense model's outputs; None where the two streams are equal); tokens: number of tokens seen.
    """

    sq_sum: torch.Tensor | None = None
    hessian: torch.Tensor | None = None
    tokens: int = 0
    lin_sum: torch.Tensor | None = None
    dense_shift: torch.Tensor | None = None

    @property
    def col_norm(self) -> torch.Tensor:
        """||X_j||_2: [in]."""
        if self.sq_sum is None:
            raise ValueError("this scorer needs input-activation statistics (none were collected)")
        return self.sq_sum.sqrt()


Scorer = Callable[[torch.Tensor, InputStats, CrepeParams], torch.Tensor]


def row_term(a: torch.Tensor) -> torch.Tensor:
    """A_ij / sum_q A_iq: [out, in]."""
    return a / a.sum(dim=1, keepdim=True).clamp_min(_EPS)


def col_term(a: torch.Tensor) -> torch.Tensor:
    """A_ij / sum_p A_pj: [out, in]."""
    return a / a.sum(dim=0, keepdim=True).clamp_min(_EPS)


def neighbourhood_term(a: torch.Tensor, kernel: int, form: str = "relative", padding: str = "zero") -> torch.Tensor:
    """The 2D local-context term over the k x k window around each weight: [out, in].

    relative: A / boxsum(A) (with ``padding="count"`` the edge windows are rescaled to k*k entries);
    smoothed: boxmean(A); product: A * boxmean(A).
    """
    if form == "relative":
        if padding == "zero":
            denom = box_sum(a, kernel)
        else:
            denom = box_mean(a, kernel, padding) * (kernel * kernel)
        return a / denom.clamp_min(_EPS)
    if form == "smoothed":
        return box_mean(a, kernel, padding)
    if form == "product":
        return a * box_mean(a, kernel, padding)
    raise ValueError(f"unknown neighbourhood form {form!r}")


def activation_factor(stats: InputStats, power: float) -> torch.Tensor:
    """||X_j||_2 ** power as a [1, in] row to broadcast over the output rows."""
    return stats.col_norm.pow(power).unsqueeze(0)


@scoring_method()
def magnitude(w: torch.Tensor, stats: InputStats, params: CrepeParams) -> torch.Tensor:
    """S = |W|."""
    return w.abs()


@scoring_method(needs=("sq_sum",), group="row")
def wanda(w: torch.Tensor, stats: InputStats, params: CrepeParams) -> torch.Tensor:
    """S = |W_ij| * ||X_j||_2 (Wanda)."""
    return w.abs() * stats.col_norm.unsqueeze(0)


@scoring_method()
def ri(w: torch.Tensor, stats: InputStats, params: CrepeParams) -> torch.Tensor:
    """S = A/rowsum + A/colsum (relative importance, no activations)."""
    a = w.abs()
    return col_term(a) + row_term(a)


RIA_POWER = 0.5


@scoring_method(needs=("sq_sum",))
def ria(w: torch.Tensor, stats: InputStats, params: CrepeParams) -> torch.Tensor:
    """S = (A/colsum + A/rowsum) * ||X_j||^0.5 (RIA with its published exponent; params unused)."""
    return ri(w, stats, params) * activation_factor(stats, RIA_POWER)


def _scaled(term: torch.Tensor, term_scale: str) -> torch.Tensor:
    return term / term.mean().clamp_min(_EPS) if term_scale == "mean" else term


# crepe's default update is the best pipeline measured (docs/quality.md); --update none is the paper's mask-only CRePE
@scoring_method(needs=("sq_sum",), default_update="admm-grad")
def crepe(w: torch.Tensor, stats: InputStats, params: CrepeParams) -> torch.Tensor:
    """S = (alpha*A/rowsum + beta*A/colsum + gamma*nbr_k(A)) * ||X_j||^a (CRePE).

    Terms with a zero coefficient are not computed; with alpha = beta = 1, gamma = 0 and
    ``term_scale="none"`` the result equals :func:`ria` bit for bit.
    """
    a = w.abs()
    total: torch.Tensor | None = None
    # without a neighbourhood term the row term is the last reader of A: divide A itself in place
    row = (lambda: a.div_(a.sum(dim=1, keepdim=True).clamp_min(_EPS))) if not params.gamma else (lambda: row_term(a))
    terms = ((params.beta, lambda: col_term(a)), (params.alpha, row),
             (params.gamma, lambda: neighbourhood_term(a, params.kernel, params.nbr_form, params.padding)))
    for coefficient, term in terms:  # in place: a 7B layer's [11008, 4096] terms are 180 MB each
        if coefficient:
            part = _scaled(term(), params.term_scale)
            if coefficient != 1:
                part.mul_(coefficient)
            total = part if total is None else total.add_(part)
    return total.mul_(activation_factor(stats, params.act_power))
