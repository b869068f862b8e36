"""Perplexity of a causal LM on token windows: mean next-token cross-entropy per window, exp(mean)."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def window_nll(model: nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """Mean next-token negative log-likelihood of each window: [w, seq] -> [w] float32."""
    device = next(model.parameters()).device
    logits = model(input_ids=windows.to(device), use_cache=False).logits[:, :-1].float()
    targets = windows[:, 1:].to(device)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return nll.view(targets.shape).mean(dim=1).cpu()


@torch.no_grad()
def perplexity(model: nn.Module, windows: torch.Tensor, batch_size: int = 4, dtype: str = "float32",
               progress: bool = True) -> float:
    """exp(mean over windows of the mean token NLL). ``dtype`` "bfloat16" evaluates under CPU/GPU
    autocast (weights stay in their own dtype, so pruning precision is untouched)."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown eval dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    device_type = next(model.parameters()).device.type
    autocast = (torch.autocast(device_type, dtype=DTYPES[dtype]) if DTYPES[dtype] != torch.float32
                else contextlib.nullcontext())
    was_training = model.training
    model.eval()
    losses = []
    with autocast:
        for batch in tqdm(windows.split(batch_size), desc="perplexity", disable=not progress, leave=False):
            losses.append(window_nll(model, batch))
    model.train(was_training)
    mean = torch.cat(losses).mean().item()
    if not math.isfinite(mean):
        raise ValueError("perplexity is not finite: the model produced NaN/Inf logits")
    return math.exp(mean)
