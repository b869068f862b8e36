"""Input statistics of every decoder linear from ONE pass of the dense model, and one-shot pruning
with them: the cheap path used to rank many score configurations (sweeps, PHO) with no forward
pass per configuration. The final prune always uses the sequential engine."""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import nn

from crepe.compose.steps import linear_steps
from crepe.config import PruneConfig
from crepe.engine.layerwise import run_layerwise
from crepe.methods.scorers import InputStats
from crepe.models.adapters import ModelTarget, model_target
from crepe.prune.linear import LinearResult, needed_stats, prune_linear
from crepe.prune.model import expert_fallback, is_unreached


def collect_input_stats(model: nn.Module, windows: torch.Tensor, needs: frozenset[str] = frozenset({"sq_sum"}),
                        batch_size: int = 8, progress: bool = True) -> dict[str, InputStats]:
    """InputStats of every decoder linear (``layers.<i>.<name>``) under dense propagation."""
    target = model_target(model)
    stats: dict[str, InputStats] = {}

    def record(index: int, layer: nn.Module, linears: dict, layer_stats: dict[str, InputStats]) -> bool:
        stats.update({target.per_layer[index][name].key: s for name, s in layer_stats.items()})
        return False

    run_layerwise(model, windows, needs, record, batch_size=batch_size, desc="collecting stats", progress=progress)
    return stats


@torch.no_grad()
def prune_from_stats(model: nn.Module, stats: dict[str, InputStats], cfg: PruneConfig,
                     target: ModelTarget | None = None, layers: Collection[int] | None = None) -> dict[str, LinearResult]:
    """Prune every decoder linear in place with precomputed ``stats`` by key (no forward pass);
    ``layers``: only the linears of these decoder layers (the others stay dense). A routed expert
    that no token reached is pruned by :data:`crepe.prune.model.EXPERT_FALLBACK`."""
    target = target or model_target(model)
    target.check_roles(cfg.crepe.overrides)
    steps = linear_steps(cfg)
    needs = needed_stats(cfg, steps)
    fallback = expert_fallback(cfg) if any(t.expert for t in target.linears.values()) else (cfg, steps)
    out = {}
    for key, t in target.linears.items():
        if layers is None or t.layer in layers:
            use, use_steps = fallback if is_unreached(t, stats[key], needs) else (cfg, steps)
            out[key] = prune_linear(t.weight, stats[key], use, role=t.role, in_attention=t.in_attention,
                                    steps=use_steps, name=key)
    return out
