"""Architecture adapters: where a ViT's blocks, attention and MLP live, and its token layout.

One small adapter per family, chosen from the model's class; unknown models fail with the list of
supported ones. Every supported block exposes ``attention.{q,k,v,o}_proj`` (with attributes
``num_attention_heads``, ``head_dim``, ``scaling``) and ``mlp.{fc1,fc2,activation_fn}``, which is
the layout of transformers 5 ViT and DeiT.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ViTAdapter:
    """How to reach the parts of one model family.

    ``backbone``: attribute holding the encoder model; ``num_prefix_tokens``: tokens before the
    patches (class token, plus DeiT's distillation token). Token 0 is always the class token.
    """

    name: str
    backbone: str
    num_prefix_tokens: int

    def layers(self, model: nn.Module) -> nn.ModuleList:
        return getattr(model, self.backbone).layers


ADAPTERS: dict[str, ViTAdapter] = {
    "ViTForImageClassification": ViTAdapter("vit", "vit", 1),
    "DeiTForImageClassification": ViTAdapter("deit", "deit", 2),
}


def adapter_for(model: nn.Module) -> ViTAdapter:
    """The adapter for ``model``'s class; ``ValueError`` listing the supported ones otherwise."""
    name = type(model).__name__
    if name not in ADAPTERS:
        raise ValueError(f"unsupported model class {name}; supported: {sorted(ADAPTERS)}")
    return ADAPTERS[name]


def attention(layer: nn.Module) -> nn.Module:
    return layer.attention


def mlp(layer: nn.Module) -> nn.Module:
    return layer.mlp
