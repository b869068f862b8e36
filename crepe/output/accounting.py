"""Honest accounting: the sparsity a run reaches, counted over every weight the decoder holds.

Counted: every parameter of the decoder layers with two or more dimensions (linears, fused 3D expert
tensors), read back from the saved safetensors (or from the model's tensors when nothing is saved).
Routers and gates, which exist but are never pruned (the adapter's ``skip``), are left out of the
count and named. Not weights of the decoder layers, hence not counted: see :data:`EXCLUDED`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from crepe.models.adapters import get_adapter
from crepe.streaming.checkpoint import Checkpoint
from crepe.streaming.store import resolve_keys, stack_fused

EXCLUDED = "norms and biases (1-D), embeddings and lm_head (outside the decoder layers), routers and gates (skipped)"
SHORTFALL = 0.01
"""How far below the requested sparsity the counted weights may end (per-row rounding, allocation plans)."""


@dataclass
class DecoderWeights:
    """counted / zeros: prunable decoder weights (2D+) and their zeros; skipped: router and gate
    tensors by model name -> size; read_from: "saved folder" or "model tensors"."""

    counted: int
    zeros: int
    read_from: str
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def sparsity(self) -> float:
        return self.zeros / max(self.counted, 1)

    def to_dict(self, targeted: float) -> dict[str, Any]:
        return {"counted": self.counted, "zeros": self.zeros, "sparsity": self.sparsity, "targeted_sparsity": targeted,
                "read_from": self.read_from, "excluded": EXCLUDED, "skipped": dict(self.skipped)}


def decoder_weight_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """(prunable, skipped): model names of the decoder layers' parameters with 2+ dimensions."""
    adapter = get_adapter(model)
    prefix = adapter.layers_path + "."
    prunable, skipped = [], []
    for key, param in model.named_parameters():
        if not key.startswith(prefix) or param.dim() < 2:
            continue
        local = key[len(prefix):].partition(".")[2]
        (skipped if adapter.is_skipped(local) else prunable).append(key)
    return prunable, skipped


def _count(model: nn.Module, read: Callable[[str], torch.Tensor], read_from: str) -> DecoderWeights:
    prunable, skipped = decoder_weight_names(model)
    counted = zeros = 0
    for key in prunable:
        value = read(key)
        counted += value.numel()
        zeros += int((value == 0).sum())
    return DecoderWeights(counted, zeros, read_from, {key: read(key).numel() for key in skipped})


def count_model(model: nn.Module) -> DecoderWeights:
    """Count from the model's own (resident) tensors."""
    params = dict(model.named_parameters())
    return _count(model, lambda key: params[key].detach(), "model tensors")


def count_saved(folder: str | Path, model: nn.Module) -> DecoderWeights:
    """Count from the safetensors saved in ``folder`` (per-expert tensors merged as the model holds
    them), one tensor at a time; ``model`` (resident or a skeleton) gives the names."""
    checkpoint = Checkpoint.open(folder)
    names, fused = resolve_keys(model, checkpoint)

    def read(key: str) -> torch.Tensor:
        if key in fused:
            return stack_fused(fused[key], checkpoint.read([n for p in fused[key] for n in p]))
        if key not in names:
            raise ValueError(f"the saved folder {folder} has no tensor for {key}")
        return checkpoint.read([names[key]])[names[key]]

    return _count(model, read, "saved folder")


def targeted_sparsity(sparsity: float, plan: dict[str, float] | None, sizes: dict[str, int]) -> float:
    """What the run asked for: ``sparsity``, or the size-weighted mean of a per-linear ``plan``
    (``layers.<i>.<name>`` -> sparsity; ``sizes``: the same keys -> weight count)."""
    if not plan:
        return sparsity
    return sum(plan.get(k, sparsity) * n for k, n in sizes.items()) / max(sum(sizes.values()), 1)


def check_reached(weights: DecoderWeights, targeted: float) -> None:
    """Fail with one line when the counted decoder weights fall short of the requested sparsity."""
    if weights.sparsity < targeted - SHORTFALL:
        raise ValueError(f"realised sparsity {weights.sparsity:.4f} over the {weights.counted} prunable decoder weights "
                         f"is below the requested {targeted:.4f}; some decoder weights were not pruned")
