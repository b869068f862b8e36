"""The method registry is the one place a method is declared: a new entry works everywhere, and the
per-linear path plans without touching the weight."""

import pytest
import torch
from tiny_models import tiny_model, tiny_windows

from crepe.compose.steps import linear_steps
from crepe.config import PermuteConfig, PruneConfig, RepruneConfig
from crepe.methods import declare, registry
from crepe.methods.params import Pattern
from crepe.methods.scorers import InputStats
from crepe.models.adapters import decoder_linears, weight_view
from crepe.prune.linear import apply_plan, needed_stats, plan_linear, prune_linear
from crepe.prune.model import prune_model


def test_builtin_entries_declare_statistics_groups_and_weight_updates():
    entries = registry.methods()
    assert list(entries) == ["magnitude", "wanda", "ri", "ria", "crepe", "sparsegpt", "admm-grad", "alps"]
    assert {n: e.needs for n, e in entries.items()} == {
        "magnitude": frozenset(), "wanda": {"sq_sum"}, "ri": frozenset(), "ria": {"sq_sum"}, "crepe": {"sq_sum"},
        "sparsegpt": {"hessian"}, "admm-grad": {"hessian"}, "alps": {"hessian"}}
    assert {n: PruneConfig(method=n).resolved_group for n in entries} == {
        "magnitude": "layer", "wanda": "row", "ri": "layer", "ria": "layer", "crepe": "layer", "sparsegpt": "block",
        "admm-grad": "block", "alps": "block"}
    assert [n for n, e in entries.items() if e.updates_weights] == ["sparsegpt", "admm-grad", "alps"]
    with pytest.raises(ValueError, match="sparsegpt selects its mask per block; --group does not apply"):
        PruneConfig(method="sparsegpt", group="row")
    assert needed_stats(PruneConfig(method="ri", repruning=RepruneConfig()),
                        linear_steps(PruneConfig(method="ri", repruning=RepruneConfig()))) == {"sum", "sq_sum"}


@pytest.fixture
def column_norm_method():
    """A method declared once, by decorating its score, and removed again after the test."""
    @declare.scoring_method(needs=("sq_sum",), group="row", name="colnorm")
    def colnorm(w, stats, params):
        return w.abs() * stats.col_norm.pow(2).unsqueeze(0)

    yield colnorm
    declare._METHODS.pop("colnorm")


def test_one_registered_score_is_a_method_for_the_config_the_engine_and_the_model_loop(column_norm_method):
    cfg = PruneConfig(method="colnorm", sparsity=0.5)
    assert cfg.resolved_group == "row" and needed_stats(cfg) == {"sq_sum"}
    model = tiny_model()
    summary = prune_model(model, tiny_windows(), cfg, progress=False)
    assert summary.realised_sparsity == pytest.approx(0.5) and summary.kept_score_fraction > 0.5
    assert all((weight_view(m) == 0).sum(1).eq(weight_view(m).shape[1] // 2).all() for m in decoder_linears(model).values())


def test_entries_are_validated():
    with pytest.raises(ValueError, match="exactly one of a score function and a prune hook"):
        declare.Method("empty")
    with pytest.raises(ValueError, match="unknown statistics"):
        declare.Method("bad", score=lambda w, s, p: w, needs=frozenset({"grad"}))
    with pytest.raises(ValueError, match="unknown method 'obc'; choose from magnitude"):
        registry.get_method("obc")


@pytest.mark.parametrize("cfg", [PruneConfig(method="ria", sparsity=0.5),
                                 PruneConfig(method="crepe", sparsity=0.5, pattern=Pattern(2, 4), permute=PermuteConfig(),
                                             update="none"),
                                 PruneConfig(method="sparsegpt", sparsity=0.5, pattern=Pattern(2, 4), permute=PermuteConfig()),
                                 PruneConfig(method="crepe", sparsity=0.5)])  # crepe's default update (alps)
def test_plan_leaves_the_weight_alone_and_applying_it_is_pruning(cfg):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(16, 32, generator=gen)
    x = torch.randn(64, 32, generator=gen)
    stats = InputStats(sq_sum=x.pow(2).sum(0), hessian=x.t() @ x, tokens=64)
    before = w.clone()
    plan = plan_linear(w, stats, cfg, steps=linear_steps(cfg))
    assert torch.equal(w, before) and plan.mask.float().mean() == 0.5
    direct = before.clone()
    result = prune_linear(direct, stats, cfg, steps=linear_steps(cfg))
    applied = apply_plan(w, plan)
    assert torch.equal(w, direct) and applied == result
    assert (plan.weight is not None) == (cfg.method_entry.updates_weights or cfg.resolved_update != "none")


def test_a_composed_config_without_its_steps_is_refused():
    cfg = PruneConfig(method="ria", sparsity=0.5, pattern=Pattern(2, 4), permute=PermuteConfig())
    with pytest.raises(ValueError, match="linear_steps"):
        plan_linear(torch.randn(4, 8), InputStats(sq_sum=torch.ones(8)), cfg)


def test_kept_score_fraction_is_the_kept_scores_over_all_scores():
    from crepe.prune.linear import kept_sum

    gen = torch.Generator().manual_seed(3)
    w, x = torch.randn(2100, 40, generator=gen), torch.randn(64, 40, generator=gen)  # > 2 blocks of 1024 rows
    stats = InputStats(sq_sum=x.pow(2).sum(0), tokens=64)
    cfg = PruneConfig(method="ria", sparsity=0.5)
    plan = plan_linear(w, stats, cfg)
    keep = ~plan.mask
    assert kept_sum(plan.scores, keep) == pytest.approx(float(plan.scores.double()[keep].sum()), rel=1e-5)
    result = apply_plan(w, plan)
    expected = float(plan.scores.double()[keep].sum() / plan.scores.double().sum())
    assert result.kept_score_fraction == pytest.approx(expected, rel=1e-5)
    assert result.zeros_after == int(plan.mask.sum()) and result.zeros_before == 0
