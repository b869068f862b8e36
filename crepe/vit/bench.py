"""CPU latency of dense, masked and repacked ViTs, measured in one process with one thread count.

``time_interleaved`` reports the median over ``repeats`` round-robin timed forwards after warm-up;
``latency_table`` builds the three variants from one trained model and times them at each batch size
so the ratios come from the same run.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
from dataclasses import replace

import torch
from torch import nn

from crepe.vit.config import ViTPruneConfig
from crepe.vit.prune_vit import apply_pruning

logger = logging.getLogger(__name__)


@torch.inference_mode()
def time_interleaved(models: dict[str, nn.Module], x: torch.Tensor, warmup: int = 3, repeats: int = 15) -> dict:
    """Median / min / max ms of ``model(pixel_values=x)`` per model, timed round-robin.

    Each repeat times every model once in turn, so load from other processes on a shared machine
    hits all variants alike instead of biasing whichever ran during a busy spell.
    """
    times: dict[str, list[float]] = {name: [] for name in models}
    for m in models.values():
        m.eval()
        for _ in range(warmup):
            m(pixel_values=x)
    for _ in range(repeats):
        for name, m in models.items():
            t0 = time.perf_counter()
            m(pixel_values=x)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "max_ms": max(t), "repeats": repeats}
            for name, t in times.items()}


def build_variants(model: nn.Module, cfg: ViTPruneConfig) -> dict[str, nn.Module]:
    """``dense`` (untouched copy), ``masked`` (zeroed heads + masked TCS), ``repacked`` (small heads + gathered TCS)."""
    dense = copy.deepcopy(model)
    dense.set_attn_implementation("eager")
    masked, repacked = copy.deepcopy(model), copy.deepcopy(model)
    apply_pruning(masked, ViTPruneConfig(cfg.heads, replace(cfg.tcs, mode="masked")), dense=False)
    apply_pruning(repacked, ViTPruneConfig(cfg.heads, replace(cfg.tcs, mode="dense")), dense=True)
    return {"dense": dense, "masked": masked, "repacked": repacked}


def latency_table(model: nn.Module, cfg: ViTPruneConfig, batch_sizes: tuple[int, ...] = (1, 8, 32),
                  repeats: int = 15, seed: int = 0) -> list[dict]:
    """One row per batch size: median ms of each variant and the ratios to the dense model."""
    variants = build_variants(model, cfg)
    c, s = model.config.num_channels, model.config.image_size
    rows = []
    for b in batch_sizes:
        x = torch.randn(b, c, s, s, generator=torch.Generator().manual_seed(seed))
        row = {"batch": b, **time_interleaved(variants, x, repeats=repeats)}
        for name in ("masked", "repacked"):
            row[f"{name}_over_dense"] = row[name]["median_ms"] / row["dense"]["median_ms"]
        logger.info("batch %d: dense %.2f ms, masked x%.2f, repacked x%.2f", b, row["dense"]["median_ms"],
                    row["masked_over_dense"], row["repacked_over_dense"])
        rows.append(row)
    return rows
