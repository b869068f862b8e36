"""DSnoT re-pruning: exact sparsity (per row, per N:M group), a non-increasing error estimate,
attention-only by default, and composition with any score-based method through the engine."""

import pytest
import torch
from tiny_models import TINY_CONFIGS, tiny_model, tiny_windows

from crepe.compose.dsnot import dsnot_refine, error_estimate
from crepe.config import PermuteConfig, PruneConfig, RepruneConfig
from crepe.methods.masks import is_valid_nm, nm_mask, unstructured_mask
from crepe.methods.params import Pattern
from crepe.models.adapters import (
    decoder_linears,
    get_adapter,
    model_target,
    weight_view,
)
from crepe.prune.cached import collect_input_stats, prune_from_stats
from crepe.prune.model import prune_model


def _problem(seed: int, rows: int = 32, cols: int = 64):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g)
    mean = torch.randn(cols, generator=g) + 0.5
    var = torch.rand(cols, generator=g) + 0.1
    return w, mean, var, w.abs() * (var + mean.pow(2)).sqrt()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("group", ["row", "layer"])
def test_unstructured_refinement_keeps_every_row_count_and_lowers_the_error(seed, group):
    w, mean, var, scores = _problem(seed)
    mask = unstructured_mask(scores, 0.6, group)
    refined = dsnot_refine(w, mask, scores, mean, var, RepruneConfig(update_threshold=0.0))
    assert torch.equal(refined.sum(1), mask.sum(1))
    before, after = error_estimate(w, mask, mean).abs(), error_estimate(w, refined, mean).abs()
    assert (after <= before + 1e-9).all() and after.sum() < before.sum()


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8)])
def test_nm_refinement_stays_nm_valid_with_exact_sparsity(n, m):
    w, mean, var, scores = _problem(1)
    mask = nm_mask(scores, n, m)
    refined = dsnot_refine(w, mask, scores, mean, var, RepruneConfig(update_threshold=0.0), m=m)
    assert is_valid_nm(w.masked_fill(refined, 0), n, m) and int(refined.sum()) == int(mask.sum())
    assert (error_estimate(w, refined, mean).abs() <= error_estimate(w, mask, mean).abs() + 1e-9).all()


def test_rows_below_the_threshold_are_left_alone():
    w, mean, var, scores = _problem(2)
    mask = unstructured_mask(scores, 0.5, "row")
    assert torch.equal(dsnot_refine(w, mask, scores, mean, var, RepruneConfig(update_threshold=1e9)), mask)


@pytest.mark.parametrize("model_type", sorted(TINY_CONFIGS))
def test_every_adapter_names_its_attention_and_mlp_coupling(model_type):
    adapter = get_adapter(model_type)
    model = tiny_model(model_type)
    linears = adapter.linears(adapter.layers(model)[0])
    attention = {name for name in linears if adapter.is_attention(name)}
    assert attention and attention != set(linears)  # some, not all, linears are attention
    assert not any(adapter.is_attention(name) for name in ("mlp.down_proj", "fc1", "mlp.c_fc"))
    if adapter.mlp_coupling is not None and adapter.experts_module(adapter.layers(model)[0]) is None:
        consumer, producers = adapter.mlp_coupling  # a MoE layer's experts have no physical coupling
        assert {consumer, *producers} <= set(linears)
        assert all(weight_view(linears[p]).shape[0] == weight_view(linears[consumer]).shape[1] for p in producers)


@pytest.mark.parametrize("method", ["magnitude", "wanda", "ria", "crepe"])
@pytest.mark.parametrize("scope", ["attention", "all"])
def test_repruning_changes_only_the_scoped_linears_and_keeps_every_count(method, scope):
    model = tiny_model()
    stats = collect_input_stats(model, tiny_windows(), frozenset({"sq_sum", "sum"}), progress=False)
    target = model_target(model)
    snapshot = target.snapshot()
    base = prune_from_stats(model, stats, PruneConfig(method=method, sparsity=0.6, update="none"))
    base_masks = {k: weight_view(mod) == 0 for k, mod in decoder_linears(model).items()}
    target.restore(snapshot)
    cfg = PruneConfig(method=method, sparsity=0.6, repruning=RepruneConfig(scope=scope, update_threshold=0.0),
                      update="none")  # the mask-only pipeline: these statistics hold no Hessian
    refined = prune_from_stats(model, stats, cfg)
    assert all(refined[k].zeros_after == base[k].zeros_after for k in base)
    changed = {k for k, mod in decoder_linears(model).items() if not torch.equal(weight_view(mod) == 0, base_masks[k])}
    assert changed  # the refinement did something
    assert all("self_attn" in k for k in changed) or scope == "all"
    assert any("mlp" in k for k in changed) or scope == "attention"


def test_engine_collects_the_input_mean_for_repruning_and_keeps_the_sparsity():
    cfg = PruneConfig(method="ria", sparsity=0.6)
    plain = prune_model(tiny_model(), tiny_windows(), cfg, progress=False)
    refined = prune_model(tiny_model(), tiny_windows(), PruneConfig(method="ria", sparsity=0.6, repruning=RepruneConfig()),
                          progress=False)
    assert refined.realised_sparsity == plain.realised_sparsity


def test_repruning_composes_with_permutation_and_keeps_nm_in_permuted_order():
    model = tiny_model()
    cfg = PruneConfig(method="ria", sparsity=0.5, pattern=Pattern(2, 4), permute=PermuteConfig(physical=False),
                      repruning=RepruneConfig(scope="all", update_threshold=0.0))
    summary = prune_model(model, tiny_windows(), cfg, progress=False)
    for key, module in decoder_linears(model).items():
        perm = summary.linears[key].permutation
        w = weight_view(module) if perm is None else weight_view(module)[:, perm]
        assert is_valid_nm(w, 2, 4) and int((w == 0).sum()) == w.numel() // 2


def test_repruning_refuses_sparsegpt():
    with pytest.raises(ValueError, match="sparsegpt"):
        PruneConfig(method="sparsegpt", repruning=RepruneConfig())
