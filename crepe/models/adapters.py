"""Architecture adapters: where a model's decoder layers and their linears live.

One small record per family, chosen from ``config.model_type``; nothing else in the toolkit
looks at model names. Linears are discovered inside each layer (``nn.Linear`` and GPT-2's
``Conv1D``, whose weight is stored transposed as [in, out]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D


@dataclass(frozen=True)
class Adapter:
    """family: display name; model_types: config.model_type values; layers_path: dotted path of the
    decoder-layer ModuleList; attention: the attention block's module name inside a layer;
    mlp_coupling: (consumer, producers) of the MLP's elementwise hidden channels, e.g. down_proj
    fed by act(gate_proj x) * up_proj x, or None where they cannot be permuted physically (fused
    producers); bos_per_window: default for prepending BOS to every eval window."""

    family: str
    model_types: tuple[str, ...]
    layers_path: str
    attention: str = "self_attn"
    mlp_coupling: tuple[str, tuple[str, ...]] | None = None
    bos_per_window: bool = False

    def layers(self, model: nn.Module) -> nn.ModuleList:
        module: nn.Module = model
        for part in self.layers_path.split("."):
            module = getattr(module, part)
        return module  # type: ignore[return-value]

    def linears(self, layer: nn.Module) -> dict[str, nn.Module]:
        """Prunable linears of one decoder layer, by qualified name inside the layer."""
        return {name: mod for name, mod in layer.named_modules() if isinstance(mod, (nn.Linear, Conv1D))}

    def is_attention(self, name: str) -> bool:
        """True for a linear of the attention block (``name``: qualified name inside a layer)."""
        return name.startswith(self.attention + ".")


_GATED_MLP = ("mlp.down_proj", ("mlp.gate_proj", "mlp.up_proj"))


ADAPTERS: tuple[Adapter, ...] = (
    Adapter("llama", ("llama",), "model.layers", mlp_coupling=_GATED_MLP),
    Adapter("mistral", ("mistral", "mixtral"), "model.layers", mlp_coupling=_GATED_MLP),
    Adapter("qwen", ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe"), "model.layers", mlp_coupling=_GATED_MLP),
    Adapter("gemma", ("gemma", "gemma2", "gemma3_text"), "model.layers", mlp_coupling=_GATED_MLP, bos_per_window=True),
    Adapter("gemma3", ("gemma3",), "model.language_model.layers", mlp_coupling=_GATED_MLP, bos_per_window=True),
    Adapter("phi3", ("phi3",), "model.layers"),  # gate_up_proj is fused: o/down are gathered
    Adapter("opt", ("opt",), "model.decoder.layers", mlp_coupling=("fc2", ("fc1",))),
    Adapter("gpt2", ("gpt2",), "transformer.h", attention="attn", mlp_coupling=("mlp.c_proj", ("mlp.c_fc",))),
    Adapter("gpt_neox", ("gpt_neox",), "gpt_neox.layers", attention="attention",
            mlp_coupling=("mlp.dense_4h_to_h", ("mlp.dense_h_to_4h",))),
)


def supported_model_types() -> list[str]:
    return sorted(t for a in ADAPTERS for t in a.model_types)


def get_adapter(model_or_type: nn.Module | str) -> Adapter:
    """The adapter for a model (or a ``model_type`` string); unknown types raise ValueError."""
    model_type = model_or_type if isinstance(model_or_type, str) else model_or_type.config.model_type
    for adapter in ADAPTERS:
        if model_type in adapter.model_types:
            return adapter
    raise ValueError(
        f"unsupported architecture {model_type!r}; supported model types: {', '.join(supported_model_types())}"
    )


def weight_view(module: nn.Module) -> torch.Tensor:
    """The module's weight as an [out, in] view that shares storage (in-place edits stick)."""
    if isinstance(module, Conv1D):
        return module.weight.data.t()
    return module.weight.data


def decoder_linears(model: nn.Module, adapter: Adapter | None = None) -> dict[str, nn.Module]:
    """All prunable linears of all decoder layers, by ``layers.<i>.<name>`` (lm_head, embeddings excluded)."""
    adapter = adapter or get_adapter(model)
    return {
        f"layers.{i}.{name}": mod for i, layer in enumerate(adapter.layers(model)) for name, mod in adapter.linears(layer).items()
    }
