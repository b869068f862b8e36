"""Fixtures for the ViT tests: a tiny random ViT and a batch of random pixels."""

import pytest
import torch

from .tiny import tiny_vit


@pytest.fixture
def model():
    return tiny_vit()


@pytest.fixture
def pixels():
    return torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
