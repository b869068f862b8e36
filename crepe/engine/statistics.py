"""Forward hooks that accumulate each linear's input statistics (:class:`~crepe.methods.scorers.InputStats`)
for the layer engine (:mod:`.layerwise`): squared sums, X^T X and sums per input tensor, computed once
when several linears read it; with the dense stream, the shift sum (Y_dense - Y)^T X = W (X_dense^T X -
X^T X) [out, in]; and per-expert statistics of routed experts from the model's own routing."""

from __future__ import annotations

import weakref
from typing import Callable

import torch
from torch import nn

from crepe.methods.scorers import InputStats
from crepe.models.adapters import ExpertMatrix, weight_view

_PARTS: dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = {
    "sq_sum": ("sq_sum", lambda x: x.pow(2).sum(0)), "hessian": ("hessian", lambda x: x.t() @ x),
    "sum": ("lin_sum", lambda x: x.sum(0))}
"""need -> (InputStats field, its part of one batch X [tokens, in])."""


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[..., d] -> [tokens, d] float32."""
    return x.detach().reshape(-1, x.shape[-1]).float()


def _input_parts(x: torch.Tensor, needs: frozenset[str], dense: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The statistics parts of one batch X [..., in], as float32 over X [tokens, in]; with ``dense``
    (the same tokens' inputs in the dense model, [tokens, in]; needs "hessian") also "cross":
    X^T X_dense - X^T X [in, in], once for every linear that reads X."""
    x = _flat(x)
    parts = {key: fn(x) for need, (key, fn) in _PARTS.items() if need in needs}
    if dense is not None:
        parts["cross"] = x.t() @ dense - parts["hessian"]
    return parts


def _accumulate(stats: InputStats, parts: dict[str, torch.Tensor], tokens: int) -> None:
    """Add one batch's parts to ``stats`` (never in place: several targets may hold one tensor)."""
    for key, part in parts.items():
        setattr(stats, key, part if getattr(stats, key) is None else getattr(stats, key) + part)
    stats.tokens += tokens


def _add(total: torch.Tensor | None, part: torch.Tensor) -> torch.Tensor:
    return part if total is None else total + part


class DenseGroup:
    """The linears that read one input tensor in the dense stream's pass of one batch (q/k/v, gate/up;
    a lone linear is a group of one). While the summed outputs are narrower than the input, each
    member keeps its dense outputs Y_dense [tokens, out]; from then on the group keeps the dense
    input X_dense [tokens, in] instead (for the shared X^T X_dense)."""

    def __init__(self, x: torch.Tensor):
        self.input = weakref.ref(x)
        self.width = x.shape[-1]
        self.out = 0
        self.dense_input: torch.Tensor | None = None
        self.outputs: dict[int, torch.Tensor] = {}

    @property
    def shares_cross(self) -> bool:
        return self.width <= self.out

    def add(self, member: int, x: torch.Tensor, y: torch.Tensor) -> None:
        self.out += y.shape[-1]
        if self.shares_cross:
            self.outputs.clear()
            if self.dense_input is None:
                self.dense_input = _flat(x)
        else:
            self.outputs[member] = _flat(y)


