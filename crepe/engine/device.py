"""Checking the device layers compute on before any work."""

from __future__ import annotations

import torch


def check_device(device: str | None) -> None:
    """One clear line for a device this machine does not have."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available on this machine (torch.cuda.is_available() is False)")
