"""The one sequential layer engine: capture, then per decoder layer collect -> callback -> propagate.

1. Run the model on the calibration windows with its decoder layers replaced by recorders and
   keep the first layer's inputs together with *every* layer's call arguments (transformers 5
   passes position embeddings and masks per layer kind: Gemma's sliding and full attention layers
   get different ones).
2. For each decoder layer: move it to ``device``, hook its linears to accumulate the input
   statistics a method asks for, run it, hand layer + statistics to the callback (which prunes,
   or records), then re-run it so the next layer sees the outputs of the *modified* layer.
3. With the "dense_shift" need the engine also carries the *dense* model's hidden states: each
   layer runs first, unmodified, on them (its outputs are the next layer's dense inputs), and every
   linear W gets sum (Y_dense - Y)^T X = W (X_dense^T X - X^T X) over the same tokens (Y = X W^T, its
   outputs), for reconstruction toward the dense model's outputs. Linears that read one input
   (q/k/v, gate/up) share X^T X_dense [in, in] when that is the cheaper product (in <= their summed
   outputs), then each takes W (X_dense^T X - H); a wide linear alone on its input (down_proj) takes
   its output difference directly, an [out, in] product. This costs one more layer forward (none
   for the first layer, whose two streams are equal) and a second copy of the hidden states. With a
   ``dense_dtype`` below float32 (bfloat16) that forward runs under autocast to it; its outputs, the
   hidden states carried and every statistic stay float32.

Routed experts (fused 3D parameters) are hooked on their experts module: the hook reads the
routing the model's own forward passed in (``top_k_index`` [T, k]) and gives each expert's gate/up
matrices the statistics of the tokens routed to it, and its down matrix those of its own hidden
activations act(gate x) * up x on the same tokens. An expert no token reached has ``tokens == 0``.

Every method and every statistics consumer goes through :func:`run_layerwise`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from crepe.engine.layer_store import LayerStore, model_device, store_for
from crepe.engine.statistics import ExpertStatsHook, StatsHook, set_phase
from crepe.methods.scorers import InputStats
from crepe.models.adapters import Adapter, ExpertMatrix, get_adapter

log = logging.getLogger(__name__)

LayerCallback = Callable[[int, nn.Module, dict[str, nn.Module], dict[str, InputStats]], bool]
"""(layer index, layer, its linears by name, their input stats) -> True if the layer was modified."""


class _StopForward(Exception):
    """Raised by the capture hook to end the forward pass at the first decoder layer."""


@dataclass
class LayerInputs:
    """Inputs of the current decoder layer, one entry per calibration batch.

    hidden: [batch, seq, hidden] tensors; args/kwargs: the current layer's other call arguments, as
    the model's own forward passes them to it; calls[i]: layer i's (args, kwargs) per batch (layers of
    different kinds get their own masks and position embeddings: Gemma's sliding and full attention).
    """

    hidden: list[torch.Tensor] = field(default_factory=list)
    args: list[tuple[Any, ...]] = field(default_factory=list)
    kwargs: list[dict[str, Any]] = field(default_factory=list)
    dense: list[torch.Tensor] | None = None  # the same batches' inputs in the dense model (the "dense_shift" need)
    calls: list[tuple[list[tuple[Any, ...]], list[dict[str, Any]]]] = field(default_factory=list)

    def use_layer(self, index: int) -> None:
        """Point ``args``/``kwargs`` at layer ``index``'s call arguments."""
        self.args, self.kwargs = self.calls[index]


def _to(obj: Any, device: torch.device, dtype: torch.dtype | None = None, memo: dict | None = None) -> Any:
    """Move tensors (also inside tuples/lists/dicts) to ``device`` (floating ones to ``dtype`` when
    given); leave everything else alone. With ``memo`` (id -> moved), a tensor met again maps to the
    same moved tensor, so the layers that share a mask share one copy."""
    if isinstance(obj, torch.Tensor):
        if memo is not None and id(obj) in memo:
            return memo[id(obj)][1]
        moved = obj.to(device, dtype) if dtype is not None and obj.is_floating_point() else obj.to(device)
        if memo is not None:
            memo[id(obj)] = (obj, moved)  # the source is kept alive so that its id stays unique
        return moved
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, device, dtype, memo) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device, dtype, memo) for k, v in obj.items()}
    return obj


class _Recorder(nn.Module):
    """Stands in for decoder layer ``index`` during the capture: keeps the call's arguments (the first
    layer's hidden states too) and passes the hidden states on unchanged; the last one ends the pass."""

    def __init__(self, index: int, like: nn.Module, sink: list, last: bool):
        super().__init__()
        self.index, self.sink, self.last = index, sink, last
        self.attention_type = getattr(like, "attention_type", None)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if args:
            hidden, rest = args[0], args[1:]
        else:
            kwargs = dict(kwargs)
            hidden, rest = kwargs.pop("hidden_states"), ()
        self.sink.append((self.index, hidden, rest, kwargs))
        if self.last:
            raise _StopForward
        return hidden


