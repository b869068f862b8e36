"""Prune a whole model layer by layer: the engine, the model's target and :func:`crepe.prune.linear.prune_linear`
with the composition steps of the config (permutation, allocation, DSnoT)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from crepe.compose.allocation import allocate
from crepe.compose.permuted_linears import apply_layer_permutations
from crepe.compose.steps import linear_steps
from crepe.config import PruneConfig
from crepe.engine.layerwise import iterate_layers, run_layerwise
from crepe.methods.masks import all_finite
from crepe.methods.scorers import InputStats
from crepe.models.adapters import ModelTarget, model_target, weight_view
from crepe.prune.linear import LinearResult, needed_stats, prune_linear

log = logging.getLogger(__name__)


@dataclass
class PruneSummary:
    """Per-linear results (by ``layers.<i>.<name>``) and the totals over all pruned linears;
    ``physical``: linears whose column permutation was realised by permuting their producers."""

    linears: dict[str, LinearResult]
    physical: set[str] = field(default_factory=set)

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

    @property
    def kept_score_fraction(self) -> float | None:
        """Mean over linears of the fraction of each linear's total score its mask kept."""
        kept = [r.kept_score_fraction for r in self.linears.values() if r.kept_score_fraction is not None]
        return sum(kept) / len(kept) if kept else None

    def gathered_permutations(self) -> dict[str, torch.Tensor]:
        """Column permutations [in] still to be applied by gathering inputs (not realised physically)."""
        return {k: r.permutation for k, r in self.linears.items() if r.permutation is not None and k not in self.physical}


def check_prunable(model: nn.Module, cfg: PruneConfig) -> ModelTarget:
    """The model's target, after failing early and naming the layer on: unknown architecture,
    NaN/Inf weights, N:M not dividing a width, an override role the model has no projection for."""
    target = model_target(model)
    target.check_roles(cfg.crepe.overrides)
    for key, linear in target.linears.items():
        weight = linear.weight
        if weight.device.type != "meta" and not all_finite(weight):  # streamed: checked when read
            raise ValueError(f"weights of {key} contain NaN or Inf; refusing to prune a corrupt model")
        if cfg.pattern.structured and weight.shape[1] % cfg.pattern.m:
            raise ValueError(f"N:M pattern {cfg.pattern}: input width {weight.shape[1]} of {key} "
                             f"is not a multiple of {cfg.pattern.m}")
    return target


def prune_model(model: nn.Module, windows: torch.Tensor, cfg: PruneConfig, *,
                layer_sparsity: dict[str, float] | None = None, batch_size: int = 8,
                device: torch.device | str | None = None, progress: bool = True,
                target: ModelTarget | None = None) -> PruneSummary:
    """Prune every decoder linear of ``model`` in place with ``cfg`` on calibration ``windows``
    [n, seq]. ``layer_sparsity`` optionally maps ``layers.<i>.<name>`` to its own sparsity; without
    it, ``cfg.allocation`` (OWL, AlphaPruning, a JSON plan) makes one. With ``cfg.permute`` and
    ``physical``, MLP consumers' permutations are realised by permuting their producers.
    ``target``: the model's target from :func:`check_prunable`, if the caller already checked it."""
    target = target or check_prunable(model, cfg)
    if layer_sparsity is None:
        layer_sparsity = allocate(model, windows, cfg.sparsity, cfg.allocation, cfg.pattern, batch_size, device)
    results: dict[str, LinearResult] = {}
    physical: set[str] = set()
    steps = linear_steps(cfg)

    def callback(index: int, layer: nn.Module, linears: dict[str, nn.Module], stats: dict[str, InputStats]) -> bool:
        perms = {}
        for name, module in linears.items():
            linear = target.per_layer[index][name]
            results[linear.key] = prune_linear(
                weight_view(module), stats.get(name, InputStats()), cfg, role=linear.role,
                sparsity=layer_sparsity.get(linear.key) if layer_sparsity else None,
                in_attention=linear.in_attention, steps=steps, name=linear.key)
            if results[linear.key].permutation is not None:
                perms[name] = results[linear.key].permutation
        if cfg.permute is not None and cfg.permute.physical:
            physical.update(apply_layer_permutations(target.per_layer[index], linears, perms, target.adapter))
        log.debug("layer %d pruned", index)
        return True

    needs = needed_stats(cfg, steps)
    if not needs:  # input-independent scores: no calibration pass is needed
        for index, layer in iterate_layers(model, device=device, progress=progress, desc=f"pruning ({cfg.method})"):
            callback(index, layer, target.adapter.linears(layer), {})
        return PruneSummary(results, physical)
    run_layerwise(model, windows, needs, callback, batch_size=batch_size, device=device,
                  desc=f"pruning ({cfg.method})", progress=progress)
    return PruneSummary(results, physical)


def time_dense_pass(model: nn.Module, windows: torch.Tensor, batch_size: int = 8,
                    device: torch.device | str | None = None) -> float:
    """Seconds for one dense layer-by-layer pass over ``windows`` through the same engine (no
    statistics, no change): the unit in which pruning cost is reported."""
    start = time.perf_counter()
    run_layerwise(model, windows, (), lambda *args: False, batch_size=batch_size, device=device,
                  desc="dense pass", progress=False)
    return time.perf_counter() - start
