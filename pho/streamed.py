"""PHO trials on a model streamed from disk (``--offload disk``): never more than one decoder layer held.

The statistics pass runs through the engine's layer store, so it streams as it is. A trial cannot prune
the model in place and evaluate it afterwards (a streamed layer's weights are dropped on release), so
a streamed trial does both in ONE pass through :func:`crepe.engine.layerwise.run_layerwise`: each layer is read,
its linears pruned, the windows' hidden states propagated through the pruned layer, and the layer
released; the head then gives the NLL. ``e2e`` prunes with the cached statistics (as one-shot pruning
does), ``e2e_seq`` with the statistics the pass collects on the pruned inputs (as the sequential engine
does). In memory the same configs give the same values (tests/pho/test_streamed.py).
"""

from __future__ import annotations

import torch
from torch import nn

from crepe.compose.steps import linear_steps
from crepe.config import PruneConfig
from crepe.engine.layer_store import store_for
from crepe.engine.layerwise import run_layerwise, tail_inputs
from crepe.evaluation.perplexity import chunked_window_nll
from crepe.methods.scorers import InputStats
from crepe.models.adapters import model_target, weight_view
from crepe.prune.linear import dense_stream_dtype, needed_stats, prune_linear
from pho.objective import ProxyResult
from pho.proxies import LayerData


@torch.no_grad()
def streamed_trial(model: nn.Module, data: dict[str, LayerData], cfg: PruneConfig, windows: torch.Tensor,
                   sequential: bool, batch_size: int = 4) -> tuple[float, float]:
    """(mean next-token NLL of ``windows`` [n, seq] under the model pruned with ``cfg``, realised sparsity),
    pruning and propagating layer by layer in one pass; the model's stored weights are never changed."""
    target, steps = model_target(model), linear_steps(cfg)
    cached = {key: InputStats(sq_sum=d.sq_sum, hessian=d.hessian, tokens=1) for key, d in data.items()}
    counts = [0, 0]  # pruned weights, all weights

    def prune_layer(index: int, layer: nn.Module, linears: dict[str, nn.Module], stats: dict[str, InputStats]) -> bool:
        for name, module in linears.items():
            linear = target.per_layer[index][name]
            own = stats.get(name, InputStats()) if sequential else cached[linear.key]
            result = prune_linear(weight_view(module), own, cfg, role=linear.role, in_attention=linear.in_attention,
                                  steps=steps, name=linear.key)
            counts[0] += result.zeros_after
            counts[1] += result.shape[0] * result.shape[1]
        return True

    needs = needed_stats(cfg, steps) if sequential else ()
    store = store_for(model)
    final = run_layerwise(model, windows, needs, prune_layer, batch_size=batch_size, progress=False, keep_outputs=True,
                          store=store, dense_share=cfg.dense_share,
                          dense_dtype=dense_stream_dtype(cfg, frozenset(needs), store.device))
    head, softcap = model.get_output_embeddings(), getattr(model.config, "final_logit_softcapping", None)
    nll = [chunked_window_nll(head, hidden, batch[:, 1:], softcap=softcap, dtype=final.hidden[0].dtype)
           for hidden, batch in zip(tail_inputs(model, final, windows, batch_size), windows.split(batch_size))]
    return torch.cat(nll).mean().item(), counts[0] / max(counts[1], 1)


class StreamedProxy:
    """``e2e`` / ``e2e_seq`` on a streamed model: :func:`streamed_trial` on calibration ``windows`` [n, seq]."""

    def __init__(self, model: nn.Module, data: dict[str, LayerData], windows: torch.Tensor, sequential: bool,
                 batch_size: int = 4):
        if windows.ndim != 2 or windows.shape[0] < 1:
            raise ValueError(f"the e2e proxy needs calibration windows [n >= 1, seq], got {tuple(windows.shape)}")
        self.model, self.data, self.windows, self.sequential, self.batch_size = model, data, windows, sequential, batch_size
        self.name = "e2e_seq" if sequential else "e2e"

    def __call__(self, cfg: PruneConfig) -> ProxyResult:
        nll, realised = streamed_trial(self.model, self.data, cfg, self.windows, self.sequential, self.batch_size)
        return ProxyResult({self.name: nll}, realised)
