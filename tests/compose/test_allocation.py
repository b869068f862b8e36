"""Non-uniform allocation: OWL, AlphaPruning and JSON plans are plain per-linear dicts whose
parameter-weighted mean equals the target, inside the bounds, and the engine realises them."""

import json

import pytest
import torch
from tiny_models import tiny_model, tiny_windows

from crepe.compose.allocation import (
    allocate,
    alpha_plan,
    block_sizes,
    hill_alpha,
    owl_plan,
    quantise,
    read_plan,
    rebalance,
    weighted_mean,
)
from crepe.config import AllocationConfig, PruneConfig
from crepe.methods.masks import is_valid_nm
from crepe.methods.params import Pattern
from crepe.models.adapters import decoder_linears, weight_view
from crepe.prune.model import prune_model


@pytest.mark.parametrize("target", [0.3, 0.6, 0.8])
def test_rebalance_hits_the_weighted_target_inside_the_bounds(target):
    g = torch.Generator().manual_seed(0)
    values, weights = torch.rand(12, generator=g), torch.rand(12, generator=g).double() + 0.1
    out = rebalance(values, weights, target, 0.2, 0.85)
    assert float((out * weights).sum() / weights.sum()) == pytest.approx(target, abs=1e-9)
    assert out.min() >= 0.2 and out.max() <= 0.85


def test_rebalance_rejects_a_target_outside_the_bounds():
    with pytest.raises(ValueError, match="outside the allocation bounds"):
        rebalance(torch.rand(3), torch.ones(3), 0.9, 0.0, 0.8)


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
@pytest.mark.parametrize("kind", ["owl", "alpha"])
@pytest.mark.parametrize("target", [0.6, 0.7])
def test_owl_and_alpha_plans_have_the_target_weighted_mean_and_respect_bounds(model_type, kind, target):
    model = tiny_model(model_type)
    cfg = AllocationConfig(method=kind, owl_lambda=0.2, alpha_epsilon=0.5, min_sparsity=0.5, max_sparsity=0.75)
    plan = allocate(model, tiny_windows(), target, cfg)
    assert set(plan) == set(decoder_linears(model))
    assert weighted_mean(plan, model) == pytest.approx(target, abs=1e-9)
    assert min(plan.values()) >= 0.5 - 1e-12 and max(plan.values()) <= 0.75 + 1e-12
    assert len({round(v, 9) for v in plan.values()}) > 1  # really non-uniform
    for members in block_sizes(model).values():  # one value per block
        assert len({plan[k] for k in members}) == 1


def test_owl_gives_blocks_with_more_outliers_less_sparsity(monkeypatch):
    import crepe.compose.allocation as allocation

    model = tiny_model()
    monkeypatch.setattr(allocation, "outlier_ratios", lambda *a, **k: {"layers.0": 0.02, "layers.1": 0.01})
    plan = owl_plan(model, tiny_windows(), 0.7, AllocationConfig(method="owl"))
    assert plan["layers.0.self_attn.q_proj"] == pytest.approx(0.62) and plan["layers.1.mlp.up_proj"] == pytest.approx(0.78)


def test_hill_alpha_is_larger_for_a_lighter_tailed_spectrum():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(64, 64, generator=g)
    u, _, v = torch.linalg.svd(noise)
    heavy = u @ torch.diag(torch.arange(1, 65, dtype=torch.float32).pow(-2.0)) @ v
    assert hill_alpha(heavy) < hill_alpha(noise)


def test_nm_plans_are_quantised_to_multiples_of_one_over_m_near_the_target():
    model = tiny_model()
    plan = alpha_plan(model, 0.5, AllocationConfig(method="alpha", alpha_epsilon=0.5), Pattern(4, 8))
    assert all(abs(v * 8 - round(v * 8)) < 1e-9 and 1 <= round(v * 8) <= 7 for v in plan.values())
    assert weighted_mean(plan, model) == pytest.approx(0.5, abs=0.5 / 8)
    q = quantise(torch.tensor([0.49, 0.51, 0.62, 0.38]), torch.ones(4), 0.5, 4)
    assert float(q.mean()) == pytest.approx(0.5)


def test_engine_realises_a_non_uniform_nm_plan_with_valid_groups():
    model = tiny_model()
    cfg = PruneConfig(method="ria", sparsity=0.5, pattern=Pattern(4, 8),
                      allocation=AllocationConfig(method="alpha", alpha_epsilon=0.5))
    summary = prune_model(model, tiny_windows(), cfg, progress=False)
    for key, module in decoder_linears(model).items():
        n = round(summary.linears[key].sparsity * 8)
        assert is_valid_nm(weight_view(module), n, 8)


def test_json_plan_by_block_with_default_is_realised_exactly(tmp_path):
    model = tiny_model()
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"layers.0": 0.4, "layers.1.mlp.down_proj": 0.8, "default": 0.6}))
    cfg = PruneConfig(method="ria", sparsity=0.6, allocation=AllocationConfig.parse(str(path)))
    summary = prune_model(model, tiny_windows(), cfg, progress=False)
    per_layer = summary.per_layer()
    assert per_layer["layers.0.self_attn.q_proj"] == pytest.approx(0.4, abs=1e-3)
    assert per_layer["layers.1.mlp.down_proj"] == pytest.approx(0.8, abs=1e-3)
    assert per_layer["layers.1.mlp.up_proj"] == pytest.approx(0.6, abs=1e-3)
    (tmp_path / "again.json").write_text(json.dumps({"per_layer_sparsity": per_layer}))
    assert read_plan(tmp_path / "again.json", tiny_model()) == pytest.approx(per_layer)


@pytest.mark.parametrize("content,message", [
    ({"layers.9.mlp.up_proj": 0.5}, "unknown layers"),
    ({"layers.0": 0.5}, "gives no sparsity"),
    ({"default": 1.2}, r"must be in \[0, 1\)"),
    (["x"], "must map layer names"),
])
def test_bad_json_plans_are_rejected_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message):
        read_plan(path, tiny_model())


@pytest.mark.parametrize("text", ["uniformish", "plan.txt"])
def test_unknown_allocation_names_are_rejected(text):
    with pytest.raises(ValueError, match="unknown allocation"):
        AllocationConfig.parse(text)
