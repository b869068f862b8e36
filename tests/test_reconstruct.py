import dataclasses
import json

import pytest
import torch
from tiny_models import FAST_PRUNE_ARGS as FAST
from tiny_models import tiny_model, tiny_windows

from crepe.config import PruneConfig, RepruneConfig
from crepe.methods.admm import admm_update
from crepe.methods.gradual import gradual_admm, magnitude_on_scale
from crepe.methods.masks import is_valid_nm, nm_mask, unstructured_mask
from crepe.methods.obs import obs_update
from crepe.methods.params import CrepeParams, Pattern
from crepe.methods.registry import score
from crepe.methods.scorers import InputStats
from crepe.methods.sparsegpt import sparsegpt_prune
from crepe.methods.sweep import SweepForm, sweep_prune
from crepe.models.adapters import decoder_linears, weight_view
from crepe.prune.model import prune_model

PATTERNS = [(Pattern(), 0.5), (Pattern(), 0.7), (Pattern(2, 4), 0.5), (Pattern(4, 8), 0.5)]


def _problem(out=32, inp=64, tokens=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(inp, inp, generator=g) / inp**0.5
    x = torch.randn(tokens, inp, generator=g) @ (torch.eye(inp) + mix) * torch.rand(inp, generator=g) * 3
    return torch.randn(out, inp, generator=g), x


def _error(x, w, new):
    return float((x @ (w - new).t()).pow(2).sum())


def _mask(scorer, w, x, sparsity, pattern):
    stats = InputStats(sq_sum=x.pow(2).sum(0), tokens=x.shape[0])
    s = score(scorer, w, stats, CrepeParams())
    return nm_mask(s, pattern.n, pattern.m) if pattern.structured else unstructured_mask(s, sparsity, "layer")


@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_obs_with_sparsegpts_own_mask_reproduces_sparsegpt_exactly(pattern, sparsity):
    w, x = _problem()
    expected, mask = sparsegpt_prune(w, x.t() @ x, sparsity, pattern, blocksize=16)
    new = obs_update(w, x.t() @ x, mask, blocksize=16)
    assert torch.equal(new == 0, mask)
    torch.testing.assert_close(new, expected, rtol=1e-4, atol=1e-5)  # same sweep, reorganised: float rounding


@pytest.mark.parametrize("update", ["obs", "admm"])
@pytest.mark.parametrize("scorer", ["magnitude", "wanda", "ria", "crepe"])
@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_fixed_mask_updates_keep_the_mask_and_lower_the_output_error(update, scorer, pattern, sparsity):
    w, x = _problem()
    mask = _mask(scorer, w, x, sparsity, pattern)
    fn = obs_update if update == "obs" else admm_update
    new = fn(w, x.t() @ x, mask)
    assert torch.equal(new == 0, mask)  # random weights: no kept weight lands on exactly 0
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)
    assert _error(x, w, new) < _error(x, w, w.masked_fill(mask, 0))


def _exact_masked_least_squares(w, x, mask):
    """Per row: argmin ||X w - X w_hat|| over w_hat with w_hat[mask] = 0, by lstsq."""
    out = torch.zeros_like(w, dtype=torch.float64)
    xd = x.double()
    for i in range(w.shape[0]):
        keep = ~mask[i]
        sol = torch.linalg.lstsq(xd[:, keep], xd @ w[i].double().unsqueeze(1)).solution
        out[i, keep] = sol.squeeze(1)
    return out.float()


def test_admm_converges_to_the_exact_masked_least_squares():
    w, x = _problem(out=16, inp=48)
    mask = _mask("wanda", w, x, 0.6, Pattern())
    exact = _exact_masked_least_squares(w, x, mask)
    best = _error(x, w, exact)
    gaps = [_error(x, w, admm_update(w, x.t() @ x, mask, iterations=n, damp=0.0)) / best - 1 for n in (5, 30, 300)]
    assert gaps[0] > gaps[1] > gaps[2] >= -1e-4 and gaps[2] < 1e-3
    assert _error(x, w, admm_update(w, x.t() @ x, mask, iterations=30, damp=0.0)) <= _error(
        x, w, obs_update(w, x.t() @ x, mask, damp=0.0)) * 1.001


@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_sweep_hits_the_sparsity_and_pattern_and_beats_masking_alone(pattern, sparsity):
    w, x = _problem()
    new, mask = sweep_prune(w, x.t() @ x, sparsity, pattern, blocksize=16)
    assert torch.equal(new == 0, mask) and int(mask.sum()) == 4 * round(w.shape[0] * 16 * sparsity)  # per block of 16
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)
    ria_mask = _mask("ria", w, x, sparsity, pattern)
    assert _error(x, w, new) < _error(x, w, w.masked_fill(ria_mask, 0))


