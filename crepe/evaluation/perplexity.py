"""Perplexity of a causal LM on token windows: mean next-token cross-entropy per window, exp(mean).

:func:`perplexity` runs the model's own forward pass (a resident model on its device).
:func:`layerwise_perplexity` runs the same windows through the sequential engine, one decoder layer
at a time on the store's device (streamed from disk, or moved from memory), and computes the logits
in chunks of tokens so that tokens x vocab never materialises at once: how a model larger than RAM
or than one GPU is evaluated.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from crepe.engine.layer_store import LayerStore
from crepe.engine.layerwise import LayerInputs, run_layerwise, tail_inputs
from crepe.methods.params import check_at_least

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
    return _ppl(torch.cat(losses))


def _ppl(window_nlls: torch.Tensor) -> float:
    mean = window_nlls.mean().item()
    if not math.isfinite(mean):
        raise ValueError("perplexity is not finite: the model produced NaN/Inf logits")
    return math.exp(mean)


def chunked_window_nll(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor, chunk_tokens: int = 2048,
                       softcap: float | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Mean next-token NLL per window from the head's inputs ``hidden`` [w, seq, d] and ``targets``
    [w, seq - 1], ``chunk_tokens`` positions of logits at a time; ``dtype``: the head's compute dtype."""
    weight = head.weight.to(hidden.device, dtype or head.weight.dtype)
    bias = None if getattr(head, "bias", None) is None else head.bias.to(weight.device, weight.dtype)
    h = hidden[:, :-1].reshape(-1, hidden.shape[-1])
    t = targets.reshape(-1).to(h.device)
    nll = torch.empty(t.shape[0], dtype=torch.float32, device=h.device)
    for start in range(0, t.shape[0], chunk_tokens):
        logits = F.linear(h[start:start + chunk_tokens].to(weight.dtype), weight, bias).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        nll[start:start + chunk_tokens] = F.cross_entropy(logits, t[start:start + chunk_tokens], reduction="none")
    return nll.view(targets.shape).mean(dim=1).cpu()


@torch.no_grad()
def layerwise_perplexity(model: nn.Module, windows: torch.Tensor, batch_size: int = 4,
                         store: LayerStore | None = None, device: torch.device | str | None = None,
                         progress: bool = True, chunk_tokens: int = 2048) -> float:
    """PPL of ``windows`` [w, seq] through the engine, one decoder layer at a time (see module doc).

    Layers compute in the store's compute dtype (float32 for half-precision weights on CPU)."""
    final: LayerInputs = run_layerwise(model, windows, (), lambda *a: False, batch_size=batch_size, device=device,
                                       desc="perplexity (layer by layer)", progress=progress, store=store,
                                       keep_outputs=True)
    head = model.get_output_embeddings()
    compute = final.hidden[0].dtype
    softcap = getattr(model.config, "final_logit_softcapping", None)
    losses = []
    for hidden, batch in zip(tail_inputs(model, final, windows, batch_size), windows.split(batch_size)):
        losses.append(chunked_window_nll(head, hidden, batch[:, 1:], chunk_tokens, softcap, compute))
    return _ppl(torch.cat(losses))


def evaluate_ppl(model: nn.Module, windows: torch.Tensor, batch_size: int = 4, dtype: str = "float32",
                 device: str | None = None, progress: bool = True) -> tuple[float, str]:
    """PPL and how it was computed ("forward" | "layerwise"): the model's own forward pass for a
    resident float model on CPU (or one dispatched by accelerate's ``device_map``); otherwise layer by
    layer (streamed, on a GPU, or half-precision weights on CPU), never moving the whole model."""
    check_at_least(1, batch_size=batch_size)
    streamed = getattr(model, "crepe_layer_store", None) is not None
    dispatched = getattr(model, "hf_device_map", None) is not None
    half_on_cpu = next(model.parameters()).dtype in (torch.bfloat16, torch.float16) and device in (None, "cpu")
    if not dispatched and (streamed or device not in (None, "cpu") or half_on_cpu):
        return layerwise_perplexity(model, windows, batch_size, device=device, progress=progress), "layerwise"
    return perplexity(model, windows, batch_size, dtype, progress), "forward"


def describe_eval(how: str, dtype: str, device: str | None) -> str:
    """The compute-dtype part of a PPL's protocol line."""
    if how == "forward":
        return f"dtype={dtype}"
    return f"dtype={'float32' if device in (None, 'cpu') else 'as stored'} layerwise"