@contextlib.contextmanager
def _layers_replaced(model: nn.Module, adapter: Adapter, stand_ins: nn.ModuleList) -> Iterator[None]:
    """Swap the model's decoder layers for ``stand_ins`` while inside, so that its own forward runs
    everything around the layers (embeddings, masks, position embeddings, the final norm)."""
    parent_path, _, attr = adapter.layers_path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    layers = getattr(parent, attr)
    setattr(parent, attr, stand_ins)
    try:
        yield
    finally:
        setattr(parent, attr, layers)


@torch.no_grad()
def capture_layer_inputs(model: nn.Module, adapter: Adapter, windows: torch.Tensor, batch_size: int,
                         device: torch.device, dtype: torch.dtype | None = None) -> LayerInputs:
    """Inputs of the first decoder layer and every layer's call arguments for ``windows`` [n, seq]
    token ids: the model's own forward runs with its decoder layers replaced by recorders, so each
    layer gets the masks and position embeddings the model gives it, at no layer's cost."""
    layers = adapter.layers(model)
    captured = LayerInputs(calls=[([], []) for _ in layers])
    sink: list = []
    recorders = nn.ModuleList([_Recorder(i, layer, sink, i == len(layers) - 1) for i, layer in enumerate(layers)])
    with _layers_replaced(model, adapter, recorders):
        for batch in windows.split(batch_size):
            sink.clear()
            try:
                model(input_ids=batch.to(model_device(model)), use_cache=False)
            except _StopForward:
                pass
            if [entry[0] for entry in sink] != list(range(len(layers))):
                raise RuntimeError(f"{type(model).__name__}'s forward did not call its {len(layers)} decoder layers "
                                   "once each, in order: the layer engine cannot capture their inputs")
            memo: dict = {}
            for index, hidden, rest, kwargs in sink:
                if index == 0:
                    captured.hidden.append(_to(hidden, device, dtype))
                captured.calls[index][0].append(_to(rest, device, dtype, memo))
                captured.calls[index][1].append(_to(kwargs, device, dtype, memo))
    sink.clear()
    captured.use_layer(0)
    return captured