@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_sweep_admm_keeps_the_sweeps_mask_and_lowers_its_output_error(pattern, sparsity):
    """The default pipeline's second step (sweep_admm_linear): ADMM re-solves the kept
    weights of the sweep's mask, never changes that mask, and ends below the sweep's error."""
    from crepe.methods.sweep import sweep_admm_linear

    w, x = _problem()
    stats = InputStats(sq_sum=x.pow(2).sum(0), hessian=x.t() @ x, tokens=x.shape[0])
    swept, sweep_mask = sweep_prune(w, x.t() @ x, sparsity, pattern)
    cfg = PruneConfig(method="crepe", sparsity=sparsity, pattern=pattern, update="sweep-admm")
    new, mask, perm = sweep_admm_linear(w, stats, sparsity, pattern, cfg)
    assert perm is None and torch.equal(mask, sweep_mask) and torch.equal(new == 0, mask)
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)
    assert _error(x, w, new) < _error(x, w, swept)


@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_gradual_admm_hits_the_sparsity_and_pattern_and_beats_the_mask_alone(pattern, sparsity):
    w, x = _problem()
    new, mask = gradual_admm(w, x.t() @ x, magnitude_on_scale, sparsity, pattern)
    assert torch.equal(new == 0, mask) and int(mask.sum()) == round(w.numel() * sparsity)
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)
    assert _error(x, w, new) < _error(x, w, w.masked_fill(_mask("ria", w, x, sparsity, pattern), 0))


@pytest.mark.parametrize("form", [SweepForm(diag_power=2.0), SweepForm(row_scope="block"), SweepForm(act_power=0.5)])
def test_sweep_forms_and_the_neighbourhood_term_run(form):
    w, x = _problem()
    params = CrepeParams(gamma=0.5, kernel=3)
    new, mask = sweep_prune(w, x.t() @ x, 0.5, Pattern(2, 4), params, form, blocksize=16)
    assert is_valid_nm(new, 2, 4) and torch.isfinite(new).all()


def test_bad_inputs_are_one_clear_error():
    w, x = _problem()
    with pytest.raises(ValueError, match="mask shape"):
        obs_update(w, x.t() @ x, torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="multiple of 4"):
        sweep_prune(w[:, :62], x[:, :62].t() @ x[:, :62], 0.5, Pattern(2, 4))
    with pytest.raises(ValueError, match="row_scope"):
        SweepForm(row_scope="column")


@pytest.mark.parametrize("kwargs,message", [
    (dict(method="sparsegpt", update="obs"), "already updates"),
    (dict(method="ria", update="sweep"), "use --method crepe"),
    (dict(method="wanda", update="sweep-admm"), "use --method crepe"),
    (dict(update="sweep", repruning=RepruneConfig()), "dsnot refines a fixed mask"),
    (dict(update="lstsq"), "unknown update"),
])
def test_config_refuses_updates_that_make_no_sense(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PruneConfig(**kwargs)


def test_config_records_the_update_and_round_trips():
    cfg = PruneConfig(method="wanda", update="admm")
    d = cfg.to_dict()
    assert d["update"] == d["resolved_update"] == "admm"
    assert PruneConfig.from_dict(d) == cfg
    assert PruneConfig(method="sparsegpt").resolved_update == "none"


def test_crepe_defaults_to_admm_grad_and_falls_back_to_admm_under_dsnot():
    assert PruneConfig(method="crepe").resolved_update == "admm-grad"
    assert PruneConfig(method="crepe", update="none").resolved_update == "none"  # the paper's mask-only CRePE
    assert PruneConfig(method="ria").resolved_update == "none"
    cfg = PruneConfig(method="crepe", sparsity=0.6, repruning=RepruneConfig(update_threshold=0.0))
    assert cfg.resolved_update == "admm"  # dsnot refines a fixed mask, which the admm update keeps
    model = tiny_model()
    summary = prune_model(model, tiny_windows(), cfg, progress=False)
    assert summary.realised_sparsity == pytest.approx(0.6, abs=0.01)
    assert PruneConfig.from_dict(cfg.to_dict()).resolved_update == "admm"


@pytest.mark.parametrize("method,update", [(m, "obs") for m in ("magnitude", "wanda", "ria", "crepe")]
                         + [("wanda", "admm"), ("crepe", "admm"), ("crepe", "sweep"), ("crepe", "sweep-admm")])
@pytest.mark.parametrize("pattern", [Pattern(), Pattern(2, 4)])
def test_every_scorer_with_each_update_prunes_a_model_through_the_engine(method, update, pattern):
    model, windows = tiny_model(), tiny_windows()
    cfg = PruneConfig(method=method, sparsity=0.5, pattern=pattern, update=update)
    summary = prune_model(model, windows, cfg, progress=False)
    assert summary.realised_sparsity == pytest.approx(0.5, abs=0.01)
    for module in decoder_linears(model).values():
        w = weight_view(module)
        assert torch.isfinite(w).all()
        if pattern.structured:
            assert is_valid_nm(w, 2, 4)


def test_update_lowers_the_first_layers_output_error_in_the_model():
    windows = tiny_windows()
    errors = {}
    for update in ("none", "obs", "admm"):
        model = tiny_model()
        dense = {k: weight_view(m).clone() for k, m in decoder_linears(model).items()}
        captured = {}
        layer0 = decoder_linears(model)["layers.0.mlp.down_proj"]
        handle = layer0.register_forward_hook(lambda mod, inp, out: None if "x" in captured else
                                              captured.update(x=inp[0].detach()))
        prune_model(model, windows, PruneConfig(method="wanda", update=update), progress=False)
        handle.remove()
        x = captured["x"].reshape(-1, captured["x"].shape[-1])
        errors[update] = _error(x, dense["layers.0.mlp.down_proj"], weight_view(layer0))
    assert errors["admm"] < errors["none"] and errors["obs"] < errors["none"]


def test_cli_update_flag_is_in_the_report(tiny_folder, tiny_corpus, tmp_path, cli):
    report = tmp_path / "r.json"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST,
            "--pattern", "2:4", "--update", "sweep", "--report", str(report)]
    assert cli("crepe.prune", argv) == 0
    config = json.loads(report.read_text())["config"]
    assert config["update"] == config["resolved_update"] == "sweep"


