"""Running and storing a model pruned under channel permutations.

Selection in permuted column order leaves W [out, in] masked in place in the original order: the
model computes exactly what it computed before, but its N:M groups hold the columns ``perm``
points to. Two ways make the stored weight itself N:M valid (what 2:4 kernels need):

* physical: where the consumer's input channels are produced elementwise by other linears (an MLP:
  h = act(gate x) * (up x) feeding down, or act(fc1 x) feeding fc2), permuting the producers'
  output rows (and biases) by ``perm`` and the consumer's columns by the same ``perm`` is an exact
  symmetry; the folder still loads with plain ``from_pretrained``.
* gathered: any other linear becomes :class:`PermutedLinear`, y = W[:, perm] x[..., perm] + b.
  Saved folders keep the original-order weights (so plain ``from_pretrained`` gives the masked
  model) plus ``permutations.safetensors``; :func:`load_permuted` rebuilds the gathered form.

Attention outputs feeding o_proj are not permuted physically here: a valid reordering must be the
same within-head permutation for every query head sharing a KV head (GQA), which the free search
does not respect; o_proj is gathered.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from crepe.models.adapters import Adapter, LinearTarget, model_target, weight_view

log = logging.getLogger(__name__)
PERMUTATIONS_FILE = "permutations.safetensors"

class PermutedLinear(nn.Module):
    """y = x[..., perm] @ W_p^T + b with W_p = W[:, perm] [out, in] stored (N:M valid after a
    permuted N:M prune); ``perm`` [in] is a buffer, so it is saved with the module."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, perm: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight[:, perm].contiguous(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)
        self.register_buffer("perm", perm.long().clone())

    @classmethod
    def from_linear(cls, module: nn.Module, perm: torch.Tensor) -> PermutedLinear:
        return cls(weight_view(module), module.bias, perm.to(weight_view(module).device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.index_select(-1, self.perm), self.weight, self.bias)


def mlp_coupling(adapter: Adapter, linears: dict[str, nn.Module]) -> tuple[str, tuple[str, ...]] | None:
    """The (consumer, producers) coupling of a layer if its family has one and the layer holds it."""
    coupling = adapter.mlp_coupling
    if coupling is None or not all(name in linears for name in (coupling[0], *coupling[1])):
        return None
    return coupling


@torch.no_grad()
def permute_channels(consumer: nn.Module, producers: list[nn.Module], perm: torch.Tensor) -> None:
    """Reorder the hidden channels between producers and consumer in place: producer rows (and
    biases) and consumer columns by ``perm`` [hidden]. The composed function is unchanged."""
    for module in producers:
        w = weight_view(module)
        w.copy_(w[perm].clone())
        if module.bias is not None:
            module.bias.data.copy_(module.bias.data[perm].clone())
    w = weight_view(consumer)
    w.copy_(w[:, perm].clone())


def apply_layer_permutations(targets: dict[str, LinearTarget], linears: dict[str, nn.Module],
                             perms: dict[str, torch.Tensor], adapter: Adapter) -> set[str]:
    """Physically apply the permutation of a layer's MLP consumer, if it has one; returns the
    keys of the linears realised this way (no gather needed for them). targets/linears/perms:
    one layer's LinearTargets, modules and column permutations, by name inside the layer."""
    coupling = mlp_coupling(adapter, linears)
    if coupling is None or coupling[0] not in perms:
        return set()
    consumer, producers = coupling
    permute_channels(linears[consumer], [linears[p] for p in producers], perms[consumer])
    return {targets[consumer].key}


def gathered_permutations(model: nn.Module, perms: dict[str, torch.Tensor]) -> nn.Module:
    """Replace each linear named in ``perms`` (``layers.<i>.<name>``) by a :class:`PermutedLinear`."""
    target = model_target(model)
    unknown = sorted(set(perms) - set(target.linears))
    if unknown:
        raise ValueError(f"permutations name linears this model does not have, e.g. {unknown[0]!r}")
    for key, perm in perms.items():
        linear = target.linears[key]
        target.layers[linear.layer].set_submodule(linear.name, PermutedLinear.from_linear(linear.module, perm))
    return model


def save_permutations(folder: str | Path, perms: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().cpu().long().contiguous() for k, v in perms.items()}, str(Path(folder) / PERMUTATIONS_FILE))


def load_permuted(folder: str | Path, **kwargs) -> nn.Module:
    """Load a saved pruned folder; with ``permutations.safetensors``, swap the gathered linears in."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=False, **kwargs)
    path = Path(folder) / PERMUTATIONS_FILE
    if path.is_file():
        gathered_permutations(model, load_file(str(path)))
    return model.eval()
