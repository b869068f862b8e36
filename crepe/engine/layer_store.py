"""Where the engine's decoder layers live between uses: in memory, or streamed from disk.

The engine asks a :class:`LayerStore` to ``load`` one layer before it runs it and to ``release``
it afterwards. The in-memory store moves a resident layer to the compute device (and compute
dtype); the streamed store (:mod:`crepe.streaming.store`) reads it from the checkpoint's shards,
and on release writes it to the output shards and drops its weights. Nothing else in the engine
differs between the two, so every method runs the same way in memory and streamed.

Weights keep their storage dtype; a layer may *compute* in another one (float32 on CPU, where
bf16 matmul is several times slower). After a layer is modified, :meth:`LayerStore.settle`
rounds its weights to the storage dtype, so the next layer sees exactly what will be saved.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from crepe.io.memory import release_freed_memory


class LayerStore(Protocol):
    """device: where layers run; compute_dtype: dtype of parameters while loaded (None: as stored)."""

    device: torch.device
    compute_dtype: torch.dtype | None

    def load(self, index: int, layer: nn.Module) -> None: ...

    def settle(self, index: int, layer: nn.Module) -> None:
        """Round a modified layer to its storage dtype; it does not change again before ``release``."""

    def release(self, index: int, layer: nn.Module) -> None: ...


def default_compute_dtype(device: torch.device, storage: torch.dtype) -> torch.dtype | None:
    """float32 for half-precision layers on CPU (bf16/fp16 matmul is slow there); as stored elsewhere."""
    if device.type == "cpu" and storage in (torch.bfloat16, torch.float16):
        return torch.float32
    return None


def named_parameter_slots(layer: nn.Module):
    """(owning module, local name, qualified name, parameter) for every parameter of ``layer``."""
    for prefix, module in layer.named_modules():
        for name, param in module._parameters.items():
            if param is not None:
                yield module, name, f"{prefix}.{name}" if prefix else name, param


def cast_parameters(layer: nn.Module, device: torch.device, dtype: torch.dtype | None,
                    dtypes: dict[str, torch.dtype] | None = None) -> None:
    """Move every parameter to ``device``; floating ones to ``dtype``, or to ``dtypes[name]`` when given.
    Buffers only move device (non-persistent ones such as rotary frequencies keep their precision)."""
    for module, name, full, param in list(named_parameter_slots(layer)):
        target = param.dtype
        if param.is_floating_point():
            target = dtypes[full] if dtypes is not None else (dtype or param.dtype)
        if param.device != device or param.dtype != target:
            param.data = param.data.to(device, target)
    for module in layer.modules():
        for name, buf in module._buffers.items():
            if buf is not None and buf.device != device:
                module._buffers[name] = buf.to(device)


def round_to(layer: nn.Module, dtypes: dict[str, torch.dtype]) -> dict[str, torch.Tensor]:
    """Round each floating parameter through its storage dtype (``dtypes`` by qualified name), in place.
    Returns the rounded tensors in storage dtype by qualified name (a release can keep them as they are
    instead of casting again: the layer does not change between settle and release)."""
    rounded = {}
    for _, _, full, param in named_parameter_slots(layer):
        stored = dtypes.get(full, param.dtype)
        if param.is_floating_point() and stored != param.dtype:
            rounded[full] = param.data.to(stored)
            param.data.copy_(rounded[full])
    return rounded


class InMemoryLayers:
    """Layers resident in ``home`` memory, moved to ``device`` (and ``compute_dtype``) one at a time."""

    def __init__(self, home: torch.device, device: torch.device, compute_dtype: torch.dtype | None = None):
        self.home, self.device, self.compute_dtype = home, device, compute_dtype
        self._dtypes: dict[int, dict[str, torch.dtype]] = {}
        self._rounded: dict[str, torch.Tensor] = {}  # the settled layer's parameters in storage dtype

    def load(self, index: int, layer: nn.Module) -> None:
        self._dtypes[index] = {full: p.dtype for _, _, full, p in named_parameter_slots(layer)}
        self._rounded = {}
        cast_parameters(layer, self.device, self.compute_dtype)

    def settle(self, index: int, layer: nn.Module) -> None:
        self._rounded = round_to(layer, self._dtypes[index])

    def release(self, index: int, layer: nn.Module) -> None:
        for _, _, full, param in named_parameter_slots(layer):
            if full in self._rounded and self._rounded[full].device == self.home:
                param.data = self._rounded[full]
        self._rounded = {}
        cast_parameters(layer, self.home, None, self._dtypes.pop(index))
        release_freed_memory()


def model_device(model: nn.Module) -> torch.device:
    """Where the model's resident (non-streamed) weights are: its first non-meta parameter."""
    for param in model.parameters():
        if param.device.type != "meta":
            return param.device
    return torch.device("cpu")


def store_for(model: nn.Module, device: torch.device | str | None = None) -> LayerStore:
    """The model's own store if it was opened streamed (``crepe_layer_store``), else in memory.

    In memory, half-precision layers compute in float32 on CPU and as stored elsewhere."""
    attached = getattr(model, "crepe_layer_store", None)
    if attached is not None:
        return attached
    home = model_device(model)
    device = torch.device(device) if device is not None else home
    return InMemoryLayers(home, device, default_compute_dtype(device, next(model.parameters()).dtype))
