"""Architecture adapters: where a model's decoder layers and their linears live, and what each linear is.

One small record per family, chosen from ``config.model_type``; nothing else in the toolkit
looks at model names. Linears are discovered inside each layer (``nn.Linear`` and GPT-2's
``Conv1D``, whose weight is stored transposed as [in, out]). Each adapter names the projection
role of its linears (q, k, v, o, gate, up, down, or fused qkv / gate_up), which per-projection
CRePE ``overrides`` are keyed by.

Mixture-of-experts families (transformers 5) keep their routed experts fused in 3D parameters on
one experts module; the adapter's :class:`ExpertLayout` says where, and each expert's gate, up and
down matrix becomes its own target (an :class:`ExpertMatrix`, an [out, in] view of the fused
tensor). Routers and gates (``skip``) are never pruned; shared experts are ordinary linears.

:func:`model_target` builds, once per model, the :class:`ModelTarget` every model-level step
reads: its layers, their linears (name, key ``layers.<i>.<name>``, role, attention or not), and
one snapshot/restore of everything a pruning step can change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from crepe.methods.params import ROLES  # noqa: I001  (every role an adapter may assign: the override keys)

_LLAMA_ROLES = (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"), ("o_proj", "o"),
                ("gate_proj", "gate"), ("up_proj", "up"), ("down_proj", "down"))
_GATED_MLP = ("mlp.down_proj", ("mlp.gate_proj", "mlp.up_proj"))


@dataclass(frozen=True)
class ExpertLayout:
    """Routed experts fused as 3D parameters on the module ``module`` inside a layer: ``gate_up``
    [E, 2*I, H] (gate rows, then up rows) and ``down`` [E, H, I]; the module is called as
    ``experts(hidden [T, H], top_k_index [T, k], top_k_weights [T, k])`` and applies ``act_fn``.
    Expert e's matrices are named ``<module>.<e>.gate_proj`` / ``up_proj`` / ``down_proj``."""

    module: str = "mlp.experts"
    gate_up: str = "gate_up_proj"
    down: str = "down_proj"


@dataclass(frozen=True)
class ExpertMatrix:
    """One expert's matrix: rows ``rows`` = (start, stop) of expert ``expert`` in the fused 3D
    parameter ``param`` of ``experts`` (the experts module); ``view()`` is the [out, in] view."""

    experts: nn.Module = field(compare=False, repr=False)
    param: str
    expert: int
    rows: tuple[int, int]

    def view(self) -> torch.Tensor:
        """[out, in] view sharing storage with the fused parameter (read when asked: layers move)."""
        return getattr(self.experts, self.param).data[self.expert, self.rows[0]:self.rows[1]]


