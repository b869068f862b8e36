"""Analytic multiply-accumulate (MAC) counter for ViTs under ToaSt compression.

ToaSt's convention (its "GFLOPs" are GMACs), for N tokens of width C, FFN width M:

    MHSA_b = (4 N C^2 + 2 N^2 C) * k_b           k_b = kept head dims / head_dim
    FFN_b  = N C M * ((1 - r1_b) + (1 - r2_b))   r1 / r2: fc1-input / fc2-input drop ratios
    patch  = N C (p^2 c_in)                      counted over all N tokens, as ToaSt / DiffRate do
    head   = C * classes

Selection overheads (scoring, sampling, gathers), LayerNorms, softmax and biases are not counted.
``vit_macs(deit_spec("small"))`` gives 4.599 G, the published DeiT-S figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from torch import nn

from crepe.vit.adapters import adapter_for, attention, mlp


@dataclass(frozen=True)
class ViTSpec:
    """The shape parameters MACs depend on."""

    hidden: int
    depth: int
    heads: int
    num_patches: int
    patch_size: int
    mlp_hidden: int
    in_chans: int = 3
    num_classes: int = 1000
    num_prefix_tokens: int = 1

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")

    @property
    def tokens(self) -> int:
        return self.num_patches + self.num_prefix_tokens

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def deit_spec(size: str) -> ViTSpec:
    """timm's DeiT-{tiny,small,base} at 224 px, patch 16, one class token (ToaSt's tables)."""
    widths = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}
    if size not in widths:
        raise ValueError(f"unknown DeiT size {size!r}; choose one of {sorted(widths)}")
    c, h = widths[size]
    return ViTSpec(hidden=c, depth=12, heads=h, num_patches=196, patch_size=16, mlp_hidden=4 * c)


def spec_from_model(model: nn.Module) -> ViTSpec:
    """Read a :class:`ViTSpec` off a transformers ViT/DeiT (the dense shapes from its config)."""
    cfg, ad = model.config, adapter_for(model)
    image, patch = cfg.image_size, cfg.patch_size
    return ViTSpec(
        hidden=cfg.hidden_size,
        depth=cfg.num_hidden_layers,
        heads=cfg.num_attention_heads,
        num_patches=(image // patch) ** 2,
        patch_size=patch,
        mlp_hidden=cfg.intermediate_size,
        in_chans=cfg.num_channels,
        num_classes=cfg.num_labels,
        num_prefix_tokens=ad.num_prefix_tokens,
    )


@dataclass(frozen=True)
class MacBreakdown:
    """MACs per part; ``total`` and ``gmacs`` are the headline numbers."""

    patch_embed: float
    classifier: float
    mhsa: tuple[float, ...] = field(default=())
    ffn: tuple[float, ...] = field(default=())

    @property
    def total(self) -> float:
        return self.patch_embed + self.classifier + sum(self.mhsa) + sum(self.ffn)

    @property
    def gmacs(self) -> float:
        return self.total / 1e9

    def to_dict(self) -> dict:
        return {"patch_embed": self.patch_embed, "classifier": self.classifier, "mhsa": list(self.mhsa),
                "ffn": list(self.ffn), "total": self.total}


def _expand(values: float | Sequence[float] | None, depth: int, name: str) -> list[float]:
    if values is None:
        return [0.0] * depth
    if isinstance(values, (int, float)):
        return [float(values)] * depth
    values = [float(v) for v in values]
    if len(values) == 1:
        return values * depth
    if len(values) != depth:
        raise ValueError(f"{name} has {len(values)} entries but the model has {depth} blocks")
    return values


def vit_macs(
    spec: ViTSpec,
    head_keep: float | Sequence[float] | None = None,
    fc1_ratios: float | Sequence[float] | None = None,
    fc2_ratios: float | Sequence[float] | None = None,
) -> MacBreakdown:
    """MACs of one image under per-block head keep fractions ``k_b`` and TCS drop ratios.

    ``head_keep`` is the kept fraction of each head's dims (None = 1 everywhere); the ratios are
    fractions dropped (None = 0). Pass the realised values for a real model (see
    :func:`keep_fractions`); ToaSt's tables use the requested ones.
    """
    n, c = spec.tokens, spec.hidden
    keep = [1.0] * spec.depth if head_keep is None else _expand(head_keep, spec.depth, "head_keep")
    r1 = _expand(fc1_ratios, spec.depth, "fc1_ratios")
    r2 = _expand(fc2_ratios, spec.depth, "fc2_ratios")
    mhsa_dense = 4.0 * n * c * c + 2.0 * n * n * c
    ffn_unit = float(n * c * spec.mlp_hidden)
    return MacBreakdown(
        patch_embed=float(n * c * spec.patch_size**2 * spec.in_chans),
        classifier=float(c * spec.num_classes),
        mhsa=tuple(mhsa_dense * k for k in keep),
        ffn=tuple(ffn_unit * ((1.0 - a) + (1.0 - b)) for a, b in zip(r1, r2)),
    )


def toast_head_keep(spec: ViTSpec, sparsity: float, skip_blocks: Sequence[int] = (0,)) -> list[float]:
    """ToaSt's per-block head keep fraction: ``int(head_dim * (1 - s)) / head_dim``, skipped blocks 1."""
    from crepe.vit.config import keep_count

    k = keep_count(spec.head_dim, sparsity) / spec.head_dim
    return [1.0 if b in skip_blocks else k for b in range(spec.depth)]


def model_head_keep(model: nn.Module) -> list[float]:
    """Realised MHSA keep fraction per block of a (possibly repacked or masked) model.

    Counts the non-zero rows of ``q_proj`` (Q/K dims) relative to the dense ``hidden`` width, so it
    covers head-dim pruning, whole-head removal, masked and repacked forms alike.
    """
    hidden = model.config.hidden_size
    out = []
    for layer in adapter_for(model).layers(model):
        w = attention(layer).q_proj.weight
        out.append(float((w != 0).any(dim=1).sum()) / hidden)
    return out


def model_macs(model: nn.Module, fc1_ratios: Sequence[float] | None = None,
               fc2_ratios: Sequence[float] | None = None) -> MacBreakdown:
    """MACs of a real model: its realised head keep fractions plus the given TCS ratios."""
    spec = spec_from_model(model)
    hidden = [mlp(layer).fc1.out_features for layer in adapter_for(model).layers(model)]
    if any(h != spec.mlp_hidden for h in hidden):
        raise ValueError("FFN widths differ from the config; the counter assumes uniform FFNs")
    return vit_macs(spec, model_head_keep(model), fc1_ratios, fc2_ratios)
