"""Proxies on random tensors: known values, invariances, and the layer average."""

import pytest
import torch

from crepe.config import PruneConfig
from crepe.methods.masks import select_mask
from crepe.methods.params import Pattern
from crepe.models.adapters import LinearTarget
from pho.objective import proxy_values
from pho.proxies import (
    LayerData,
    diag_error,
    get_proxy,
    gini,
    gini_pruned,
    gini_reference,
    reconstruction_error,
)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_gini_of_equal_values_is_zero_and_of_one_hot_is_n_minus_one_over_n():
    assert gini(torch.full((50,), 3.0)) == pytest.approx(0.0, abs=1e-12)
    one_hot = torch.zeros(40)
    one_hot[7] = 5.0
    assert gini(one_hot) == pytest.approx(39 / 40)
    assert gini(torch.tensor([])) == 0.0 and gini(torch.zeros(5)) == 0.0


def test_gini_is_scale_invariant_and_order_free():
    x = rand(200).abs()
    assert gini(x * 17.0) == pytest.approx(gini(x))
    assert gini(x.flip(0)) == pytest.approx(gini(x))
    assert 0 < gini(x) < 1


def test_reconstruction_error_is_zero_for_an_empty_mask_and_one_for_a_full_mask():
    w, x = rand(8, 16), rand(32, 16, seed=1)
    data = LayerData(x.pow(2).sum(0), x)
    empty, full = torch.zeros(8, 16, dtype=torch.bool), torch.ones(8, 16, dtype=torch.bool)
    assert reconstruction_error(w, w, empty, data) == 0.0
    assert reconstruction_error(w, w, full, data) == pytest.approx(1.0)


def test_reconstruction_error_matches_the_explicit_formula():
    w, x = rand(8, 16), rand(32, 16, seed=1)
    mask = rand(8, 16, seed=2) > 0
    expected = ((w - w * ~mask) @ x.t()).pow(2).sum() / (w @ x.t()).pow(2).sum()
    assert reconstruction_error(w, w, mask, LayerData(x.pow(2).sum(0), x)) == pytest.approx(float(expected), rel=1e-5)


def test_diag_error_equals_reconstruction_error_when_input_channels_are_orthogonal():
    w = rand(6, 10)
    x = torch.diag(torch.linspace(0.5, 3.0, 10))  # X^T X diagonal
    mask = rand(6, 10, seed=3) > 0.3
    data = LayerData(x.pow(2).sum(0), x)
    assert diag_error(w, w, mask, data) == pytest.approx(reconstruction_error(w, w, mask, data), rel=1e-6)


def test_gini_reference_ignores_the_configs_score_scale_but_gini_pruned_uses_it():
    w, x = rand(8, 16), rand(32, 16, seed=1)
    data = LayerData(x.pow(2).sum(0), x)
    mask = rand(8, 16, seed=4) > 0
    s1 = w.abs()
    s2 = w.abs() * torch.linspace(1, 100, 16)
    assert gini_reference(w, s1, mask, data) == gini_reference(w, s2, mask, data)
    assert gini_pruned(w, s1, mask, data) != pytest.approx(gini_pruned(w, s2, mask, data))


def test_recon_without_cached_inputs_and_unknown_proxy_raise_clear_errors():
    w = rand(4, 8)
    with pytest.raises(ValueError, match="cached layer inputs"):
        reconstruction_error(w, w, w > 0, LayerData(torch.ones(8)))
    with pytest.raises(ValueError, match="unknown proxy 'nope'"):
        get_proxy("nope")


def _linear(layer: int, name: str, weight: torch.Tensor, role: str = "q") -> LinearTarget:
    module = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    module.weight.data = weight
    return LinearTarget(layer, name, role, name.startswith("self_attn."), module)


def _layers():
    linears = {f"layers.{i}.self_attn.{p}_proj": _linear(i, f"self_attn.{p}_proj", rand(16, 32, seed=i * 7 + j), p)
               for i in range(2) for j, p in enumerate("qo")}
    data = {}
    for k, name in enumerate(linears):
        x = rand(24, 32, seed=100 + k)
        data[name] = LayerData(x.pow(2).sum(0), x)
    return linears, data


