"""The streamed layer store: a weightless model skeleton whose decoder layers are read from the
checkpoint's shards one at a time, and written to an output folder as they are released.

Only the embeddings, final norm and head (everything outside the decoder layers) stay resident.
Peak memory is therefore about one decoder layer in compute dtype plus the resident part plus the
calibration hidden states, whatever the model's size.

Mixture-of-experts checkpoints store each expert's matrices apart (``experts.<e>.gate_proj``, or
Mixtral's ``w1``/``w3``/``w2``) while the model holds them fused in 3D parameters; transformers'
conversion mapping says which; :func:`fused_keys` reads it, the store stacks the parts when it loads
a layer and splits them back under their checkpoint names when it writes one.
"""

from __future__ import annotations

import logging
import re
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


Fused = tuple[tuple[str, ...], ...]
"""A fused 3D parameter's checkpoint tensors: parts[part][expert] (parts concatenated along rows)."""


def _transforms(model: nn.Module) -> list:
    """transformers' conversion mapping for the model, refusing any conversion besides renaming and
    the MoE experts merge (stack experts along dim 0, then concatenate parts along rows)."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightRenaming

    transforms = get_model_conversion_mapping(model)
    for t in transforms:
        ops = [(type(o).__name__, getattr(o, "dim", None)) for o in getattr(t, "operations", [])]
        if not isinstance(t, WeightRenaming) and ops not in ([("MergeModulelist", 0)],
                                                             [("MergeModulelist", 0), ("Concatenate", 1)]):
            raise ValueError(f"{model.config.model_type} checkpoints are converted (not only renamed) when loaded; "
                             f"use --offload none for this architecture")
    return transforms


def _model_key(name: str, transforms: list, model_keys: set[str], prefix: str) -> tuple[str, int, int] | None:
    """(model key, part, expert) of checkpoint tensor ``name`` (part/expert -1 unless merged), or None."""
    from transformers.core_model_loading import WeightRenaming

    key, part, expert = name, -1, -1
    for t in transforms:
        if isinstance(t, WeightRenaming):
            key, _ = t.rename_source_key(key)
            continue
        for i, pattern in enumerate(t.source_patterns):
            found = re.search(re.escape(pattern).replace(r"\*", r"(\d+)"), key)
            if found:
                key, part, expert = key[:found.start()] + t.target_patterns[0] + key[found.end():], i, int(found[1])
                break
    if key not in model_keys and prefix and f"{prefix}.{key}" in model_keys:
        key = f"{prefix}.{key}"
    return (key, part, expert) if key in model_keys else None


def resolve_keys(model: nn.Module, checkpoint: Checkpoint) -> tuple[dict[str, str], dict[str, Fused]]:
    transforms = _transforms(model)
    model_keys = set(model.state_dict().keys())
    prefix = getattr(model, "base_model_prefix", "")
    names: dict[str, str] = {}
    grid: dict[str, dict[tuple[int, int], str]] = {}
    for name in checkpoint.weight_map:
        found = _model_key(name, transforms, model_keys, prefix)
        if found is None:
            continue
        key, part, expert = found
        if part < 0:
            names[key] = name
        else:
            grid.setdefault(key, {})[part, expert] = name
    fused = {}
    for key, cells in grid.items():
        parts, experts = max(p for p, _ in cells) + 1, max(e for _, e in cells) + 1
        if len(cells) != parts * experts:
            raise ValueError(f"the checkpoint holds {len(cells)} of the {parts * experts} expert tensors of {key}")
        fused[key] = tuple(tuple(cells[p, e] for e in range(experts)) for p in range(parts))
    return names, fused


def key_map(model: nn.Module, checkpoint: Checkpoint) -> dict[str, str]:
    """Model state-dict name -> checkpoint tensor name, with transformers' own key renamings for the
    model (e.g. GPT-NeoX's ``embed_out`` -> ``lm_head``) and checkpoints saved without the base prefix
    (GPT-2's ``h.0...``). Fused expert parameters are in :func:`fused_keys`."""
    return resolve_keys(model, checkpoint)[0]


def fused_keys(model: nn.Module, checkpoint: Checkpoint) -> dict[str, Fused]:
    """Model name of each fused 3D expert parameter -> its per-expert checkpoint tensors."""
    return resolve_keys(model, checkpoint)[1]


def stack_fused(parts: Fused, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """[E, rows, in]: expert e's parts concatenated along rows, experts stacked (the model's layout)."""
    return torch.stack([torch.cat([tensors[p[e]] for p in parts]) for e in range(len(parts[0]))])


def split_fused(parts: Fused, value: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inverse of :func:`stack_fused`: checkpoint name -> expert e's part (equal row blocks)."""
    chunks = [value[:, i * value.shape[1] // len(parts):(i + 1) * value.shape[1] // len(parts)] for i in range(len(parts))]
    return {name: chunks[i][e].contiguous() for i, p in enumerate(parts) for e, name in enumerate(p)}


def _is_parameter(layer: nn.Module, name: str) -> bool:
    owner, _, leaf = name.rpartition(".")
    return leaf in (layer.get_submodule(owner) if owner else layer)._parameters


class StreamedLayers:
    """Layer store over ``checkpoint`` for the skeleton ``model``; with ``writer``, released layers are
    written as shard ``index + 1`` (the resident tensors go into the last shard at the end)."""

    def __init__(self, model: nn.Module, checkpoint: Checkpoint, device: torch.device,
                 compute_dtype: torch.dtype | None, names: dict[str, str], fused: dict[str, Fused] | None = None):
        self.model, self.checkpoint, self.device = model, checkpoint, device
        self.compute_dtype = compute_dtype
        self.names = names
        self.fused = fused or {}
        self.layers_path = get_adapter(model).layers_path
        self.writer: ShardWriter | None = None
        self._dtypes: dict[str, torch.dtype] = {}
        self._rounded: dict[str, torch.Tensor] = {}  # settled parameters in storage dtype

    def _prefix(self, index: int) -> str:
        return f"{self.layers_path}.{index}."

    def load(self, index: int, layer: nn.Module) -> None:
        prefix = self._prefix(index)
        wanted = {k[len(prefix):]: v for k, v in self.names.items() if k.startswith(prefix)}
        merged = {k[len(prefix):]: v for k, v in self.fused.items() if k.startswith(prefix)}
        tensors = self.checkpoint.read([*wanted.values(), *(n for parts in merged.values() for p in parts for n in p)])
        tensors.update({local: stack_fused(parts, tensors) for local, parts in merged.items()})
        slots = {full: (module, name) for module, name, full, _ in named_parameter_slots(layer)}
        for local, ckpt_name in [*wanted.items(), *((local, local) for local in merged)]:
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
            if self.writer is not None and (f"{prefix}{full}" in self.names or f"{prefix}{full}" in self.fused):
                rounded = self._rounded.get(full)
                value = (rounded if rounded is not None else param.data).to("cpu", stored)
                if f"{prefix}{full}" in self.fused:
                    state.update(split_fused(self.fused[f"{prefix}{full}"], value))
                else:
                    state[self.names[f"{prefix}{full}"]] = value
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

