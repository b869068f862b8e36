"""Weight updates are registry rows: each built-in row keeps its mask and lowers the layer's output
error, and a new update is one function plus one row that the config, the steps and the model loop
then run."""

import pytest
import torch
from test_reconstruct import _error, _problem
from tiny_models import tiny_model, tiny_windows

from crepe.compose.steps import linear_steps
from crepe.config import PruneConfig, RepruneConfig
from crepe.methods import declare, registry
from crepe.methods.masks import is_valid_nm
from crepe.methods.params import Pattern
from crepe.methods.scorers import InputStats
from crepe.models.adapters import decoder_linears, weight_view
from crepe.prune.linear import needed_stats, plan_linear
from crepe.prune.model import prune_model

SETTINGS = [(Pattern(), 0.5), (Pattern(2, 4), 0.5)]


def _plan(cfg, w, x):
    stats = InputStats(sq_sum=x.pow(2).sum(0), hessian=x.t() @ x, tokens=x.shape[0])
    return plan_linear(w, stats, cfg, steps=linear_steps(cfg))


def _pruned(plan, w):
    return plan.weight if plan.weight is not None else w.masked_fill(plan.mask, 0)


def test_builtin_rows_and_each_methods_default_update():
    rows = registry.updates()
    assert registry.update_names() == ("none", "obs", "admm", "admm-grad", "alps", "sweep", "sweep-admm")
    assert {n: u.kind for n, u in rows.items()} == {"none": "none", "obs": "fixed-mask", "admm": "fixed-mask",
                                                   "admm-grad": "selects-mask", "alps": "selects-mask",
                                                   "sweep": "selects-mask", "sweep-admm": "selects-mask"}
    assert [n for n, u in rows.items() if u.keeps_mask] == ["none", "obs", "admm"]
    assert {n: u.needs for n, u in rows.items()} == {"none": frozenset(), **{n: {"hessian"} for n in list(rows)[1:]},
                                                     "admm-grad": {"hessian", "dense_shift"}}
    assert {n: u.methods for n, u in rows.items() if u.methods} == {"sweep": ("crepe",), "sweep-admm": ("crepe",)}
    assert {n: m.default_update for n, m in registry.methods().items() if m.default_update != "none"} == {
        "crepe": "admm-grad"}
    assert all(m.default_update in rows for m in registry.methods().values())
    with pytest.raises(ValueError, match="unknown update 'lstsq'; choose from none, obs, admm, admm-grad, alps, sweep, sweep-admm"):
        registry.get_update("lstsq")


def test_rows_are_validated():
    with pytest.raises(ValueError, match="either keeps the mask or chooses it, not both"):
        declare.Update("both", apply=lambda *a: a[0], select=lambda *a: a)
    with pytest.raises(ValueError, match="unknown statistics"):
        declare.Update("grad", apply=lambda *a: a[0], needs=frozenset({"grad"}))
    with pytest.raises(ValueError, match="unknown CrepeParams fields"):
        declare.Update("typo", select=lambda *a: a, unread=("act_pow",))
    with pytest.raises(ValueError, match="it needs no stand-in"):
        declare.Update("fixed", apply=lambda *a: a[0], reprune_stand_in="admm")


@pytest.mark.parametrize("name", [n for n in registry.update_names() if n != "none"])
@pytest.mark.parametrize("pattern,sparsity", SETTINGS)
def test_every_builtin_update_keeps_its_mask_and_lowers_the_output_error(name, pattern, sparsity):
    w, x = _problem()
    plain = _plan(PruneConfig(method="crepe", sparsity=sparsity, pattern=pattern, update="none"), w, x)
    plan = _plan(PruneConfig(method="crepe", sparsity=sparsity, pattern=pattern, update=name), w, x)
    new = plan.weight
    assert torch.equal(new == 0, plan.mask) and plan.mask.float().mean() == sparsity  # random weights: no kept 0
    if registry.get_update(name).keeps_mask:
        assert torch.equal(plan.mask, plain.mask)
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)
    assert _error(x, w, new) < _error(x, w, _pruned(plain, w))


@pytest.fixture
def row_scale_update():
    """A toy fixed-mask update, declared once by decorating its function and removed after the test:
    each row's kept weights times the scalar c_r that minimises ||(w_r - c_r k_r) X||^2 (c_r = 1 is
    the mask alone, so it never does worse)."""
    @declare.weight_update("toy", needs=("hessian",))
    def row_scale(weight, mask, stats, cfg):
        kept = weight.float().masked_fill(mask, 0)
        h = stats.hessian.float()
        c = ((weight.float() @ h) * kept).sum(1) / ((kept @ h) * kept).sum(1).clamp_min(1e-12)
        return kept * c.unsqueeze(1)

    yield row_scale
    declare._UPDATES.pop("toy")


@pytest.mark.parametrize("pattern,sparsity", SETTINGS)
def test_a_registered_update_runs_through_the_steps(row_scale_update, pattern, sparsity):
    w, x = _problem()
    cfg = PruneConfig(method="wanda", sparsity=sparsity, pattern=pattern, update="toy")
    assert cfg.resolved_update == "toy" and needed_stats(cfg, linear_steps(cfg)) == {"sq_sum", "hessian"}
    plain = _plan(PruneConfig(method="wanda", sparsity=sparsity, pattern=pattern), w, x)
    plan = _plan(cfg, w, x)
    assert torch.equal(plan.mask, plain.mask) and torch.equal(plan.weight == 0, plan.mask)
    if pattern.structured:
        assert is_valid_nm(plan.weight, pattern.n, pattern.m)
    assert _error(x, w, plan.weight) < _error(x, w, _pruned(plain, w))
    assert PruneConfig(method="wanda", update="toy", repruning=RepruneConfig()).resolved_update == "toy"


def _first_layer_error(update: str, pattern: Pattern) -> tuple[float, dict[str, torch.Tensor]]:
    """Prune the tiny model with wanda + ``update``: the output error of layer 0's down_proj on its
    calibration inputs, and every decoder linear's pruned weight by name."""
    model, captured = tiny_model(), {}
    down = decoder_linears(model)["layers.0.mlp.down_proj"]
    dense = weight_view(down).clone()

    def first_input(mod, inp, out) -> None:  # a hook that returned a value would replace the output
        captured.setdefault("x", inp[0].detach())

    handle = down.register_forward_hook(first_input)
    prune_model(model, tiny_windows(), PruneConfig(method="wanda", pattern=pattern, update=update), progress=False)
    handle.remove()
    x = captured["x"].reshape(-1, captured["x"].shape[-1])
    return _error(x, dense, weight_view(down)), {k: weight_view(m) for k, m in decoder_linears(model).items()}


@pytest.mark.parametrize("pattern", [Pattern(), Pattern(2, 4)])
def test_a_registered_update_prunes_a_model(row_scale_update, pattern):
    plain_error, plain = _first_layer_error("none", pattern)
    toy_error, toy = _first_layer_error("toy", pattern)
    assert toy_error < plain_error
    for name, weight in toy.items():
        assert (weight == 0).float().mean() == pytest.approx(0.5, abs=1e-3)
        if pattern.structured:
            assert is_valid_nm(weight, 2, 4)
        if name.startswith("layers.0."):  # same inputs as the mask-only prune: the same mask, kept
            assert torch.equal(weight == 0, plain[name] == 0) and not torch.equal(weight, plain[name])
