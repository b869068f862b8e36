"""One ViT pruning run: heads (masked or repacked), then TCS, optionally a short fine-tune.

The steps stay separate (score/select in ``heads``/``tcs``, apply in ``surgery``/``tcs``); this
module only sequences them and gathers a JSON-ready report.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import replace

import torch
import transformers
from torch import nn

from crepe.vit.adapters import adapter_for
from crepe.vit.config import TCSConfig, ViTPruneConfig, keep_count, per_block
from crepe.vit.macs import model_macs
from crepe.vit.surgery import prune_heads
from crepe.vit.tcs import TCSHandle, install_tcs
from crepe.vit.train import TrainConfig, train

logger = logging.getLogger(__name__)


def realised_tcs_ratios(model: nn.Module, tcs: TCSConfig) -> tuple[list[float], list[float]]:
    """Per-block fraction of units actually dropped, ``1 - keep_count(C, r)/C``, for fc1 and fc2 inputs."""
    layers = adapter_for(model).layers(model)
    n, c_in, c_hidden = len(layers), model.config.hidden_size, model.config.intermediate_size
    fc1 = per_block(tcs.fc1_ratios, n, tcs.skip_blocks, "fc1_ratios")
    fc2 = per_block(tcs.fc2_ratios, n, tcs.skip_blocks, "fc2_ratios")
    return ([1 - keep_count(c_in, r) / c_in if r else 0.0 for r in fc1],
            [1 - keep_count(c_hidden, r) / c_hidden if r else 0.0 for r in fc2])


def apply_pruning(model: nn.Module, cfg: ViTPruneConfig, dense: bool) -> tuple[TCSHandle, dict]:
    """Prune ``model`` in place: heads (repacked when ``dense``), then TCS in ``cfg.tcs.mode``.

    Returns the TCS handle and a report with per-block head keeps, realised TCS ratios and MACs.
    """
    macs_before = model_macs(model).total
    heads = prune_heads(model, cfg.heads, dense=dense)
    handle = install_tcs(model, cfg.tcs)
    r1, r2 = realised_tcs_ratios(model, cfg.tcs)
    report = {
        "config": cfg.to_dict(),
        "heads": heads,
        "tcs_realised": {"fc1": r1, "fc2": r2},
        "macs_before": macs_before,
        "macs_after": model_macs(model, r1, r2).total,
    }
    logger.info("MACs %.2f M -> %.2f M", macs_before / 1e6, report["macs_after"] / 1e6)
    return handle, report


def finetune(model: nn.Module, handle: TCSHandle, x: torch.Tensor, y: torch.Tensor, epochs: int,
             lr: float = 2e-4, seed: int = 0) -> list[float]:
    """Short fine-tune of a pruned model (heads repacked, so no masks to re-apply) with TCS active.

    TCS is switched to masked mode while training (gradients reach every fc2 column; the selection
    itself has no parameters) and restored afterwards; returns the per-epoch losses.
    """
    modules = list(handle.modules.values())
    saved = [m.cfg for m in modules]
    for m in modules:
        m.cfg = replace(m.cfg, mode="masked")
    try:
        return train(model, x, y, TrainConfig(epochs=epochs, lr=lr, warmup_epochs=0.0, seed=seed))
    finally:
        for m, c in zip(modules, saved):
            m.cfg = c


def versions() -> dict:
    return {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()}