def _layer_output(layer: nn.Module, hidden: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    out = layer(hidden, *args, **kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def run_layerwise(model: nn.Module, windows: torch.Tensor, needs: Iterable[str], callback: LayerCallback,
                  batch_size: int = 8, device: torch.device | str | None = None,
                  desc: str = "layers", progress: bool = True, store: LayerStore | None = None,
                  keep_outputs: bool = False, dense_share: float = 1.0,
                  dense_dtype: torch.dtype | None = None) -> LayerInputs | None:
    """Walk the decoder layers in order on calibration ``windows`` [n, seq] (see module doc).

    ``needs`` names the statistics to collect ({"sq_sum", "hessian", "sum", "dense_shift"}); with none,
    the collect pass is skipped. With "dense_shift", the dense stream runs on the first ``dense_share``
    of the batches (at least one) and the shift is scaled up to every token; ``dense_dtype`` below
    float32 runs its layer forward under autocast to it where the layer computes in float32. ``store`` (default :func:`crepe.engine.layer_store.store_for`) loads each layer onto its device before use and
    releases it after (back to memory, or written out and dropped when streamed). With
    ``keep_outputs`` the last layer's outputs are returned (the inputs of the model's final norm).
    """
    adapter = get_adapter(model)
    needs = frozenset(needs)
    store = store or store_for(model, device)
    was_training = model.training
    model.eval()
    inputs = capture_layer_inputs(model, adapter, windows, batch_size, store.device, store.compute_dtype)
    if "dense_shift" in needs:
        if not 0 < dense_share <= 1:
            raise ValueError(f"dense_share must be in (0, 1], got {dense_share}")
        needs |= {"hessian"}  # dense_shift = W (X_dense^T X - H)
        inputs.dense = inputs.hidden[:max(1, round(dense_share * len(inputs.hidden)))]
    layers = adapter.layers(model)
    try:
        for index, layer in enumerate(tqdm(layers, desc=desc, disable=not progress, leave=False)):
            store.load(index, layer)
            inputs.use_layer(index)
            try:
                inputs.hidden = _run_one_layer(index, layer, adapter, inputs, needs, callback, store, dense_dtype)
            finally:
                store.release(index, layer)
    finally:
        model.train(was_training)
    return inputs if keep_outputs else None


def _low_dtype(layer: nn.Module, dense_dtype: torch.dtype | None) -> torch.dtype | None:
    """``dense_dtype`` where it is below the float32 that ``layer`` computes in, else None."""
    if dense_dtype is None or dense_dtype == torch.float32:
        return None
    computes = next(layer.parameters(), torch.empty(())).dtype
    return dense_dtype if computes == torch.float32 else None


def _run_one_layer(index: int, layer: nn.Module, adapter: Adapter, inputs: LayerInputs, needs: frozenset[str],
                   callback: LayerCallback, store: LayerStore, dense_dtype: torch.dtype | None = None) -> list[torch.Tensor]:
    """Collect (if ``needs``), call back, re-run if modified: the layer's outputs, one per batch."""
    low = _low_dtype(layer, dense_dtype) if inputs.dense is not None else None
    dense_forward = (lambda: torch.autocast(store.device.type, dtype=low)) if low else contextlib.nullcontext
    linears = adapter.linears(layer)
    memo: dict = {}
    plain = {name: mod for name, mod in linears.items() if not isinstance(mod, ExpertMatrix)}
    hooks = {name: StatsHook(needs, memo) for name in plain}
    experts = adapter.experts_module(layer)
    routed = ExpertStatsHook(needs, {n: m for n, m in linears.items() if isinstance(m, ExpertMatrix)},
                              adapter.experts.gate_up) if experts is not None else None
    outputs: list[torch.Tensor] | None = None
    dense_outputs: list[torch.Tensor] = []
    if needs:
        handles = [mod.register_forward_hook(hooks[name]) for name, mod in plain.items()]
        if routed is not None:
            handles.append(experts.register_forward_pre_hook(routed, with_kwargs=True))
        try:
            outputs = []
            for b, (h, a, k) in enumerate(zip(inputs.hidden, inputs.args, inputs.kwargs)):
                carried = inputs.dense is not None and b < len(inputs.dense)
                same = carried and inputs.dense[b] is h  # the first layer: no shift yet
                if carried and not same:
                    set_phase(hooks, routed, dense=True)
                    with dense_forward():
                        out = _layer_output(layer, inputs.dense[b], a, k)
                    dense_outputs.append(out.to(h.dtype) if low else out)
                    set_phase(hooks, routed, dense=False)
                outputs.append(_layer_output(layer, h, a, k))
                if same:
                    dense_outputs.append(outputs[-1])
        finally:
            for handle in handles:
                handle.remove()
            memo.clear()
    stats = {name: hook.finish(plain[name]) for name, hook in hooks.items()}
    if routed is not None:
        stats.update(routed.stats)
    modified = callback(index, layer, linears, stats)
    if modified:
        store.settle(index, layer)
    if modified or outputs is None:
        outputs = [_layer_output(layer, h, a, k) for h, a, k in zip(inputs.hidden, inputs.args, inputs.kwargs)]
    if inputs.dense is not None:
        inputs.dense = dense_outputs
    return outputs


def iterate_layers(model: nn.Module, store: LayerStore | None = None, progress: bool = False,
                   desc: str = "layers", device: torch.device | str | None = None) -> Iterator[tuple[int, nn.Module]]:
    """Yield (index, decoder layer) with the layer loaded, for work that needs weights but no inputs
    (magnitude scores, spectra); changes made to a yielded layer are settled and kept (or written out)."""
    store = store or store_for(model, device)
    for index, layer in enumerate(tqdm(get_adapter(model).layers(model), desc=desc, disable=not progress, leave=False)):
        store.load(index, layer)
        try:
            yield index, layer
            store.settle(index, layer)
        finally:
            store.release(index, layer)


class _Replay(nn.Module):
    """Stands in for the decoder layers during the tail pass: returns the given hidden states."""

    def __init__(self, hidden: torch.Tensor, like: nn.Module):
        super().__init__()
        self.hidden = hidden
        self.attention_type = getattr(like, "attention_type", None)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.hidden


def tail_inputs(model: nn.Module, final: LayerInputs, windows: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """For each batch, the output head's input [b, seq, d]: ``final.hidden`` (the last decoder layer's
    outputs) through whatever the model applies after its layers (final norm, projections), by running
    the model's own forward with the layers replaced by a replay and stopping at the head. The
    replayed states are cast to the resident modules' dtype (layers may have computed in float32)."""
    adapter = get_adapter(model)
    last = adapter.layers(model)[-1]
    head = model.get_output_embeddings()
    seen: list[torch.Tensor] = []

    def grab(module: nn.Module, args: tuple) -> None:
        seen.append(args[0])
        raise _StopForward

    handle = head.register_forward_pre_hook(grab)
    try:
        for hidden, batch in zip(final.hidden, windows.split(batch_size)):
            resident = model.get_input_embeddings().weight.dtype  # final norm etc. run as stored
            with _layers_replaced(model, adapter, nn.ModuleList([_Replay(hidden.to(resident), last)])):
                try:
                    model(input_ids=batch.to(hidden.device), use_cache=False)
                except _StopForward:
                    pass
            yield seen.pop()
    finally:
        handle.remove()