@dataclass(frozen=True)
class Adapter:
    """family: display name; model_types: config.model_type values; layers_path: dotted path of the
    decoder-layer ModuleList; roles: (name suffix, role) pairs, a linear whose qualified name inside
    a layer equals the suffix or ends in ``.suffix`` has that role (first match; unmatched linears,
    e.g. MoE routers, have none); attention: the attention block's module name inside a layer;
    mlp_coupling: (consumer, producers) of the MLP's elementwise hidden channels, e.g. down_proj
    fed by act(gate_proj x) * up_proj x, or None where they cannot be permuted physically (fused
    producers); bos_per_window: default for prepending BOS to every eval window."""

    family: str
    model_types: tuple[str, ...]
    layers_path: str
    roles: tuple[tuple[str, str], ...] = _LLAMA_ROLES
    attention: str = "self_attn"
    mlp_coupling: tuple[str, tuple[str, ...]] | None = None
    bos_per_window: bool = False
    experts: ExpertLayout | None = None
    skip: tuple[str, ...] = ()

    def layers(self, model: nn.Module) -> nn.ModuleList:
        module: nn.Module = model
        for part in self.layers_path.split("."):
            module = getattr(module, part)
        return module  # type: ignore[return-value]

    def linears(self, layer: nn.Module) -> dict[str, nn.Module | ExpertMatrix]:
        """Prunable linears of one decoder layer by qualified name inside the layer, then each routed
        expert's matrices (:meth:`expert_matrices`); routers and gates (``skip``) are left out."""
        found = {name: mod for name, mod in layer.named_modules()
                 if isinstance(mod, (nn.Linear, Conv1D)) and name not in self.skip}
        return {**found, **self.expert_matrices(layer)}

    def experts_module(self, layer: nn.Module) -> nn.Module | None:
        """The layer's fused experts module, None for a dense layer (or a family without experts)."""
        if self.experts is None:
            return None
        try:
            return layer.get_submodule(self.experts.module)
        except AttributeError:
            return None

    def expert_matrices(self, layer: nn.Module) -> dict[str, ExpertMatrix]:
        """``<module>.<e>.gate_proj`` / ``up_proj`` / ``down_proj`` -> that expert's [out, in] matrix."""
        experts = self.experts_module(layer)
        if experts is None:
            return {}
        layout = self.experts
        n, rows = getattr(experts, layout.gate_up).shape[:2]
        down_rows = getattr(experts, layout.down).shape[1]
        out = {}
        for e in range(n):
            out[f"{layout.module}.{e}.gate_proj"] = ExpertMatrix(experts, layout.gate_up, e, (0, rows // 2))
            out[f"{layout.module}.{e}.up_proj"] = ExpertMatrix(experts, layout.gate_up, e, (rows // 2, rows))
            out[f"{layout.module}.{e}.down_proj"] = ExpertMatrix(experts, layout.down, e, (0, down_rows))
        return out

    def is_skipped(self, name: str) -> bool:
        """True for a parameter or module ``name`` (inside a layer) of a router or gate (never pruned)."""
        return any(name == s or name.startswith(s + ".") for s in self.skip)

    def is_attention(self, name: str) -> bool:
        """True for a linear of the attention block (``name``: qualified name inside a layer)."""
        return name.startswith(self.attention + ".")

    def role(self, name: str) -> str | None:
        """The projection role of the linear ``name`` (qualified inside a layer), None if it has none."""
        for suffix, role in self.roles:
            if name == suffix or name.endswith("." + suffix):
                return role
        return None


ADAPTERS: tuple[Adapter, ...] = (
    Adapter("llama", ("llama",), "model.layers", mlp_coupling=_GATED_MLP),
    Adapter("mistral", ("mistral", "mixtral"), "model.layers", mlp_coupling=_GATED_MLP,
            roles=(*_LLAMA_ROLES, ("w1", "gate"), ("w3", "up"), ("w2", "down")),
            experts=ExpertLayout(), skip=("mlp.gate",)),
    Adapter("qwen", ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe"), "model.layers", mlp_coupling=_GATED_MLP,
            experts=ExpertLayout(), skip=("mlp.gate", "mlp.shared_expert_gate")),
    Adapter("gemma", ("gemma", "gemma2", "gemma3_text"), "model.layers", mlp_coupling=_GATED_MLP, bos_per_window=True),
    Adapter("gemma3", ("gemma3",), "model.language_model.layers", mlp_coupling=_GATED_MLP, bos_per_window=True),
    Adapter("phi3", ("phi3",), "model.layers",  # gate_up_proj is fused: o/down are gathered
            roles=(("qkv_proj", "qkv"), ("o_proj", "o"), ("gate_up_proj", "gate_up"), ("down_proj", "down"))),
    Adapter("opt", ("opt",), "model.decoder.layers", mlp_coupling=("fc2", ("fc1",)),
            roles=(("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"), ("out_proj", "o"), ("fc1", "up"), ("fc2", "down"))),
    Adapter("gpt2", ("gpt2",), "transformer.h", attention="attn", mlp_coupling=("mlp.c_proj", ("mlp.c_fc",)),
            roles=(("attn.c_attn", "qkv"), ("attn.c_proj", "o"), ("mlp.c_fc", "up"), ("mlp.c_proj", "down"))),
    Adapter("gpt_neox", ("gpt_neox",), "gpt_neox.layers", attention="attention",
            mlp_coupling=("mlp.dense_4h_to_h", ("mlp.dense_h_to_4h",)),
            roles=(("attention.query_key_value", "qkv"), ("attention.dense", "o"), ("mlp.dense_h_to_4h", "up"),
                   ("mlp.dense_4h_to_h", "down"))),
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


def weight_view(module: nn.Module | ExpertMatrix) -> torch.Tensor:
    """The module's weight (or the expert's matrix) as an [out, in] view that shares storage
    (in-place edits stick)."""
    if isinstance(module, ExpertMatrix):
        return module.view()
    if isinstance(module, Conv1D):
        return module.weight.data.t()
    return module.weight.data


def block_key(index: int) -> str:
    """The key of decoder layer ``index``: ``layers.<i>`` (allocation plans, reports)."""
    return f"layers.{index}"


@dataclass(frozen=True)
class LinearTarget:
    """One prunable linear: decoder layer index, qualified ``name`` inside the layer, projection
    ``role`` (None if the adapter gives it none), whether it is in the attention block, the module
    (or, for a routed expert's matrix, its :class:`ExpertMatrix`)."""

    layer: int
    name: str
    role: str | None
    in_attention: bool
    module: nn.Module | ExpertMatrix = field(compare=False, repr=False)

    @property
    def expert(self) -> bool:
        """True for a routed expert's matrix (its statistics come from the tokens routed to it)."""
        return isinstance(self.module, ExpertMatrix)

    @property
    def key(self) -> str:
        """``layers.<i>.<name>``: how reports, plans, caches and permutation files name the linear."""
        return f"{block_key(self.layer)}.{self.name}"

    @property
    def weight(self) -> torch.Tensor:
        """The current weight as an [out, in] view (read when asked: layers may move between devices)."""
        return weight_view(self.module)


@dataclass(frozen=True)
class ModelTarget:
    """A model's decoder layers and their linears, built once by :func:`model_target`.

    linears: every LinearTarget by key, in layer order; per_layer[i]: layer i's by name.
    """

    model_type: str
    adapter: Adapter
    layers: nn.ModuleList = field(repr=False)
    linears: dict[str, LinearTarget] = field(repr=False)
    per_layer: tuple[dict[str, LinearTarget], ...] = field(repr=False)

    @property
    def roles(self) -> tuple[str, ...]:
        """The projection roles this model has, in ROLES order."""
        present = {t.role for t in self.linears.values()}
        return tuple(r for r in ROLES if r in present)

    def check_roles(self, roles) -> None:
        """Refuse role names (e.g. override keys) this model has no projection for, naming its roles."""
        unknown = sorted(set(roles) - set(self.roles))
        if unknown:
            raise ValueError(f"{self.model_type} has no projection with role {', '.join(map(repr, unknown))}; "
                             f"its roles are {', '.join(self.roles)}")

    def blocks(self) -> dict[str, dict[str, int]]:
        """``layers.<i>`` -> {``layers.<i>.<name>``: parameter count of that linear}."""
        return {block_key(i): {t.key: t.weight.numel() for t in layer.values()} for i, layer in enumerate(self.per_layer)}

    def snapshot(self) -> dict[str, torch.Tensor]:
        """Copies of every parameter and buffer of the decoder layers: weights, biases (which
        permutation moves) and anything else a step may change; restore with :meth:`restore`."""
        return {k: v.detach().clone() for k, v in self.layers.state_dict().items()}

    @torch.no_grad()
    def restore(self, saved: dict[str, torch.Tensor]) -> None:
        """Copy a :meth:`snapshot` back in place (views of the weights stay valid)."""
        for k, v in self.layers.state_dict().items():
            v.copy_(saved[k])


def model_target(model: nn.Module) -> ModelTarget:
    """The model's decoder layers and linears with their keys and roles (unknown architecture: ValueError)."""
    adapter = get_adapter(model)
    layers = adapter.layers(model)
    per_layer = tuple(
        {name: LinearTarget(i, name, adapter.role(name), adapter.is_attention(name), mod)
         for name, mod in adapter.linears(layer).items()}
        for i, layer in enumerate(layers))
    linears = {t.key: t for layer in per_layer for t in layer.values()}
    return ModelTarget(model.config.model_type, adapter, layers, linears, per_layer)


def decoder_linears(model: nn.Module) -> dict[str, nn.Module]:
    """All prunable linears of all decoder layers, by ``layers.<i>.<name>`` (lm_head, embeddings excluded)."""
    return {key: t.module for key, t in model_target(model).linears.items()}


def bos_per_window(choice: str, model: nn.Module) -> bool:
    """Prepend BOS to every window? ``choice``: auto (the architecture's default, e.g. Gemma: yes) | yes | no."""
    if choice == "auto":
        return get_adapter(model).bos_per_window
    return choice == "yes"
