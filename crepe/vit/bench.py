"""CPU latency of dense, masked and repacked ViTs, measured in one process with one thread count.

``time_forward`` reports the median over ``repeats`` timed forwards after ``warmup`` untimed ones;
``latency_table`` builds the three variants from one trained model and times them at each batch size
so the ratios come from the same run.
"""

from __future__ import annotations

import copy
from dataclasses import replace
import logging
import statistics
import time

import torch
from torch import nn

from crepe.vit.config import ViTPruneConfig
from crepe.vit.prune import apply_pruning

logger = logging.getLogger(__name__)


@torch.inference_mode()
def time_forward(model: nn.Module, x: torch.Tensor, warmup: int = 3, repeats: int = 15) -> dict:
    """Median / min / max milliseconds of ``model(pixel_values=x)`` over ``repeats`` runs."""
    model.eval()
    for _ in range(warmup):
        model(pixel_values=x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(pixel_values=x)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "repeats": repeats}


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
        row = {"batch": b}
        for name, m in variants.items():
            row[name] = time_forward(m, x, repeats=repeats)
        for name in ("masked", "repacked"):
            row[f"{name}_over_dense"] = row[name]["median_ms"] / row["dense"]["median_ms"]
        logger.info("batch %d: dense %.2f ms, masked x%.2f, repacked x%.2f", b, row["dense"]["median_ms"],
                    row["masked_over_dense"], row["repacked_over_dense"])
        rows.append(row)
    return rows
