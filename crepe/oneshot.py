"""Input statistics of every decoder linear from ONE pass of the dense model, and one-shot pruning
with them: the cheap path used to rank many score configurations (sweeps, PHO) with no forward
pass per configuration. The final prune always uses the sequential engine."""

from __future__ import annotations

import torch
from torch import nn

from crepe.config import PruneConfig
from crepe.engine import run_layerwise
from crepe.prune_linear import LinearResult, prune_weight
from crepe.models.adapters import decoder_linears, get_adapter, weight_view
from crepe.scorers import InputStats


def collect_input_stats(model: nn.Module, windows: torch.Tensor, needs: frozenset[str] = frozenset({"sq_sum"}),
                        batch_size: int = 8, progress: bool = True) -> dict[str, InputStats]:
    """InputStats of every decoder linear (``layers.<i>.<name>``) under dense propagation."""
    stats: dict[str, InputStats] = {}

    def record(index: int, layer: nn.Module, linears: dict, layer_stats: dict[str, InputStats]) -> bool:
        stats.update({f"layers.{index}.{name}": s for name, s in layer_stats.items()})
        return False

    run_layerwise(model, windows, needs, record, batch_size=batch_size, desc="collecting stats", progress=progress)
    return stats


def snapshot_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every decoder linear weight [out, in], to restore after a trial."""
    return {name: weight_view(mod).clone() for name, mod in decoder_linears(model).items()}


def restore_weights(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> None:
    for name, mod in decoder_linears(model).items():
        weight_view(mod).copy_(snapshot[name])


@torch.no_grad()
def prune_oneshot(model: nn.Module, stats: dict[str, InputStats], cfg: PruneConfig) -> dict[str, LinearResult]:
    """Prune every decoder linear in place with precomputed ``stats`` (no forward pass)."""
    adapter = get_adapter(model)
    results = {}
    for name, mod in decoder_linears(model, adapter).items():
        inner = name.split(".", 2)[2]
        results[name] = prune_weight(weight_view(mod), stats[name], cfg, inner, in_attention=adapter.is_attention(inner))
    return results
