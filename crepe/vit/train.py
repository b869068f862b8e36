"""Training, fine-tuning and evaluation loops for the small ViT on MNIST-5k.

One loop serves both the from-scratch training script and the post-pruning fine-tune. Shuffling
and augmentation draw from an explicit ``torch.Generator``; nothing touches the global RNG.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from crepe.vit.data import random_shift

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """AdamW with linear warm-up then cosine decay; random shifts of up to ``shift`` pixels."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    shift: int = 2
    label_smoothing: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got {self.epochs}, {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.shift < 0:
            raise ValueError(f"shift must be >= 0, got {self.shift}")

    def to_dict(self) -> dict:
        return asdict(self)


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Learning rate at ``step``: linear warm-up over ``warmup`` steps, cosine to 0 at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    after_step: Callable[[], None] | None = None,
) -> list[float]:
    """Train ``model`` on pixels ``x`` [B, C, H, W] and labels ``y`` [B]; returns per-epoch mean loss.

    ``after_step`` runs after each optimiser step (e.g. to re-apply pruning masks).
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    steps_per_epoch = math.ceil(len(y) / cfg.batch_size)
    total, warmup = cfg.epochs * steps_per_epoch, int(cfg.warmup_epochs * steps_per_epoch)
    losses, step = [], 0
    model.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(y), generator=gen)
        running = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for i in bar:
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            xb = random_shift(x[idx], cfg.shift, gen)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr)
            loss = loss_fn(model(pixel_values=xb).logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            running += loss.item()
            step += 1
            bar.set_postfix(loss=f"{loss.item():.3f}")
        losses.append(running / steps_per_epoch)
        logger.info("epoch %d: loss %.4f", epoch + 1, losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """Predicted class per image, ``[B]``, evaluated in eval mode in fixed-size batches."""
    model.eval()
    out = [model(pixel_values=x[i : i + batch_size]).logits.argmax(-1) for i in range(0, len(x), batch_size)]
    return torch.cat(out)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 250) -> float:
    """Top-1 accuracy in [0, 1]."""
    return (predict(model, x, batch_size) == y).float().mean().item()


def mnist_vit_config(hidden: int = 128, depth: int = 6, heads: int = 4, mlp: int = 512, patch: int = 4):
    """A small transformers ``ViTConfig`` for 28x28 one-channel digits (10 classes, no dropout)."""
    from transformers import ViTConfig

    return ViTConfig(
        hidden_size=hidden,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        intermediate_size=mlp,
        image_size=28,
        patch_size=patch,
        num_channels=1,
        num_labels=10,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        id2label={i: str(i) for i in range(10)},
        label2id={str(i): i for i in range(10)},
    )


def build_vit(config, seed: int = 0) -> nn.Module:
    """A freshly initialised ``ViTForImageClassification`` (eager attention), seeded by ``seed``.

    transformers initialises from the global RNG, so the draw runs inside ``torch.random.fork_rng``:
    the caller's global RNG state is left exactly as it was.
    """
    from transformers import ViTForImageClassification

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ViTForImageClassification(config)
    model.set_attn_implementation("eager")
    return model.eval()


def default_model_dir() -> Path:
    """Where the trained MNIST ViT is cached: ``$CREPE_CACHE/vit-mnist`` (default ``~/.cache/crepe``)."""
    return Path(os.environ.get("CREPE_CACHE", Path.home() / ".cache" / "crepe")) / "vit-mnist"