def test_proxy_values_average_over_linears_and_report_the_realised_sparsity():
    weights, data = _layers()
    cfg = PruneConfig(sparsity=0.5, update="none")  # per-linear proxies score masks
    res = proxy_values(weights, data, cfg, ["gini", "recon", "diag_error", "gini_ref"])
    assert res.realised_sparsity == pytest.approx(0.5)
    per_layer = []
    for name, linear in weights.items():
        from crepe.methods.registry import score
        from crepe.methods.scorers import InputStats
        w = linear.weight
        s = score("crepe", w, InputStats(sq_sum=data[name].sq_sum), cfg.crepe)
        per_layer.append(reconstruction_error(w, s, select_mask(s, 0.5, Pattern()), data[name]))
    assert res.values["recon"] == pytest.approx(sum(per_layer) / len(per_layer))
    nm = proxy_values(weights, data, PruneConfig(sparsity=0.5, pattern=Pattern(2, 4), update="none"), ["recon"])
    assert nm.realised_sparsity == pytest.approx(0.5)
    strided = proxy_values(weights, data, cfg, ["recon"], layer_stride=2)
    assert strided.values["recon"] == pytest.approx((per_layer[0] + per_layer[2]) / 2)


def test_higher_sparsity_means_larger_reconstruction_error():
    weights, data = _layers()
    errors = [proxy_values(weights, data, PruneConfig(sparsity=s, update="none"), ["recon"]).values["recon"] for s in (0.3, 0.5, 0.7)]
    assert errors[0] < errors[1] < errors[2]


def test_auto_proxy_is_the_best_supported_per_pattern_kind_and_names_are_checked():
    from pho.proxies import resolve_proxy

    assert resolve_proxy("auto", structured=False) == "e2e" and resolve_proxy("auto", structured=True) == "e2e_seq"
    assert resolve_proxy("diag_error", structured=True) == "diag_error"
    with pytest.raises(ValueError, match="unknown proxy 'nope'; choose from auto"):
        resolve_proxy("nope", structured=False)


def test_a_model_level_proxy_is_refused_by_the_per_linear_average():
    weights = {"layers.0.mlp.up_proj": _linear(0, "mlp.up_proj", rand(8, 16), "up")}
    data = {"layers.0.mlp.up_proj": LayerData(rand(16).abs())}
    with pytest.raises(ValueError, match="model-level proxy"):
        proxy_values(weights, data, PruneConfig(sparsity=0.5, update="none"), ["e2e"])
    assert get_proxy("e2e").scope == "model" and get_proxy("e2e").direction == "minimize"


def test_out_error_is_the_relative_output_error_through_the_hessian():
    from pho.proxies import output_error

    w, x = rand(8, 16), rand(32, 16, seed=1)
    mask = rand(8, 16, seed=2) > 0
    data = LayerData(x.pow(2).sum(0), x, x.t() @ x)
    # on the masked weight it is recon on every input row, not a subsample
    assert output_error(w, w * ~mask, data) == pytest.approx(reconstruction_error(w, w, mask, data), rel=1e-5)
    assert output_error(w, w, data) == 0.0 and output_error(w, torch.zeros_like(w), data) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="input Hessian"):
        output_error(w, w, LayerData(x.pow(2).sum(0), x))


def _layers_with_hessians():
    """_layers' linears with correlated inputs of 256 tokens each (a well-conditioned H = X^T X)."""
    linears, _ = _layers()
    data = {}
    for k, name in enumerate(linears):
        x = rand(256, 32, seed=200 + k) @ (torch.eye(32) + 0.3 * rand(32, 32, seed=300 + k))
        data[name] = LayerData(x.pow(2).sum(0), x, x.t() @ x)
    return linears, data


@pytest.mark.parametrize("update", ["obs", "sweep", "sweep-admm"])
def test_out_error_sees_the_update_and_mask_proxies_are_refused_under_one(update):
    weights, data = _layers_with_hessians()
    plain = proxy_values(weights, data, PruneConfig(sparsity=0.5, update="none"), ["out_error", "recon"])
    assert plain.values["out_error"] == pytest.approx(plain.values["recon"], rel=1e-4)  # x holds every row here
    updated = proxy_values(weights, data, PruneConfig(sparsity=0.5, update=update), ["out_error"])
    assert updated.realised_sparsity == pytest.approx(0.5)
    assert updated.values["out_error"] < plain.values["out_error"]  # the update lowers the output error
    with pytest.raises(ValueError, match="score masks"):
        proxy_values(weights, data, PruneConfig(sparsity=0.5, update=update), ["recon"])
