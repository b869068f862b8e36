"""Evaluate CRePE configs: by proxies on cached statistics (PHO) or by real validation PPL (hill climb).

:func:`proxy_values` is the per-trial work of PHO: for every decoder linear take the mask and
scores the per-linear pruning path chooses for the config (without applying them), and evaluate
the proxies; average over the linears. No forward pass and no change to the model. :class:`EndToEndProxy` is the model-level
proxy: one-shot pruning with the cached input norms, then the NLL of a few calibration windows.
:class:`PplObjective` prunes for real (the cheap one-shot path with cached input norms, or the
faithful sequential engine) and measures PPL.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from crepe.compose.steps import linear_steps
from crepe.config import PruneConfig, read_params
from crepe.evaluation.perplexity import perplexity
from crepe.methods.params import CrepeParams
from crepe.methods.scorers import InputStats
from crepe.models.adapters import LinearTarget, model_target
from crepe.prune.cached import prune_from_stats
from crepe.prune.linear import needed_stats, plan_linear
from crepe.prune.model import prune_model
from pho.proxies import LayerData, get_proxy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyResult:
    """Proxy values averaged over the linears, and the fraction of weights the masks prune."""

    values: dict[str, float]
    realised_sparsity: float


def base_config(sparsity: float, pattern, update: str | None = None) -> PruneConfig:
    """The crepe PruneConfig at a sparsity/pattern with weight ``update`` (None: crepe's default, its
    method entry's ``default_update``), validated; its crepe params are replaced per trial."""
    if sparsity <= 0:
        raise ValueError(f"a search needs sparsity > 0, got {sparsity}")
    return PruneConfig(method="crepe", sparsity=sparsity, pattern=pattern, update=update)


def update_attrs(cfg: PruneConfig) -> dict[str, str]:
    """``{"update": name}`` for a study's objective attrs when a weight update runs, else {} (so the
    studies made before the update existed keep their attrs and still resume)."""
    return {} if cfg.resolved_update == "none" else {"update": cfg.resolved_update}


def update_needs(cfg: PruneConfig) -> frozenset[str]:
    """Input statistics beyond the cached norms that ``cfg``'s weight update reads (e.g. {"hessian"}).
    Not "dense_shift": the cache propagates the dense model, where it is zero, and an update given
    none uses the plain target."""
    return needed_stats(cfg, linear_steps(cfg)) - {"sq_sum", "dense_shift"}


def check_oneshot(cfg: PruneConfig, have: frozenset[str] = frozenset({"sq_sum"})) -> None:
    """One-shot pruning (cached statistics ``have``, no forward pass) can run a weight update only when
    the statistics it needs (each layer's input Hessian) were cached: else a clear ValueError."""
    missing = update_needs(cfg) - have
    if missing:
        raise ValueError(f"--update {cfg.resolved_update} needs {', '.join(sorted(missing))} per layer, which this "
                         "statistics cache lacks: the e2e proxy and the one-shot climb cache them when given the "
                         "update; per-linear proxies score masks only (use e2e, e2e_seq or --update none)")


@torch.no_grad()
def proxy_values(linears: dict[str, LinearTarget], data: dict[str, LayerData], cfg: PruneConfig,
                 proxies: list[str], layer_stride: int = 1) -> ProxyResult:
    """Mean over linears (by key) of each named proxy under ``cfg``: every linear's mask, scores and
    new weight come from the per-linear path (:func:`crepe.prune.linear.plan_linear`, with the
    config's update step), nothing is applied. A mask proxy cannot see a weight update, so under one
    only the proxies of the weight the prune leaves (``out_error``) are allowed.

    ``layer_stride`` > 1 evaluates only every stride-th linear (a cheaper estimate).
    """
    chosen = [get_proxy(p) for p in proxies]
    model_level = [p.name for p in chosen if p.scope != "linear"]
    if model_level:
        raise ValueError(f"{', '.join(model_level)} is a model-level proxy: evaluate it with EndToEndProxy")
    blind = [p.name for p in chosen if p.after is None]
    if cfg.resolved_update != "none" and blind:
        raise ValueError(f"{', '.join(blind)} score masks, not --update {cfg.resolved_update}: use out_error, e2e or "
                         "e2e_seq, or --update none for the mask-only pipeline")
    steps = linear_steps(cfg) if cfg.resolved_update != "none" else None
    sees = len(blind) < len(chosen)  # a proxy of the weight the prune leaves is asked for
    totals = {p.name: 0.0 for p in chosen}
    pruned = size = count = 0
    for index, (key, linear) in enumerate(linears.items()):
        if index % layer_stride:
            continue
        w, d = linear.weight, data[key]
        plan = plan_linear(w, InputStats(sq_sum=d.sq_sum, hessian=d.hessian, tokens=1), cfg, role=linear.role,
                           in_attention=linear.in_attention, name=key, steps=steps)
        new = plan.weight if plan.weight is not None or not sees else w * ~plan.mask
        for proxy in chosen:
            totals[proxy.name] += (proxy.after(w, new, d) if proxy.after is not None
                                   else proxy.fn(w, plan.scores, plan.mask, d))
        pruned += int(plan.mask.sum())
        size += plan.mask.numel()
        count += 1
    return ProxyResult({k: v / max(count, 1) for k, v in totals.items()}, pruned / max(size, 1))


def with_params(cfg: PruneConfig, params: CrepeParams) -> PruneConfig:
    return dataclasses.replace(cfg, crepe=params)


def config_key(cfg: PruneConfig) -> str:
    """What decides the prune of a search's trial (:func:`pho.space.read_params`) as a key: two
    points with one key prune identically, so a search answers the second from the first."""
    return json.dumps(dataclasses.asdict(read_params(cfg)), sort_keys=True)


class PplObjective:
    """Validation PPL of ``model`` pruned with a config (restored from one snapshot after every call).

    one-shot (default): prune every linear with the cached dense input norms, no forward pass;
    faithful: the sequential engine on ``calib`` windows [n, seq] (each layer sees pruned inputs).
    """

    def __init__(self, model: nn.Module, data: dict[str, LayerData], val_windows: torch.Tensor,
                 calib: torch.Tensor | None = None, faithful: bool = False, batch_size: int = 4, layer_stride: int = 1):
        if faithful and calib is None:
            raise ValueError("the faithful path needs calibration windows")
        if layer_stride < 1 or (faithful and layer_stride != 1):
            raise ValueError(f"layer_stride must be >= 1, and 1 on the faithful path; got {layer_stride}")
        self.model, self.val, self.calib = model, val_windows, calib
        self.target = model_target(model)
        self.snapshot = self.target.snapshot()
        count = len(self.target.per_layer)  # one-shot on every layer_stride-th decoder layer, centred
        self.layers = None if layer_stride == 1 else frozenset(range(layer_stride // 2, count, layer_stride))
        self.faithful, self.batch_size = faithful, batch_size
        self.stats = {name: InputStats(sq_sum=d.sq_sum, hessian=d.hessian, tokens=1) for name, d in data.items()}
        hessians = bool(data) and all(d.hessian is not None for d in data.values())
        self.have = frozenset({"sq_sum", "hessian"} if hessians else {"sq_sum"})

    @torch.no_grad()
    def prune(self, cfg: PruneConfig, calib: torch.Tensor | None = None) -> float:
        """Prune the model in place with ``cfg`` (faithful: on ``calib`` windows, default the object's);
        returns the realised sparsity over the pruned linears. :meth:`restore` undoes it."""
        if self.faithful:
            windows = self.calib if calib is None else calib
            results = prune_model(self.model, windows, cfg, progress=False, target=self.target).linears
        else:
            check_oneshot(cfg, self.have)
            results = prune_from_stats(self.model, self.stats, cfg, self.target, self.layers)
        zeros = sum(r.zeros_after for r in results.values())
        total = sum(r.shape[0] * r.shape[1] for r in results.values())
        return zeros / max(total, 1)

    def restore(self) -> None:
        self.target.restore(self.snapshot)

    @torch.no_grad()
    def __call__(self, cfg: PruneConfig) -> tuple[float, float]:
        """(validation PPL, realised sparsity over the pruned linears)."""
        try:
            realised = self.prune(cfg)
            ppl = perplexity(self.model, self.val, self.batch_size, progress=False)
        finally:
            self.restore()
        return ppl, realised


class EndToEndProxy:
    """The ``e2e`` proxy: mean next-token NLL (log PPL) of ``model`` pruned one-shot with the cached
    input norms, on calibration ``windows`` [n, seq]. ``sequential`` (the ``e2e_seq`` proxy) prunes
    with the sequential engine on the same windows instead. ``layer_stride`` K > 1 (one-shot only): prune
    only every K-th decoder layer (from K // 2), the rest dense, a cheaper estimate. The weights are
    restored after every call."""

    def __init__(self, model: nn.Module, data: dict[str, LayerData], windows: torch.Tensor, batch_size: int = 4,
                 sequential: bool = False, layer_stride: int = 1):
        if windows.ndim != 2 or windows.shape[0] < 1:
            raise ValueError(f"the e2e proxy needs calibration windows [n >= 1, seq], got {tuple(windows.shape)}")
        self.name = "e2e_seq" if sequential else "e2e"
        self._ppl = PplObjective(model, data, windows, calib=windows if sequential else None, faithful=sequential,
                                 batch_size=batch_size, layer_stride=layer_stride)

    def __call__(self, cfg: PruneConfig) -> ProxyResult:
        ppl, realised = self._ppl(cfg)
        return ProxyResult({self.name: math.log(ppl)}, realised)
