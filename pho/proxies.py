"""Proxy objectives: small pure functions of one linear's weight, scores, mask and cached inputs.

Each per-linear proxy maps (W [out, in], S [out, in], M [out, in] bool with True = pruned,
LayerData) to one float for that linear; :mod:`pho.objective` averages it over the linears. None of
them runs the model. One proxy is model-level instead (``scope="model"``, evaluated by
:class:`pho.objective.EndToEndProxy`):

- ``gini``: Gini coefficient of the config's own scores of the weights it prunes, S[M].
- ``gini_ref``: Gini coefficient of a fixed reference score (Wanda's |W_ij| * ||X_j||) over the
  weights the config prunes: unlike ``gini`` it does not change when a config merely rescales
  its scores.
- ``diag_error``: the relative output error under a diagonal input Hessian,
  sum_M W_ij^2 ||X_j||^2 / sum W_ij^2 ||X_j||^2 (needs only the input-channel norms).
- ``recon``: the relative output reconstruction error on cached inputs X [t, in],
  ||(W * M) X^T||^2 / ||W X^T||^2 = ||(W - W_kept) X^T||^2 / ||W X^T||^2.
- ``out_error``: the same relative output error on all calibration inputs through the cached
  Hessian, tr(D H D^T) / tr(W H W^T) with D = W - W_new, where W_new is what the prune leaves: the
  weights the update solved for (so, unlike the mask proxies, it sees a weight update), or the
  masked W without one. It costs the per-linear prune (the update included) but no forward pass.
- ``e2e`` (model-level): the mean next-token NLL (log perplexity) of the model pruned one-shot with
  the cached input norms, on a few CALIBRATION windows: one short forward pass per trial, but it sees
  how the layers' errors combine, which no per-linear proxy does.
- ``e2e_seq`` (model-level): the same NLL after pruning with the sequential engine on those few
  windows (each layer scored on the pruned inputs, as ``crepe.prune`` does): about twice the cost.

Each proxy carries the direction in which it is optimised; the directions are those the measured
rank correlation with validation perplexity supports (see docs/pho.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

_EPS = 1e-30


@dataclass(frozen=True)
class LayerData:
    """Cached statistics of one linear's inputs: ``sq_sum`` [in] = sum_t X_tj^2, optionally a token
    subsample ``x`` [t, in] of its inputs and the Hessian ``hessian`` [in, in] = X^T X (for a weight update)."""

    sq_sum: torch.Tensor
    x: torch.Tensor | None = None
    hessian: torch.Tensor | None = None


def gini(values: torch.Tensor) -> float:
    """Gini coefficient of non-negative ``values`` (any shape, flattened):
    G = sum_i (2i - n - 1) x_(i) / (n sum_i x_i) over ascending x_(i), i = 1..n.

    0 for equal values, (n-1)/n when one value holds everything; 0 for an empty or all-zero input.
    """
    x = values.reshape(-1)
    n = x.numel()
    if n == 0:
        return 0.0
    x = torch.sort(x).values.to(torch.float64)  # sort in the input dtype (the same order), sum in float64
    total = x.sum()
    if total <= 0:
        return 0.0
    # sum_i (2i - n - 1) x_(i) = 2 sum_i i x_(i) - (n + 1) sum_i x_(i)
    weighted = torch.dot(torch.arange(1, n + 1, dtype=torch.float64, device=x.device), x)
    return float((2 * weighted - (n + 1) * total) / (n * total))


def gini_pruned(w: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, data: LayerData) -> float:
    """Gini of the config's scores over the pruned weights, S[M]."""
    return gini(scores[mask])


def reference_score(w: torch.Tensor, data: LayerData) -> torch.Tensor:
    """The fixed reference score |W_ij| * ||X_j||_2: [out, in]."""
    return w.abs() * data.sq_sum.sqrt().unsqueeze(0)


def gini_reference(w: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, data: LayerData) -> float:
    """Gini of the reference score over the pruned weights."""
    return gini(reference_score(w, data)[mask])