@pytest.mark.parametrize("update", ["sweep", "sweep-admm"])
def test_read_params_equal_means_the_sweep_prunes_identically(update):
    """Configs that differ only in fields the sweep never reads share read_params and prune bit for bit alike;
    a field it reads (alpha) changes both."""
    from crepe.config import read_params
    from crepe.methods.registry import get_update

    w, x = _problem(inp=64)
    stats = InputStats(sq_sum=x.pow(2).sum(0), hessian=x.t() @ x, tokens=x.shape[0])
    ria = PruneConfig(pattern=Pattern(2, 4), update=update, crepe=CrepeParams(act_power=0.5, kernel=3))
    twin = PruneConfig(pattern=Pattern(2, 4), update=update, crepe=CrepeParams(act_power=1.3, kernel=9,
                                                                                 term_scale="mean"))
    other = PruneConfig(pattern=Pattern(2, 4), update=update, crepe=CrepeParams(alpha=0.4))
    runs = [get_update(update).select(w, stats, 0.5, Pattern(2, 4), cfg)[:2] for cfg in (ria, twin, other)]
    assert read_params(ria) == read_params(twin) != read_params(other)
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][1], runs[2][1])


def test_read_params_keeps_what_the_mask_permutation_and_neighbourhood_read():
    from crepe.config import PermuteConfig, read_params

    low, high = CrepeParams(act_power=0.5), CrepeParams(act_power=1.0)
    for kwargs in ({"update": "none"}, {"update": "sweep-admm", "pattern": Pattern(2, 4), "permute": PermuteConfig()}):
        cfg = PruneConfig(crepe=low, **kwargs)
        assert read_params(cfg) != read_params(PruneConfig(crepe=high, **kwargs))  # the mask score reads act_power
    on = PruneConfig(update="none", crepe=CrepeParams(gamma=0.1, kernel=3))
    assert read_params(on) != read_params(PruneConfig(update="none", crepe=CrepeParams(gamma=0.1, kernel=5)))
    assert read_params(PruneConfig(method="ria", crepe=low)) == CrepeParams()  # another method reads none
    off = PruneConfig(update="none", crepe=CrepeParams(kernel=3))
    assert read_params(off) == read_params(PruneConfig(update="none", crepe=CrepeParams(kernel=5)))


@pytest.mark.parametrize("pattern", [Pattern(), Pattern(2, 4)])
def test_admm_grad_reads_no_crepe_parameter_without_permutation(pattern):
    """crepe's default update chooses its mask from the weights: configs that differ in every CRePE field
    share read_params and prune bit for bit alike; under channel permutation the score orders the
    columns, so there they differ."""
    from crepe.config import PermuteConfig, read_params
    from crepe.methods.registry import get_update

    w, x = _problem(inp=64)
    stats = InputStats(sq_sum=x.pow(2).sum(0), hessian=x.t() @ x, tokens=x.shape[0])
    one = PruneConfig(pattern=pattern, crepe=CrepeParams(act_power=0.5, kernel=3))
    two = PruneConfig(pattern=pattern, crepe=CrepeParams(alpha=0.3, beta=2.0, gamma=0.2, act_power=1.3, kernel=9))
    assert one.resolved_update == "admm-grad" and read_params(one) == read_params(two)
    runs = [get_update("admm-grad").select(w, stats, 0.5, pattern, cfg)[:2] for cfg in (one, two)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    if pattern.structured:
        permuted = [dataclasses.replace(cfg, permute=PermuteConfig()) for cfg in (one, two)]
        assert read_params(permuted[0]) != read_params(permuted[1])
