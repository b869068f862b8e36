"""Apply coupled head pruning to a transformers ViT/DeiT: masked form, dense repack, save and load.

transformers 5 has no ``prune_heads``, so the surgery is ours. A repacked block has smaller
``q/k/v_proj`` (out = H'*k) and ``o_proj`` (in = H'*k); its attention module's ``head_dim`` and
``num_attention_heads`` follow, and ``scaling`` is chosen explicitly ("original" keeps
1/sqrt(d) so outputs equal the masked model's). The per-layer shapes go to
``config.pruning_config`` so :func:`load_pruned` can rebuild the model from the folder.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from crepe.vit.adapters import adapter_for, attention
from crepe.vit.config import HeadPruneConfig, keep_count
from crepe.vit.heads import coupled_scores, head_dim_masks, whole_head_masks

logger = logging.getLogger(__name__)

Masks = dict[int, tuple[torch.Tensor, torch.Tensor]]  # block -> (qk [H, d], vo [H, d]) bool, True = kept


def compute_head_masks(model: nn.Module, cfg: HeadPruneConfig) -> Masks:
    """Keep-masks for every pruned block (blocks in ``cfg.skip_blocks`` and sparsity 0 are absent)."""
    if cfg.sparsity == 0.0:
        return {}
    masks: Masks = {}
    for i, layer in enumerate(adapter_for(model).layers(model)):
        if i in cfg.skip_blocks:
            continue
        att = attention(layer)
        heads, d = att.num_attention_heads, att.head_dim
        qk, vo = coupled_scores(att.q_proj.weight, att.k_proj.weight, att.v_proj.weight,
                                att.o_proj.weight, heads, cfg.score)
        if cfg.mode == "dim":
            masks[i] = head_dim_masks(qk, vo, keep_count(d, cfg.sparsity))
        else:
            masks[i] = whole_head_masks(qk, vo, keep_count(heads, cfg.sparsity))
    return masks


@torch.no_grad()
def apply_head_masks(model: nn.Module, masks: Masks) -> None:
    """Masked form, in place: zero Q/K rows (and biases) outside ``qk``, V rows and O columns outside ``vo``."""
    layers = adapter_for(model).layers(model)
    for i, (qk, vo) in masks.items():
        att = attention(layers[i])
        for lin, m in ((att.q_proj, qk), (att.k_proj, qk), (att.v_proj, vo)):
            keep = m.reshape(-1).to(lin.weight.dtype)
            lin.weight.mul_(keep[:, None])
            if lin.bias is not None:
                lin.bias.mul_(keep)
        att.o_proj.weight.mul_(vo.reshape(-1).to(att.o_proj.weight.dtype)[None, :])


def _empty_linear(n_in: int, n_out: int, bias: bool, like: torch.Tensor) -> nn.Linear:
    """An uninitialised Linear (``skip_init``: no draw from the global RNG)."""
    return nn.utils.skip_init(nn.Linear, n_in, n_out, bias=bias, device=like.device, dtype=like.dtype)


def _sliced_linear(lin: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    """A new Linear holding ``lin``'s weight restricted to index tensors ``rows`` / ``cols``."""
    w = lin.weight.detach()
    b = lin.bias.detach() if lin.bias is not None else None
    if rows is not None:
        w, b = w[rows], (b[rows] if b is not None else None)
    if cols is not None:
        w = w[:, cols]
    new = _empty_linear(w.shape[1], w.shape[0], b is not None, w)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    return new


def _uniform_shape(qk: torch.Tensor, vo: torch.Tensor, block: int) -> tuple[torch.Tensor, int]:
    """Kept heads (bool [H]) and the common kept dim ``k``; ValueError if heads differ."""
    kept_heads = qk.any(-1) | vo.any(-1)
    counts = {int(c) for c in qk[kept_heads].sum(-1).tolist()} | {int(c) for c in vo[kept_heads].sum(-1).tolist()}
    if len(counts) != 1:
        raise ValueError(f"block {block}: dense repack needs one kept count for Q/K and V/O in every head, "
                         f"got {counts}")
    return kept_heads, counts.pop()


