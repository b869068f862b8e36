"""Prune a whole model layer by layer: the engine plus :func:`crepe.methods.prune_weight`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
from torch import nn

from crepe.config import PruneConfig
from crepe.engine import run_layerwise
from crepe.methods import LinearResult, needed_stats, prune_weight
from crepe.models.adapters import decoder_linears, get_adapter, weight_view
from crepe.scorers import InputStats

log = logging.getLogger(__name__)


@dataclass
class PruneSummary:
    """Per-linear results (by ``layers.<i>.<name>``) and the totals over all pruned linears."""

    linears: dict[str, LinearResult]

    @property
    def total_weights(self) -> int:
        return sum(r.shape[0] * r.shape[1] for r in self.linears.values())

    @property
    def realised_sparsity(self) -> float:
        """Fraction of zeros over all pruned linears after pruning."""
        return sum(r.zeros_after for r in self.linears.values()) / max(self.total_weights, 1)

    @property
    def sparsity_before(self) -> float:
        """Fraction of zeros that were already there before pruning."""
        return sum(r.zeros_before for r in self.linears.values()) / max(self.total_weights, 1)

    def per_layer(self) -> dict[str, float]:
        return {name: round(r.sparsity, 6) for name, r in self.linears.items()}


def check_prunable(model: nn.Module, cfg: PruneConfig) -> None:
    """Fail early, naming the layer: unknown architecture, NaN/Inf weights, N:M not dividing a width."""
    get_adapter(model)
    for name, module in decoder_linears(model).items():
        weight = weight_view(module)
        if not torch.isfinite(weight).all():
            raise ValueError(f"weights of {name} contain NaN or Inf; refusing to prune a corrupt model")
        if cfg.pattern.structured and weight.shape[1] % cfg.pattern.m:
            raise ValueError(f"N:M pattern {cfg.pattern}: input width {weight.shape[1]} of {name} "
                             f"is not a multiple of {cfg.pattern.m}")


def prune_model(model: nn.Module, windows: torch.Tensor, cfg: PruneConfig, *,
                layer_sparsity: dict[str, float] | None = None, batch_size: int = 8,
                device: torch.device | str | None = None, progress: bool = True) -> PruneSummary:
    """Prune every decoder linear of ``model`` in place with ``cfg`` on calibration ``windows``
    [n, seq]. ``layer_sparsity`` optionally maps ``layers.<i>.<name>`` to its own sparsity."""
    check_prunable(model, cfg)
    results: dict[str, LinearResult] = {}
    if not needed_stats(cfg.method):  # input-independent scores: no calibration pass is needed
        for key, module in decoder_linears(model).items():
            target = layer_sparsity.get(key) if layer_sparsity else None
            results[key] = prune_weight(weight_view(module), InputStats(), cfg, key.split(".", 2)[2], target)
        return PruneSummary(results)

    def callback(index: int, layer: nn.Module, linears: dict[str, nn.Module], stats: dict[str, InputStats]) -> bool:
        for name, module in linears.items():
            key = f"layers.{index}.{name}"
            target = layer_sparsity.get(key) if layer_sparsity else None
            results[key] = prune_weight(weight_view(module), stats[name], cfg, name, target)
        log.debug("layer %d pruned", index)
        return True

    run_layerwise(model, windows, needed_stats(cfg.method), callback, batch_size=batch_size, device=device,
                  desc=f"pruning ({cfg.method})", progress=progress)
    return PruneSummary(results)


def time_dense_pass(model: nn.Module, windows: torch.Tensor, batch_size: int = 8,
                    device: torch.device | str | None = None) -> float:
    """Seconds for one dense layer-by-layer pass over ``windows`` through the same engine (no
    statistics, no change): the unit in which pruning cost is reported."""
    start = time.perf_counter()
    run_layerwise(model, windows, (), lambda *args: False, batch_size=batch_size, device=device,
                  desc="dense pass", progress=False)
    return time.perf_counter() - start
