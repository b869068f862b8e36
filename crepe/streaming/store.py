"""The streamed layer store: a weightless model skeleton whose decoder layers are read from the
checkpoint's shards one at a time, and written to an output folder as they are released.

Only the embeddings, final norm and head (everything outside the decoder layers) stay resident.
Peak memory is therefore about one decoder layer in compute dtype plus the resident part plus the
calibration hidden states, whatever the model's size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from crepe.engine.layer_store import named_parameter_slots, round_to
from crepe.io.memory import release_freed_memory
from crepe.methods.masks import all_finite
from crepe.models.adapters import get_adapter
from crepe.streaming.checkpoint import Checkpoint
from crepe.streaming.writer import ShardWriter

log = logging.getLogger(__name__)


def key_map(model: nn.Module, checkpoint: Checkpoint) -> dict[str, str]:
    """Model state-dict name -> checkpoint tensor name, with transformers' own key renamings for the
    model (e.g. GPT-NeoX's ``embed_out`` -> ``lm_head``) and checkpoints saved without the base prefix
    (GPT-2's ``h.0...``). Checkpoints that need more than renaming (fused experts) cannot stream."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightRenaming

    transforms = get_model_conversion_mapping(model)
    if any(not isinstance(t, WeightRenaming) for t in transforms):
        raise ValueError(f"{model.config.model_type} checkpoints are converted (not only renamed) when loaded; "
                         f"use --offload none for this architecture")
    model_keys = set(model.state_dict().keys())
    prefix = getattr(model, "base_model_prefix", "")
    out = {}
    for name in checkpoint.weight_map:
        key = name
        for transform in transforms:
            key, _ = transform.rename_source_key(key)
        if key not in model_keys and prefix and f"{prefix}.{key}" in model_keys:
            key = f"{prefix}.{key}"
        if key in model_keys:
            out[key] = name
    return out


def _is_parameter(layer: nn.Module, name: str) -> bool:
    owner, _, leaf = name.rpartition(".")
    return leaf in (layer.get_submodule(owner) if owner else layer)._parameters


class StreamedLayers:
    """Layer store over ``checkpoint`` for the skeleton ``model``; with ``writer``, released layers are
    written as shard ``index + 1`` (the resident tensors go into the last shard at the end)."""

    def __init__(self, model: nn.Module, checkpoint: Checkpoint, device: torch.device,
                 compute_dtype: torch.dtype | None, names: dict[str, str]):
        self.model, self.checkpoint, self.device = model, checkpoint, device
        self.compute_dtype = compute_dtype
        self.names = names
        self.layers_path = get_adapter(model).layers_path
        self.writer: ShardWriter | None = None
        self._dtypes: dict[str, torch.dtype] = {}
        self._rounded: dict[str, torch.Tensor] = {}  # settled parameters in storage dtype

    def _prefix(self, index: int) -> str:
        return f"{self.layers_path}.{index}."

    def load(self, index: int, layer: nn.Module) -> None:
        prefix = self._prefix(index)
        wanted = {k[len(prefix):]: v for k, v in self.names.items() if k.startswith(prefix)}
        tensors = self.checkpoint.read(list(wanted.values()))
        slots = {full: (module, name) for module, name, full, _ in named_parameter_slots(layer)}
        for local, ckpt_name in wanted.items():
            value = tensors[ckpt_name]
            if value.is_floating_point() and not all_finite(value):
                raise ValueError(f"weights of {prefix}{local} contain NaN or Inf; refusing to prune a corrupt model")
            if local in slots:
                module, name = slots[local]
                self._dtypes[local] = value.dtype
                dtype = self.compute_dtype if value.is_floating_point() and self.compute_dtype else value.dtype
                module._parameters[name] = nn.Parameter(value.to(self.device, dtype), requires_grad=False)
            else:  # a persistent buffer
                owner, _, name = local.rpartition(".")
                module = layer.get_submodule(owner) if owner else layer
                module._buffers[name] = value.to(self.device)
        missing = [full for full, (module, name) in slots.items() if module._parameters[name].device.type == "meta"]
        if missing:
            raise ValueError(f"the checkpoint has no tensor for {prefix}{missing[0]} (and {len(missing) - 1} more)")
        for module in layer.modules():
            for name, buf in module._buffers.items():
                if buf is not None and buf.device != self.device:
                    module._buffers[name] = buf.to(self.device)

    def settle(self, index: int, layer: nn.Module) -> None:
        self._rounded = round_to(layer, self._dtypes)

    def release(self, index: int, layer: nn.Module) -> None:
        prefix = self._prefix(index)
        state = {}
        if self.writer is not None:  # persistent buffers first, then each parameter: cast, then drop it
            state = {self.names[f"{prefix}{k}"]: v.to("cpu") for k, v in layer.state_dict().items()
                     if f"{prefix}{k}" in self.names and not _is_parameter(layer, k)}
        for module, name, full, param in list(named_parameter_slots(layer)):
            stored = self._dtypes.get(full, param.dtype)
            if self.writer is not None and f"{prefix}{full}" in self.names:
                rounded = self._rounded.get(full)
                state[self.names[f"{prefix}{full}"]] = (rounded if rounded is not None else param.data).to("cpu", stored)
            module._parameters[name] = nn.Parameter(torch.empty(param.shape, dtype=stored, device="meta"),
                                                    requires_grad=False)
        if self.writer is not None:
            self.writer.write(index + 1, state)
        state.clear()
        self._dtypes.clear()
        self._rounded = {}
        release_freed_memory()

    def resident_state(self) -> dict[str, torch.Tensor]:
        """Checkpoint-named tensors outside the decoder layers, in stored dtype (tied copies once)."""
        out, seen = {}, set()
        for key, value in self.model.state_dict().items():
            if key.startswith(self.layers_path + ".") or key not in self.names or value.device.type == "meta":
                continue
            if value.data_ptr() in seen:
                continue
            seen.add(value.data_ptr())
            out[self.names[key]] = value
        return out

    def start_writing(self, target: str | Path) -> ShardWriter:
        layers = len(get_adapter(self.model).layers(self.model))
        self.writer = ShardWriter(target, layers + 1)
        return self.writer

