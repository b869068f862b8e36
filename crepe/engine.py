"""The one sequential layer engine: capture, then per decoder layer collect -> callback -> propagate.

1. Run the model on the calibration windows until the first decoder layer and keep its inputs
   together with *all* its call arguments (transformers 5 passes position embeddings, per-layer
   masks, ...), stopping the forward pass there.
2. For each decoder layer: move it to ``device``, hook its linears to accumulate the input
   statistics a method asks for, run it, hand layer + statistics to the callback (which prunes,
   or records), then re-run it so the next layer sees the outputs of the *modified* layer.

Every method and every statistics consumer goes through :func:`run_layerwise`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from crepe.models.adapters import Adapter, get_adapter
from crepe.scorers import InputStats

log = logging.getLogger(__name__)

LayerCallback = Callable[[int, nn.Module, dict[str, nn.Module], dict[str, InputStats]], bool]
"""(layer index, layer, its linears by name, their input stats) -> True if the layer was modified."""


class _StopForward(Exception):
    """Raised by the capture hook to end the forward pass at the first decoder layer."""


@dataclass
class LayerInputs:
    """Inputs of the current decoder layer, one entry per calibration batch.

    hidden: [batch, seq, hidden] tensors; args/kwargs: the other call arguments, as captured.
    """

    hidden: list[torch.Tensor] = field(default_factory=list)
    args: list[tuple[Any, ...]] = field(default_factory=list)
    kwargs: list[dict[str, Any]] = field(default_factory=list)


def _to(obj: Any, device: torch.device) -> Any:
    """Move tensors (also inside tuples/lists/dicts) to ``device``; leave everything else alone."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def capture_layer_inputs(model: nn.Module, adapter: Adapter, windows: torch.Tensor, batch_size: int,
                         device: torch.device) -> LayerInputs:
    """Inputs and call arguments of the first decoder layer for ``windows`` [n, seq] token ids."""
    first = adapter.layers(model)[0]
    captured = LayerInputs()

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        if args:
            hidden, rest = args[0], args[1:]
        else:
            kwargs = dict(kwargs)
            hidden, rest = kwargs.pop("hidden_states"), ()
        captured.hidden.append(hidden.to(device))
        captured.args.append(_to(rest, device))
        captured.kwargs.append(_to(kwargs, device))
        raise _StopForward

    handle = first.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for batch in windows.split(batch_size):
            try:
                model(input_ids=batch.to(model_device(model)), use_cache=False)
            except _StopForward:
                pass
    finally:
        handle.remove()
    return captured


class _StatsHook:
    """Forward hook accumulating InputStats of one linear's input X [..., in]."""

    def __init__(self, needs: frozenset[str]):
        self.needs = needs
        self.stats = InputStats()

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0].detach()
        x = x.reshape(-1, x.shape[-1]).float()
        s = self.stats
        if "sq_sum" in self.needs:
            part = x.pow(2).sum(0)
            s.sq_sum = part if s.sq_sum is None else s.sq_sum + part
        if "hessian" in self.needs:
            part = x.t() @ x
            s.hessian = part if s.hessian is None else s.hessian + part
        if "sum" in self.needs:
            part = x.sum(0)
            s.lin_sum = part if s.lin_sum is None else s.lin_sum + part
        s.tokens += x.shape[0]


def _layer_output(layer: nn.Module, hidden: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    out = layer(hidden, *args, **kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def run_layerwise(model: nn.Module, windows: torch.Tensor, needs: Iterable[str], callback: LayerCallback,
                  batch_size: int = 8, device: torch.device | str | None = None,
                  desc: str = "layers", progress: bool = True) -> None:
    """Walk the decoder layers in order on calibration ``windows`` [n, seq] (see module doc).

    ``needs`` names the statistics to collect ({"sq_sum", "hessian", "sum"}); with none, the collect pass
    is skipped. Layers are moved to ``device`` one at a time and moved back afterwards.
    """
    adapter = get_adapter(model)
    needs = frozenset(needs)
    home = model_device(model)
    device = torch.device(device) if device is not None else home
    was_training = model.training
    model.eval()
    inputs = capture_layer_inputs(model, adapter, windows, batch_size, device)
    layers = adapter.layers(model)
    try:
        for index, layer in enumerate(tqdm(layers, desc=desc, disable=not progress, leave=False)):
            layer.to(device)
            linears = adapter.linears(layer)
            hooks = {name: _StatsHook(needs) for name in linears}
            outputs: list[torch.Tensor] | None = None
            if needs:
                handles = [mod.register_forward_hook(hooks[name]) for name, mod in linears.items()]
                try:
                    outputs = [_layer_output(layer, h, a, k) for h, a, k in zip(inputs.hidden, inputs.args, inputs.kwargs)]
                finally:
                    for handle in handles:
                        handle.remove()
            modified = callback(index, layer, linears, {name: hook.stats for name, hook in hooks.items()})
            if modified or outputs is None:
                outputs = [_layer_output(layer, h, a, k) for h, a, k in zip(inputs.hidden, inputs.args, inputs.kwargs)]
            inputs.hidden = outputs
            layer.to(home)
    finally:
        model.train(was_training)