class StatsHook:
    """Forward hook accumulating InputStats of one linear's input X [..., in]. Hooks that share a
    ``memo`` compute the parts of an input tensor once when several linears read it (q/k/v, gate/up;
    the memo keeps a weak reference to the last input, so a freed tensor never matches).

    With the "dense_shift" need the hook works in two phases per batch: ``dense`` set, it joins the
    :class:`DenseGroup` of its input (the dense stream's pass); then, on the same batch's pruned-stream
    input X, it adds X^T X_dense (shared by the group) or (Y_dense - Y)^T X (its own) to the sums
    that :meth:`finish` turns into ``stats.dense_shift``."""

    def __init__(self, needs: frozenset[str], memo: dict | None = None):
        self.needs = needs
        self.stats = InputStats()
        self.memo = {} if memo is None else memo
        self.dense = False
        self.group: DenseGroup | None = None
        self.cross: torch.Tensor | None = None  # sum X^T X_dense - X^T X [in, in]
        self.shift: torch.Tensor | None = None  # sum (Y_dense - Y)^T X [out, in]
        self.dense_tokens = 0  # tokens of the batches that carried the dense stream

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0]
        if self.dense:
            group = self.memo.get("dense_group")
            if group is None or group.input() is not x:
                group = self.memo["dense_group"] = DenseGroup(x)
            group.add(id(self), x, output)
            self.group = group
            return
        group, self.group = self.group, None
        seen = self.memo.get("input")
        if seen is None or seen() is not x:  # linears reading one input read one dense input too
            tokens = x.numel() // x.shape[-1]
            self.memo.update(input=weakref.ref(x), tokens=tokens,
                             parts=_input_parts(x, self.needs, group.dense_input if group is not None else None))
        parts = dict(self.memo["parts"])
        cross = parts.pop("cross", None)
        if group is not None:
            self.dense_tokens += self.memo["tokens"]
            if cross is not None:
                self.cross = _add(self.cross, cross)
            else:
                self.shift = _add(self.shift, (group.outputs.pop(id(self)) - _flat(output)).t() @ _flat(x))
        _accumulate(self.stats, parts, self.memo["tokens"])

    def finish(self, module: nn.Module) -> InputStats:
        """The statistics, with ``dense_shift`` [out, in] = W sum (X_dense^T X - X^T X) where collected,
        scaled up to every token when only some batches carried the dense stream."""
        if self.cross is not None:
            self.shift = _add(self.shift, weight_view(module).float() @ self.cross.t())
            self.cross = None
        if self.shift is not None and self.dense_tokens < self.stats.tokens:
            self.shift = self.shift * (self.stats.tokens / self.dense_tokens)
        self.stats.dense_shift, self.shift = self.shift, None
        return self.stats


class ExpertStatsHook:
    """Forward pre-hook on a fused experts module: per-expert InputStats from the routed tokens.

    ``matrices``: name -> ExpertMatrix of this module; stats[name] accumulates, for gate/up, the
    routed hidden states X_e [t_e, H], and for down the expert's hidden act(X_e G_e^T) * (X_e U_e^T)
    [t_e, I], the input its down matrix sees in the model's own forward."""

    def __init__(self, needs: frozenset[str], matrices: dict[str, ExpertMatrix], gate_up: str):
        self.needs = needs
        self.gate_up = gate_up
        self.skip = False  # the dense stream's pass: routed experts get no "dense_shift" statistic
        self.stats = {name: InputStats() for name in matrices}
        self.by_expert: dict[int, list[tuple[str, ExpertMatrix]]] = {}
        for name, matrix in matrices.items():
            self.by_expert.setdefault(matrix.expert, []).append((name, matrix))

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self.skip:
            return
        hidden = args[0] if args else kwargs["hidden_states"]
        top_k = args[1] if len(args) > 1 else kwargs["top_k_index"]
        hidden = hidden.reshape(-1, hidden.shape[-1])
        for expert, members in self.by_expert.items():
            routed = (top_k == expert).any(dim=-1)
            count = int(routed.sum())
            if not count:
                continue
            x = hidden[routed].float()
            fused = getattr(module, self.gate_up).data[expert].float()  # [2I, H]
            gate, up = (x @ fused.t()).chunk(2, dim=-1)
            inputs = {self.gate_up: x, "down": module.act_fn(gate) * up}
            parts = {key: _input_parts(value, self.needs) for key, value in inputs.items()}
            for name, matrix in members:
                _accumulate(self.stats[name], parts[self.gate_up if matrix.param == self.gate_up else "down"], count)


def set_phase(hooks: dict[str, StatsHook], routed: ExpertStatsHook | None, dense: bool) -> None:
    """Switch the linears' hooks between keeping the dense stream's inputs and accumulating."""
    for hook in hooks.values():
        hook.dense = dense
    if routed is not None:
        routed.skip = dense