def diag_error(w: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, data: LayerData) -> float:
    """sum_M W^2 ||X_j||^2 / sum W^2 ||X_j||^2: relative output error if input channels were
    uncorrelated."""
    energy = w.double().pow(2) * data.sq_sum.double().unsqueeze(0)
    return float(energy[mask].sum() / energy.sum().clamp_min(_EPS))


def output_error(w: torch.Tensor, new: torch.Tensor, data: LayerData) -> float:
    """tr(D H D^T) / tr(W H W^T) for D = W - new [out, in] and the cached Hessian H [in, in] = X^T X:
    the relative output error of the pruned (and updated) linear on every calibration token."""
    if data.hessian is None:
        raise ValueError("proxy 'out_error' needs each linear's input Hessian: open the workspace with hessian=True")
    h = data.hessian.float()
    diff = w.float() - new.float()
    removed = ((diff @ h) * diff).sum(dtype=torch.float64)
    full = ((w.float() @ h) * w.float()).sum(dtype=torch.float64)
    return float(removed / full.clamp_min(_EPS))


def reconstruction_error(w: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, data: LayerData) -> float:
    """||(W * M) X^T||^2 / ||W X^T||^2 on the cached inputs X [t, in]; 0 for an empty mask."""
    if data.x is None:
        raise ValueError("proxy 'recon' needs cached layer inputs: build the statistics cache with x_tokens > 0")
    x = data.x.float()
    removed = (w.float() * mask) @ x.t()
    full = w.float() @ x.t()
    return float(removed.double().pow(2).sum() / full.double().pow(2).sum().clamp_min(_EPS))


ProxyFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, LayerData], float]
WeightsFn = Callable[[torch.Tensor, torch.Tensor, LayerData], float]
"""(W [out, in], the weight the prune leaves [out, in], LayerData) -> float: a proxy that sees an update."""


@dataclass(frozen=True)
class Proxy:
    """A named proxy, its per-linear function (None for a model-level proxy) and the direction the
    search optimises it in; a model-level proxy also has its default number of calibration windows.
    ``after``: instead of ``fn``, a function of the weight the prune leaves (it sees a weight update)."""

    name: str
    fn: ProxyFn | None
    direction: str
    needs_x: bool = False
    after: WeightsFn | None = None
    needs_hessian: bool = False
    scope: str = "linear"
    sequential: bool = False
    windows: int = 0


PROXIES: dict[str, Proxy] = {p.name: p for p in (
    Proxy("gini", gini_pruned, "maximize"),
    Proxy("gini_ref", gini_reference, "minimize"),
    Proxy("diag_error", diag_error, "minimize"),
    Proxy("recon", reconstruction_error, "minimize", needs_x=True),
    Proxy("out_error", None, "minimize", after=output_error, needs_hessian=True),
    Proxy("e2e", None, "minimize", scope="model", windows=4),
    Proxy("e2e_seq", None, "minimize", scope="model", sequential=True, windows=2),
)}
LINEAR_PROXIES = tuple(name for name, p in PROXIES.items() if p.scope == "linear")
MASK_PROXIES = tuple(name for name in LINEAR_PROXIES if PROXIES[name].after is None)
"""Per-linear proxies of the mask alone: blind to a weight update."""
AUTO = "auto"


def default_proxy(structured: bool) -> str:
    """The best-supported proxy per pattern kind on SmolLM2-135M (docs/pho.md): ``e2e`` for
    unstructured sparsity, ``e2e_seq`` for N:M, the proxies whose searched configs did best on the
    test split (per-linear proxies rank configs worse: rho 0.65 for ``recon`` against 0.97 for
    ``e2e`` at 50%; at 2:4 one-shot ``e2e`` misleads, and ``e2e_seq`` fixes that)."""
    return "e2e_seq" if structured else "e2e"


def resolve_proxy(name: str, structured: bool) -> str:
    """``name``, or the per-pattern default for ``auto``; unknown names raise ValueError."""
    name = default_proxy(structured) if name == AUTO else name
    get_proxy(name)
    return name


def get_proxy(name: str) -> Proxy:
    if name not in PROXIES:
        raise ValueError(f"unknown proxy {name!r}; choose from {AUTO}, {', '.join(PROXIES)}")
    return PROXIES[name]
