"""Evaluate CRePE configs: by proxies on cached statistics (PHO) or by real validation PPL (hill climb).

:func:`proxy_values` is the per-trial work of PHO: for every decoder linear score the weight with
the config, select the mask exactly as pruning would, and evaluate the proxies; average over the
linears. No forward pass and no change to the model. :class:`EndToEndProxy` is the model-level
proxy: one-shot pruning with the cached input norms, then the NLL of a few calibration windows.
:class:`PplObjective` prunes for real (the cheap one-shot path with cached input norms, or the
faithful sequential engine) and measures PPL.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from crepe.config import CrepeParams, PruneConfig
from crepe.masks import select_mask
from crepe.prune_linear import projection_type
from crepe.prune_model import prune_model
from crepe.scorers import InputStats, score
from crepe.oneshot import prune_oneshot, restore_weights, snapshot_weights
from eval.perplexity import perplexity
from pho.proxies import LayerData, get_proxy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyResult:
    """Proxy values averaged over the linears, and the fraction of weights the masks prune."""

    values: dict[str, float]
    realised_sparsity: float


def base_config(sparsity: float, pattern) -> PruneConfig:
    """The crepe PruneConfig at a sparsity/pattern (validated); its crepe params are replaced per trial."""
    if sparsity <= 0:
        raise ValueError(f"a search needs sparsity > 0, got {sparsity}")
    return PruneConfig(method="crepe", sparsity=sparsity, pattern=pattern)


@torch.no_grad()
def proxy_values(weights: dict[str, torch.Tensor], data: dict[str, LayerData], cfg: PruneConfig,
                 proxies: list[str], layer_stride: int = 1) -> ProxyResult:
    """Mean over linears of each named proxy under ``cfg`` (weights: name -> W [out, in]).

    ``layer_stride`` > 1 evaluates only every stride-th linear (a cheaper estimate).
    """
    chosen = [get_proxy(p) for p in proxies]
    model_level = [p.name for p in chosen if p.scope != "linear"]
    if model_level:
        raise ValueError(f"{', '.join(model_level)} is a model-level proxy: evaluate it with EndToEndProxy")
    totals = {p.name: 0.0 for p in chosen}
    pruned = size = count = 0
    for index, (name, w) in enumerate(weights.items()):
        if index % layer_stride:
            continue
        params = cfg.crepe.for_projection(projection_type(name.split(".", 2)[2]))
        stats = InputStats(sq_sum=data[name].sq_sum, tokens=1)
        s = score("crepe", w, stats, params)
        if not torch.isfinite(s).all():
            raise ValueError(f"non-finite crepe scores in {name} with {params}")
        mask = select_mask(s, cfg.sparsity, cfg.pattern, cfg.resolved_group)
        for proxy in chosen:
            totals[proxy.name] += proxy.fn(w, s, mask, data[name])
        pruned += int(mask.sum())
        size += mask.numel()
        count += 1
    return ProxyResult({k: v / max(count, 1) for k, v in totals.items()}, pruned / max(size, 1))


def with_params(cfg: PruneConfig, params: CrepeParams) -> PruneConfig:
    return dataclasses.replace(cfg, crepe=params)


class PplObjective:
    """Validation PPL of a pruned copy of ``model`` (restored after every call).

    one-shot (default): prune every linear with the cached dense input norms, no forward pass;
    faithful: the sequential engine on ``calib`` windows [n, seq] (each layer sees pruned inputs).
    """

    def __init__(self, model: nn.Module, snapshot: dict[str, torch.Tensor], data: dict[str, LayerData],
                 val_windows: torch.Tensor, calib: torch.Tensor | None = None, faithful: bool = False,
                 batch_size: int = 4):
        if faithful and calib is None:
            raise ValueError("the faithful path needs calibration windows")
        self.model, self.snapshot, self.val, self.calib = model, snapshot, val_windows, calib
        self.faithful, self.batch_size = faithful, batch_size
        self.stats = {name: InputStats(sq_sum=d.sq_sum, tokens=1) for name, d in data.items()}

    @torch.no_grad()
    def __call__(self, cfg: PruneConfig) -> tuple[float, float]:
        """(validation PPL, realised sparsity over the pruned linears)."""
        try:
            if self.faithful:
                results = prune_model(self.model, self.calib, cfg, progress=False).linears
            else:
                results = prune_oneshot(self.model, self.stats, cfg)
            zeros = sum(r.zeros_after for r in results.values())
            total = sum(r.shape[0] * r.shape[1] for r in results.values())
            ppl = perplexity(self.model, self.val, self.batch_size, progress=False)
        finally:
            restore_weights(self.model, self.snapshot)
        return ppl, zeros / max(total, 1)


class EndToEndProxy:
    """The ``e2e`` proxy: mean next-token NLL (log PPL) of ``model`` pruned one-shot with the cached
    input norms, on calibration ``windows`` [n, seq]. ``sequential`` (the ``e2e_seq`` proxy) prunes
    with the sequential engine on the same windows instead. The weights are restored after every call."""

    def __init__(self, model: nn.Module, data: dict[str, LayerData], windows: torch.Tensor, batch_size: int = 4,
                 sequential: bool = False):
        if windows.ndim != 2 or windows.shape[0] < 1:
            raise ValueError(f"the e2e proxy needs calibration windows [n >= 1, seq], got {tuple(windows.shape)}")
        self.name = "e2e_seq" if sequential else "e2e"
        self._ppl = PplObjective(model, snapshot_weights(model), data, windows, calib=windows if sequential else None,
                                 faithful=sequential, batch_size=batch_size)

    def __call__(self, cfg: PruneConfig) -> ProxyResult:
        ppl, realised = self._ppl(cfg)
        return ProxyResult({self.name: math.log(ppl)}, realised)
