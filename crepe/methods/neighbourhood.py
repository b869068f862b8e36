"""k x k box sums over a weight matrix with an integral image: cost independent of k.

The box filter is separable, so the 2D sum is a 1D box sum along rows followed by one along
columns, each taken as a difference of cumulative sums. Cumulative sums run in float64: in float32
the difference of two large prefix sums would lose the small local sums to rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _box_sum_1d(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Sum of each length-k window centred on every index along ``dim`` (zero padding)."""
    r = k // 2
    x = x.movedim(dim, -1)
    padded = F.pad(x, (r + 1, r))  # one extra leading zero makes prefix[i + k] - prefix[i] the window sum
    prefix = padded.cumsum(-1)
    out = prefix[..., k:] - prefix[..., :-k]
    return out.movedim(-1, dim)


def box_sum(a: torch.Tensor, k: int) -> torch.Tensor:
    """``B[i, j] = sum_{|p-i|<=r, |q-j|<=r} a[p, q]`` with zero padding, r = (k-1)/2.

    a: [rows, cols] -> [rows, cols], same dtype as ``a``.
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"kernel size must be an odd integer >= 1, got {k}")
    if k == 1:
        return a.clone()
    x = a.to(torch.float64)
    return _box_sum_1d(_box_sum_1d(x, k, 0), k, 1).to(a.dtype)


def box_count(rows: int, cols: int, k: int, device: torch.device | None = None) -> torch.Tensor:
    """Number of in-bounds entries in each k x k window: [rows, cols] (k*k away from the edges)."""
    r = k // 2
    row_counts = (torch.arange(rows, device=device).clamp(max=r) + 1) + (
        torch.arange(rows - 1, -1, -1, device=device).clamp(max=r)
    )
    col_counts = (torch.arange(cols, device=device).clamp(max=r) + 1) + (
        torch.arange(cols - 1, -1, -1, device=device).clamp(max=r)
    )
    return (row_counts[:, None] * col_counts[None, :]).to(torch.float32)


def box_mean(a: torch.Tensor, k: int, padding: str = "zero") -> torch.Tensor:
    """Mean over each k x k window. ``padding="zero"`` divides by k*k (edges see zeros);
    ``"count"`` divides by the number of in-bounds entries (edges are not penalised)."""
    total = box_sum(a, k)
    if padding == "zero":
        return total / (k * k)
    if padding == "count":
        return total / box_count(*a.shape, k, device=a.device).to(a.dtype)
    raise ValueError(f"unknown padding {padding!r}; choose from zero, count")
