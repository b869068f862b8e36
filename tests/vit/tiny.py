"""Tiny randomly initialised ViT/DeiT models built from configs (milliseconds to run)."""

from __future__ import annotations

import torch

from crepe.vit.train import build_vit, mnist_vit_config


def _random_biases(model, seed: int):
    """transformers zero-initialises biases; random ones make bias handling observable."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear) and mod.bias is not None:
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
    return model


def tiny_vit(hidden: int = 32, depth: int = 3, heads: int = 4, mlp: int = 64, seed: int = 0):
    return _random_biases(build_vit(mnist_vit_config(hidden, depth, heads, mlp, patch=7), seed=seed), seed)


def tiny_deit(seed: int = 0, channels: int = 1):
    from transformers import DeiTConfig, DeiTForImageClassification

    cfg = DeiTConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                     image_size=28, patch_size=7, num_channels=channels, num_labels=5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DeiTForImageClassification(cfg)
    model.set_attn_implementation("eager")
    return _random_biases(model.eval(), seed)


def logits(model, x):
    with torch.no_grad():
        return model(pixel_values=x).logits