def repack_heads(model: nn.Module, masks: Masks, scale: str = "original") -> dict[int, dict]:
    """Dense repack, in place: replace each pruned block's projections by smaller dense ones.

    ``scale`` "original" keeps ``scaling = 1/sqrt(d)`` (same outputs as :func:`apply_head_masks`);
    "rescaled" uses ``1/sqrt(k)``. Returns and records the new per-layer shapes.
    """
    layers = adapter_for(model).layers(model)
    shapes: dict[int, dict] = {}
    for i, (qk, vo) in masks.items():
        att = attention(layers[i])
        kept_heads, k = _uniform_shape(qk, vo, i)
        qk_rows = (qk & kept_heads[:, None]).reshape(-1).nonzero().squeeze(1)
        vo_rows = (vo & kept_heads[:, None]).reshape(-1).nonzero().squeeze(1)
        att.q_proj = _sliced_linear(att.q_proj, rows=qk_rows)
        att.k_proj = _sliced_linear(att.k_proj, rows=qk_rows)
        att.v_proj = _sliced_linear(att.v_proj, rows=vo_rows)
        att.o_proj = _sliced_linear(att.o_proj, cols=vo_rows)
        att.scaling = att.head_dim**-0.5 if scale == "original" else k**-0.5
        att.head_dim, att.num_attention_heads = k, int(kept_heads.sum())
        shapes[i] = {"num_heads": att.num_attention_heads, "head_dim": k, "scaling": att.scaling}
    record = dict(getattr(model.config, "pruning_config", None) or {})
    layers_rec = dict(record.get("layers", {}))
    layers_rec.update({str(i): s for i, s in shapes.items()})
    record.update({"format": "repacked", "layers": layers_rec})
    model.config.pruning_config = record
    return shapes


def prune_heads(model: nn.Module, cfg: HeadPruneConfig, dense: bool = False) -> dict:
    """Score, select and apply head pruning (masked, or repacked when ``dense``); returns a report.

    The report gives per-block kept Q/K and V/O dims per head and the realised sparsity of the
    attention projections' rows.
    """
    masks = compute_head_masks(model, cfg)
    per_block = {}
    for i, (qk, vo) in masks.items():
        per_block[i] = {
            "qk_kept_per_head": qk.sum(-1).tolist(),
            "vo_kept_per_head": vo.sum(-1).tolist(),
            "realised_sparsity": 1.0 - (qk.sum() + vo.sum()).item() / (2 * qk.numel()),
        }
    if dense:
        repack_heads(model, masks, cfg.scale)
    else:
        apply_head_masks(model, masks)
    record = dict(getattr(model.config, "pruning_config", None) or {})
    record.update({"method": "toast-coupled-heads", "heads": asdict(cfg),
                   "format": "repacked" if dense else "masked"})
    model.config.pruning_config = record
    logger.info("head pruning %s: %d blocks, sparsity %.2f (%s)", cfg.mode, len(masks), cfg.sparsity, record["format"])
    return {"blocks": per_block, "format": record["format"]}


def save_pruned(model: nn.Module, folder: str | Path) -> None:
    """``save_pretrained`` (safetensors) with ``config.pruning_config`` describing repacked layers.

    Repacked models are saved with transformers 5's own parameter names
    (``save_original_format=False``) so :func:`load_pruned` can load them onto the rebuilt shapes.
    """
    record = getattr(model.config, "pruning_config", None) or {}
    model.save_pretrained(folder, save_original_format=record.get("format") != "repacked")


def load_pruned(folder: str | Path) -> nn.Module:
    """Load a dense or repacked ViT/DeiT folder: rebuild each repacked layer's shapes, then load weights."""
    import transformers
    from safetensors.torch import load_file

    config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=False)
    record = getattr(config, "pruning_config", None) or {}
    if record.get("format") != "repacked":
        model = transformers.AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=False)
        model.set_attn_implementation("eager")
        return model.eval()
    cls = getattr(transformers, config.architectures[0])
    with torch.random.fork_rng(devices=[]):
        model = cls(config)
    layers = adapter_for(model).layers(model)
    for i, shape in record["layers"].items():
        att = attention(layers[int(i)])
        h, k = shape["num_heads"], shape["head_dim"]
        c, w = att.q_proj.in_features, att.q_proj.weight
        bias = att.q_proj.bias is not None
        att.q_proj, att.k_proj, att.v_proj = (_empty_linear(c, h * k, bias, w) for _ in range(3))
        att.o_proj = _empty_linear(h * k, c, att.o_proj.bias is not None, w)
        att.head_dim, att.num_attention_heads, att.scaling = k, h, shape["scaling"]
    model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")), strict=True)
    model.set_attn_implementation("eager")
    return model.eval()
