"""Frozen, validated configuration objects for the ViT path (ToaSt: TCS + coupled head pruning).

Every config is a frozen dataclass checked at construction; ``to_dict``/``from_dict`` round-trip
through JSON so a report carries the exact settings that produced it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

HEAD_SCORES = ("median", "l1", "l2")
HEAD_MODES = ("dim", "head")
SCALES = ("original", "rescaled")
SELECTIONS = ("batch", "image")
TCS_MODES = ("masked", "dense")


def keep_count(n: int, ratio: float) -> int:
    """Units kept when dropping ``ratio`` of ``n``: ``max(1, floor(n * (1 - ratio)))``.

    ToaSt's convention (``int(head_dim * (1 - s))``); a tiny epsilon absorbs float error so
    ``keep_count(10, 0.3) == 7``.
    """
    return max(1, min(n, math.floor(n * (1.0 - ratio) + 1e-6)))


def _check_ratio(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(choices)}")


def _check_blocks(name: str, blocks: Sequence[int]) -> None:
    if any((not isinstance(b, int)) or b < 0 for b in blocks):
        raise ValueError(f"{name} must hold non-negative block indices, got {list(blocks)}")


def per_block(ratios: Sequence[float], depth: int, skip: Sequence[int], name: str) -> list[float]:
    """Expand ``ratios`` to one value per block: empty -> zeros, one value -> broadcast.

    Blocks listed in ``skip`` get 0 whatever was asked (ToaSt leaves block 0 dense).
    """
    if len(ratios) == 0:
        out = [0.0] * depth
    elif len(ratios) == 1:
        out = [float(ratios[0])] * depth
    elif len(ratios) == depth:
        out = [float(r) for r in ratios]
    else:
        raise ValueError(f"{name} has {len(ratios)} entries but the model has {depth} blocks")
    return [0.0 if i in skip else r for i, r in enumerate(out)]


@dataclass(frozen=True)
class HeadPruneConfig:
    """Coupled head-dimension pruning (ToaSt's SCWP).

    ``sparsity``: fraction of each head's dimensions removed (mode "dim") or fraction of heads
    removed (mode "head", the whole-head comparison). ``score``: "median" (distance to the
    column-wise median, FPGM-style, the paper default), "l1" or "l2". ``scale``: the attention
    scale after a dense repack, "original" (1/sqrt(head_dim), same outputs as the masked model)
    or "rescaled" (1/sqrt(kept dims), changes outputs).
    """

    sparsity: float = 0.0
    score: str = "median"
    mode: str = "dim"
    skip_blocks: tuple[int, ...] = (0,)
    scale: str = "original"

    def __post_init__(self) -> None:
        _check_ratio("head sparsity", self.sparsity)
        _check_choice("head score", self.score, HEAD_SCORES)
        _check_choice("head mode", self.mode, HEAD_MODES)
        _check_choice("attention scale", self.scale, SCALES)
        _check_blocks("skip_blocks", self.skip_blocks)
        object.__setattr__(self, "skip_blocks", tuple(self.skip_blocks))


@dataclass(frozen=True)
class TCSConfig:
    """Token channel selection for the FFN (ToaSt's TCS), run at inference, no parameters.

    ``fc2_ratios``/``fc1_ratios``: fraction of FFN hidden units (fc2's inputs) / of fc1's input
    channels dropped per block (empty = none, one value = every block). ``cls_weight`` = w,
    ``sample_ratio`` = rho, the fraction of patch tokens sampled. ``selection``: "batch" (one
    channel set per forward batch, as the reference) or "image" (one per image). ``mode``:
    "masked" (zero dropped units) or "dense" (gather the kept columns of the next linear).
    ``seed`` seeds the explicit generator used for patch sampling.
    """

    fc2_ratios: tuple[float, ...] = ()
    fc1_ratios: tuple[float, ...] = ()
    cls_weight: float = 2.0
    sample_ratio: float = 0.02
    selection: str = "batch"
    mode: str = "masked"
    skip_blocks: tuple[int, ...] = (0,)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("fc2_ratios", "fc1_ratios"):
            values = tuple(float(v) if isinstance(v, int) else v for v in getattr(self, name))
            for v in values:
                _check_ratio(name, v)
            object.__setattr__(self, name, values)
        if not self.cls_weight >= 0.0:
            raise ValueError(f"cls_weight must be >= 0, got {self.cls_weight}")
        if not 0.0 < self.sample_ratio <= 1.0:
            raise ValueError(f"sample_ratio must lie in (0, 1], got {self.sample_ratio}")
        _check_choice("selection", self.selection, SELECTIONS)
        _check_choice("TCS mode", self.mode, TCS_MODES)
        _check_blocks("skip_blocks", self.skip_blocks)
        object.__setattr__(self, "skip_blocks", tuple(self.skip_blocks))

    @property
    def active(self) -> bool:
        return any(r > 0 for r in self.fc2_ratios + self.fc1_ratios)


@dataclass(frozen=True)
class ViTPruneConfig:
    """Everything one ViT pruning run needs: heads, TCS, and the fine-tune length (0 = none)."""

    heads: HeadPruneConfig = field(default_factory=HeadPruneConfig)
    tcs: TCSConfig = field(default_factory=TCSConfig)
    finetune_epochs: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0:
            raise ValueError(f"finetune_epochs must be a non-negative int, got {self.finetune_epochs}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ViTPruneConfig":
        heads = dict(d.get("heads", {}))
        tcs = dict(d.get("tcs", {}))
        for key in ("skip_blocks",):
            if key in heads:
                heads[key] = tuple(heads[key])
        for key in ("fc2_ratios", "fc1_ratios", "skip_blocks"):
            if key in tcs:
                tcs[key] = tuple(tcs[key])
        return cls(HeadPruneConfig(**heads), TCSConfig(**tcs), int(d.get("finetune_epochs", 0)))
