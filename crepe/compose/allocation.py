"""Non-uniform layerwise sparsity: a plain plan ``{"layers.<i>.<name>": sparsity}`` the engine
consumes (``prune_model(..., layer_sparsity=plan)``).

* OWL (Yin et al. 2024): per decoder block l, D_l = fraction of Wanda scores |W_ij| ||X_j|| (all
  linears of the block together) above M x their mean; keep ratios spread linearly over
  [1-S-λ, 1-S+λ] by D_l (more outliers -> less pruning). D_l comes from one statistics pass of the
  dense model through the sequential engine.
* AlphaPruning (Lu et al. 2024): per linear, the Hill estimate of the power-law exponent of the
  eigen-spectrum of W^T W, alpha = 1 + k / sum_{i<=k} ln(λ_i / λ_k) over the top k = n/2 eigenvalues,
  averaged per block; sparsity ratios linear in alpha over [1-ε, 1+ε], scaled to mean S (heavier tail, smaller
  alpha -> less pruning).
* file: a JSON plan (per linear or per block ``layers.<i>``; a report's ``per_layer_sparsity``).

Every plan is rebalanced so its parameter-weighted mean equals the target S with every layer in
[min, max] (:func:`rebalance`); under N:M it is quantised to multiples of 1/M (:func:`quantise`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from crepe.config import AllocationConfig
from crepe.engine.layerwise import iterate_layers, run_layerwise
from crepe.io.files import read_json
from crepe.methods.params import Pattern
from crepe.methods.scorers import InputStats
from crepe.models.adapters import block_key, model_target, weight_view

log = logging.getLogger(__name__)


def block_sizes(model: nn.Module) -> dict[str, dict[str, int]]:
    """``layers.<i>`` -> {``layers.<i>.<name>``: parameter count of that linear}."""
    return model_target(model).blocks()


def rebalance(values: torch.Tensor, weights: torch.Tensor, target: float, lo: float, hi: float) -> torch.Tensor:
    """clamp(values + t, lo, hi) with the shift t found by bisection so that the weighted mean
    sum(w * v) / sum(w) equals ``target``: values, weights [L] -> [L] float64."""
    if not lo <= target <= hi:
        raise ValueError(f"target sparsity {target} is outside the allocation bounds [{lo}, {hi}]")
    v, w = values.double(), weights.double() / weights.double().sum()
    low, high = lo - float(v.max()), hi - float(v.min())
    for _ in range(200):
        mid = (low + high) / 2
        if float((w * (v + mid).clamp(lo, hi)).sum()) < target:
            low = mid
        else:
            high = mid
    return (v + (low + high) / 2).clamp(lo, hi)


def quantise(values: torch.Tensor, weights: torch.Tensor, target: float, m: int) -> torch.Tensor:
    """Round each sparsity to k/M (1 <= k < M), then move single layers one step at a time, the
    largest rounding residue first, while that brings the weighted mean closer to ``target``."""
    v = values.double()
    w = weights.double() / weights.double().sum()
    q = (v * m).round().clamp(1, m - 1)
    residue = v * m - q
    for i in torch.argsort(residue.abs(), descending=True, stable=True).tolist():
        step = 1.0 if residue[i] > 0 else -1.0
        gap = float((w * q).sum() / m) - target
        if 1 <= q[i] + step <= m - 1 and abs(gap + float(w[i]) * step / m) < abs(gap):
            q[i] += step
    return q / m


def expand(block_values: dict[str, float], blocks: dict[str, dict[str, int]]) -> dict[str, float]:
    """Block-level sparsity -> the same value for every linear of the block."""
    return {key: float(block_values[block]) for block, members in blocks.items() for key in members}


def finish_block_plan(scores: dict[str, float], blocks: dict[str, dict[str, int]], ratios: torch.Tensor,
                      target: float, cfg: AllocationConfig, pattern: Pattern) -> dict[str, float]:
    """Rebalance (and quantise under N:M) block sparsities ``ratios`` [L], then expand per linear."""
    weights = torch.tensor([sum(blocks[b].values()) for b in scores], dtype=torch.float64)
    lo, hi = cfg.min_sparsity, cfg.max_sparsity
    if pattern.structured:
        lo, hi = max(lo, 1 / pattern.m), min(hi, (pattern.m - 1) / pattern.m)
    values = rebalance(ratios, weights, target, lo, hi)
    if pattern.structured:
        values = quantise(values, weights, target, pattern.m)
    return expand(dict(zip(scores, values.tolist())), blocks)


@torch.no_grad()
def outlier_ratios(model: nn.Module, windows: torch.Tensor, threshold: float, batch_size: int = 8,
                   device: torch.device | str | None = None) -> dict[str, float]:
    """OWL's D_l per block ``layers.<i>``: share of Wanda scores above threshold x their block mean,
    from one dense statistics pass of the engine."""
    ratios: dict[str, float] = {}

    def record(index: int, layer: nn.Module, linears: dict[str, nn.Module], stats: dict[str, InputStats]) -> bool:
        scores = torch.cat([(weight_view(mod).float().abs() * stats[name].col_norm.unsqueeze(0)).reshape(-1)
                            for name, mod in linears.items() if stats[name].tokens])  # routed experts: reached ones
        ratios[block_key(index)] = float((scores > threshold * scores.mean()).double().mean())
        return False

    run_layerwise(model, windows, {"sq_sum"}, record, batch_size=batch_size, device=device,
                  desc="OWL outlier ratios", progress=False)
    return ratios


def owl_plan(model: nn.Module, windows: torch.Tensor, target: float, cfg: AllocationConfig,
             pattern: Pattern = Pattern(), batch_size: int = 8, device: torch.device | str | None = None) -> dict[str, float]:
    """OWL sparsity per linear: block keep ratio 1 - S + λ (2 (D - min D) / (max D - min D) - 1)."""
    outliers = outlier_ratios(model, windows, cfg.owl_m, batch_size, device)
    d = torch.tensor(list(outliers.values()), dtype=torch.float64)
    span = float(d.max() - d.min())
    spread = (d - d.min()) / span * 2 - 1 if span > 0 else torch.zeros_like(d)
    log.info("OWL outlier ratios per block: %s", [round(x, 4) for x in d.tolist()])
    return finish_block_plan(outliers, block_sizes(model), target - cfg.owl_lambda * spread, target, cfg, pattern)


def hill_alpha(weight: torch.Tensor) -> float:
    """Hill estimate of the power-law tail exponent of eig(W^T W) over its top half (xmin at the median)."""
    eig = torch.linalg.svdvals(weight.double()).pow(2).sort(descending=True).values
    k = max(eig.numel() // 2, 2)
    tail = eig[:k]
    logs = (tail / tail[-1]).clamp_min(1e-300).log().sum()
    return float(1 + k / logs.clamp_min(1e-12))


def alpha_plan(model: nn.Module, target: float, cfg: AllocationConfig, pattern: Pattern = Pattern()) -> dict[str, float]:
    """AlphaPruning sparsity per linear: block-mean alpha mapped linearly onto [1-ε, 1+ε] x S."""
    linears = model_target(model).linears
    blocks = block_sizes(model)
    per_linear: dict[str, float] = {}
    for index, _ in iterate_layers(model, desc="AlphaPruning spectra"):  # one layer loaded at a time (streaming)
        per_linear.update({k: hill_alpha(t.weight) for k, t in linears.items() if t.layer == index})
    alphas = {b: sum(per_linear[k] for k in members) / len(members) for b, members in blocks.items()}
    a = torch.tensor(list(alphas.values()), dtype=torch.float64)
    span = float(a.max() - a.min())
    unit = (a - a.min()) / span if span > 0 else torch.full_like(a, 0.5)
    log.info("AlphaPruning block alphas: %s", [round(x, 3) for x in a.tolist()])
    ratios = (1 - cfg.alpha_epsilon) + 2 * cfg.alpha_epsilon * unit
    weights = torch.tensor([sum(members.values()) for members in blocks.values()], dtype=torch.float64)
    ratios = ratios * target * weights.sum() / (weights * ratios).sum()
    return finish_block_plan(alphas, blocks, ratios, target, cfg, pattern)


def read_plan(path: str | Path, model: nn.Module) -> dict[str, float]:
    """A JSON plan resolved to every decoder linear; keys ``layers.<i>.<name>`` or ``layers.<i>``
    (a block), optional ``default``; also a report with ``per_layer_sparsity`` or ``{"plan": ...}``."""
    data = read_json(path, "allocation plan")
    if isinstance(data, dict):
        data = data.get("per_layer_sparsity", data.get("plan", data))
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise ValueError(f"allocation plan {path} must map layer names to numbers")
    default = data.pop("default", None)
    blocks = block_sizes(model)
    known = set(blocks) | {k for members in blocks.values() for k in members}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"allocation plan {path} names unknown layers, e.g. {unknown[0]!r}")
    plan = {}
    for block, members in blocks.items():
        for key in members:
            value = data.get(key, data.get(block, default))
            if value is None:
                raise ValueError(f"allocation plan {path} gives no sparsity for {key} (add it or a 'default')")
            if not 0 <= value < 1:
                raise ValueError(f"allocation plan {path}: sparsity of {key} must be in [0, 1), got {value}")
            plan[key] = float(value)
    return plan


def weighted_mean(plan: dict[str, float], model: nn.Module) -> float:
    """Parameter-weighted mean sparsity of a plan over the model's decoder linears."""
    sizes = {k: n for members in block_sizes(model).values() for k, n in members.items()}
    return sum(plan[k] * sizes[k] for k in sizes) / sum(sizes.values())


def allocate(model: nn.Module, windows: torch.Tensor, target: float, cfg: AllocationConfig,
             pattern: Pattern = Pattern(), batch_size: int = 8,
             device: torch.device | str | None = None) -> dict[str, float] | None:
    """The per-linear plan ``cfg`` asks for (None for uniform)."""
    if cfg.method == "owl":
        return owl_plan(model, windows, target, cfg, pattern, batch_size, device)
    if cfg.method == "alpha":
        return alpha_plan(model, target, cfg, pattern)
    if cfg.method == "file":
        return read_plan(cfg.path, model)
    return None
