"""Token channel selection (ToaSt TCS) for the FFN: pure scoring functions and the runtime module.

For post-GELU hidden units h [B, N, C] (token 0 = class token, P patch tokens after the prefix),
class-token attention a [B, N] (row 0 of the attention map, averaged over heads) and a random
sample S of max(1, floor(rho P)) patch positions, the score of unit c is

    per batch:  s_c    = w mean_b|h[b,0,c]| / (1+P) + mean_{b,j in S}(|h[b,j,c]| abar_j) P/(1+P)
    per image:  s_{bc} = w |h[b,0,c]| / (1+P)      + mean_{j in S}(|h[b,j,c]| a[b,j])  P/(1+P)

with abar_j = mean_b a[b,j]; the top k = floor(C (1-r)) units are kept. "batch" selection (the
reference) shares one channel set across the batch, so an image's output depends on its batch mates;
"image" selection does not (the patch sample S is one draw per forward, shared by the batch).
fc1-side selection (off by default) scores fc1's *input* (the LayerNorm output) the same way and
drops fc1 input columns; unlike the reference it leaves the residual stream untouched.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from crepe.vit.adapters import adapter_for, attention, mlp
from crepe.vit.config import TCSConfig, keep_count, per_block
from crepe.vit.heads import top_indices

logger = logging.getLogger(__name__)


def class_attention(attn_probs: torch.Tensor) -> torch.Tensor:
    """[B, H, N, N] attention probabilities -> [B, N] class-token row averaged over heads."""
    return attn_probs[:, :, 0, :].mean(dim=1)


def sample_patches(num_patches: int, ratio: float, generator: torch.Generator | None) -> torch.Tensor:
    """Indices [S] into the patch tokens, S = max(1, floor(ratio P)), drawn with replacement; all if S >= P."""
    s = max(1, int(num_patches * ratio))
    if s >= num_patches:
        return torch.arange(num_patches)
    return torch.randint(0, num_patches, (s,), generator=generator)


def tcs_scores(
    h: torch.Tensor,
    cls_attn: torch.Tensor | None,
    sample: torch.Tensor,
    prefix: int = 1,
    cls_weight: float = 2.0,
    per_image: bool = False,
) -> torch.Tensor:
    """Channel scores of ``h`` [B, N, C]: [C] (per batch) or [B, C] (per image); see module docstring.

    ``sample``: patch indices [S] (0 = first patch after the ``prefix`` tokens); ``cls_attn``: [B, N]
    or None for uniform patch weights.
    """
    n_patch = h.shape[1] - prefix
    pos = sample.to(h.device) + prefix
    cls_term = cls_weight * h[:, 0, :].abs()  # [B, C]
    patches = h[:, pos, :].abs()  # [B, S, C]
    a = cls_attn[:, pos] if cls_attn is not None else torch.ones(h.shape[0], len(pos), dtype=h.dtype)
    if per_image:
        patch_term = (patches * a[:, :, None]).mean(dim=1)
    else:
        cls_term = cls_term.mean(dim=0)
        patch_term = (patches * a.mean(dim=0)[None, :, None]).mean(dim=(0, 1))
    return cls_term / (1 + n_patch) + patch_term * (n_patch / (1 + n_patch))


def masked_linear(x: torch.Tensor, lin: nn.Linear, keep: torch.Tensor) -> torch.Tensor:
    """``lin`` applied to ``x`` [B, N, C] with input units outside ``keep`` ([k] or [B, k]) zeroed."""
    mask = torch.zeros(*keep.shape[:-1], x.shape[-1], dtype=x.dtype, device=x.device).scatter_(-1, keep, 1.0)
    return lin(x * (mask if keep.dim() == 1 else mask[:, None, :]))


def gathered_linear(x: torch.Tensor, lin: nn.Linear, keep: torch.Tensor) -> torch.Tensor:
    """``lin`` restricted to input columns ``keep``: ``F.linear(x[..., keep], W[:, keep], b)``.

    Per-image ``keep`` [B, k] gathers x to [B, N, k] and W to [B, k, out], then one ``baddbmm``.
    """
    if keep.dim() == 1:
        return F.linear(x.index_select(-1, keep), lin.weight.index_select(1, keep), lin.bias)
    xk = torch.gather(x, -1, keep[:, None, :].expand(-1, x.shape[1], -1))
    w = lin.weight.t()[keep]  # [B, k, out]
    if lin.bias is None:
        return torch.bmm(xk, w)
    return torch.baddbmm(lin.bias.expand(x.shape[0], 1, -1), xk, w)


class TCSMLP(nn.Module):
    """Drop-in for a ViT MLP (same ``fc1``/``fc2``/``activation_fn`` attribute names, so the same
    state-dict keys) that selects units at run time. ``cls_attn`` [B, N] is set by a hook on the
    block's attention before each forward."""

    def __init__(self, inner: nn.Module, fc1_ratio: float, fc2_ratio: float, cfg: TCSConfig, prefix: int,
                 generator: torch.Generator):
        super().__init__()
        self.fc1, self.fc2, self.activation_fn = inner.fc1, inner.fc2, inner.activation_fn
        self.fc1_ratio, self.fc2_ratio, self.cfg = fc1_ratio, fc2_ratio, cfg
        self.prefix, self.generator = prefix, generator
        self.cls_attn: torch.Tensor | None = None
        self.last_keep: dict[str, torch.Tensor] = {}

    def _select(self, x: torch.Tensor, ratio: float) -> torch.Tensor:
        if self.cls_attn is None:
            raise RuntimeError("TCS needs the block's attention probabilities: use eager attention")
        sample = sample_patches(x.shape[1] - self.prefix, self.cfg.sample_ratio, self.generator)
        scores = tcs_scores(x.detach(), self.cls_attn, sample, self.prefix, self.cfg.cls_weight,
                            per_image=self.cfg.selection == "image")
        return top_indices(scores, keep_count(x.shape[-1], ratio))

    def _apply(self, x: torch.Tensor, lin: nn.Linear, ratio: float, name: str) -> torch.Tensor:
        if ratio == 0.0:
            return lin(x)
        keep = self._select(x, ratio)
        self.last_keep[name] = keep
        return gathered_linear(x, lin, keep) if self.cfg.mode == "dense" else masked_linear(x, lin, keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.activation_fn(self._apply(x, self.fc1, self.fc1_ratio, "fc1"))
        return self._apply(h, self.fc2, self.fc2_ratio, "fc2")


class TCSHandle:
    """What :func:`install_tcs` did: the wrapped MLPs, the hooks, the generator. ``remove()`` undoes it."""

    def __init__(self, model: nn.Module, cfg: TCSConfig):
        self.model, self.cfg = model, cfg
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.modules: dict[int, TCSMLP] = {}
        self._originals: dict[int, nn.Module] = {}
        self._hooks: list = []

    def reseed(self, seed: int | None = None) -> None:
        """Restart the patch-sampling stream (from ``cfg.seed`` unless ``seed`` is given)."""
        self.generator.manual_seed(self.cfg.seed if seed is None else seed)

    def remove(self) -> None:
        layers = adapter_for(self.model).layers(self.model)
        for hook in self._hooks:
            hook.remove()
        for i, inner in self._originals.items():
            layers[i].mlp = inner
        self._hooks, self._originals, self.modules = [], {}, {}


def install_tcs(model: nn.Module, cfg: TCSConfig) -> TCSHandle:
    """Wrap every block with a non-zero ratio in :class:`TCSMLP` and hook its attention.

    Switches the model to eager attention (the only implementation that returns the attention map).
    """
    ad = adapter_for(model)
    layers = ad.layers(model)
    fc1 = per_block(cfg.fc1_ratios, len(layers), cfg.skip_blocks, "fc1_ratios")
    fc2 = per_block(cfg.fc2_ratios, len(layers), cfg.skip_blocks, "fc2_ratios")
    handle = TCSHandle(model, cfg)
    if not any(fc1 + fc2):
        return handle
    model.set_attn_implementation("eager")
    for i, layer in enumerate(layers):
        if fc1[i] == 0.0 and fc2[i] == 0.0:
            continue
        module = TCSMLP(mlp(layer), fc1[i], fc2[i], cfg, ad.num_prefix_tokens, handle.generator)
        handle._originals[i], layer.mlp, handle.modules[i] = layer.mlp, module, module

        def hook(_mod, _inp, out, module=module):
            module.cls_attn = None if out[1] is None else class_attention(out[1].detach())

        handle._hooks.append(attention(layer).register_forward_hook(hook))
    logger.info("TCS on blocks %s (%s, %s)", sorted(handle.modules), cfg.selection, cfg.mode)
    return handle
