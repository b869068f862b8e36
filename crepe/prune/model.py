"""Prune a whole model layer by layer: the engine, the model's target and :func:`crepe.prune.linear.prune_linear`
with the composition steps of the config (permutation, allocation, DSnoT)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from crepe.compose.allocation import allocate
from crepe.compose.permuted_linears import apply_layer_permutations
from crepe.compose.steps import linear_steps
from crepe.config import PruneConfig
from crepe.engine.layer_store import store_for
from crepe.engine.layerwise import iterate_layers, run_layerwise
from crepe.methods.masks import all_finite
from crepe.methods.scorers import InputStats
from crepe.models.adapters import LinearTarget, ModelTarget, model_target
from crepe.prune.linear import LinearResult, LinearSteps, dense_stream_dtype, needed_stats, prune_linear

log = logging.getLogger(__name__)

EXPERT_FALLBACK = ("a routed expert that no calibration token reached is pruned by weight magnitude alone "
                   "(method magnitude, no weight update), at its planned sparsity")


def expert_fallback(cfg: PruneConfig) -> tuple[PruneConfig, LinearSteps]:
    """The config and steps of :data:`EXPERT_FALLBACK`: ``cfg`` with magnitude scores and no update."""
    fallback = replace(cfg, method="magnitude", update=None, repruning=None, group=None)
    return fallback, linear_steps(fallback)


def is_unreached(linear: LinearTarget, stats: InputStats, needs: frozenset[str]) -> bool:
    """A routed expert's matrix that no calibration token reached, under a method that reads statistics."""
    return linear.expert and bool(needs) and stats.tokens == 0


@dataclass
class PruneSummary:
    """Per-linear results (by ``layers.<i>.<name>``) and the totals over all pruned linears;
    ``physical``: linears whose column permutation was realised by permuting their producers;
    ``fallback``: routed experts' matrices pruned by :data:`EXPERT_FALLBACK` (no routed token)."""

    linears: dict[str, LinearResult]
    physical: set[str] = field(default_factory=set)
    fallback: list[str] = field(default_factory=list)

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
    if cfg.permute is not None and any(t.expert for t in target.linears.values()):
        raise ValueError(f"--permute is not supported on {target.model_type}: routed experts' fused matrices "
                         f"cannot carry column permutations; prune without --permute")
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
    fallback: list[str] = []
    steps = linear_steps(cfg)
    needs = needed_stats(cfg, steps)
    has_experts = any(t.expert for t in target.linears.values())
    by_magnitude, magnitude_steps = expert_fallback(cfg) if has_experts else (cfg, steps)

    def callback(index: int, layer: nn.Module, linears: dict[str, nn.Module], stats: dict[str, InputStats]) -> bool:
        perms = {}
        for name in linears:
            linear = target.per_layer[index][name]
            own = stats.get(name, InputStats())
            unreached = is_unreached(linear, own, needs)
            if unreached:
                fallback.append(linear.key)
            results[linear.key] = prune_linear(
                linear.weight, own, by_magnitude if unreached else cfg, role=linear.role,
                sparsity=layer_sparsity.get(linear.key) if layer_sparsity else None,
                in_attention=linear.in_attention, steps=magnitude_steps if unreached else steps, name=linear.key)
            if results[linear.key].permutation is not None:
                perms[name] = results[linear.key].permutation
        if cfg.permute is not None and cfg.permute.physical:
            physical.update(apply_layer_permutations(target.per_layer[index], linears, perms, target.adapter))
        log.debug("layer %d pruned", index)
        return True

    if not needs:  # input-independent scores: no calibration pass is needed
        for index, layer in iterate_layers(model, device=device, progress=progress, desc=f"pruning ({cfg.method})"):
            callback(index, layer, target.adapter.linears(layer), {})
        return PruneSummary(results, physical, fallback)
    store = store_for(model, device)
    run_layerwise(model, windows, needs, callback, batch_size=batch_size, store=store,
                  desc=f"pruning ({cfg.method})", progress=progress, dense_share=cfg.dense_share,
                  dense_dtype=dense_stream_dtype(cfg, needs, store.device))
    if fallback:
        log.warning("%d expert matrices received no calibration token: %s", len(fallback), EXPERT_FALLBACK)
    return PruneSummary(results, physical, fallback)


def time_dense_pass(model: nn.Module, windows: torch.Tensor, batch_size: int = 8,
                    device: torch.device | str | None = None) -> float:
    """Seconds for one dense layer-by-layer pass over ``windows`` through the same engine (no
    statistics, no change): the unit in which pruning cost is reported."""
    start = time.perf_counter()
    run_layerwise(model, windows, (), lambda *args: False, batch_size=batch_size, device=device,
                  desc="dense pass", progress=False)
    return time.perf_counter() - start
