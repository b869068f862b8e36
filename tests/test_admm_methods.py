"""ADMM-Grad and ALPS as methods (crepe/methods/gradual.py, alps.py): exact sparsity, valid N:M,
pruned entries exactly 0, the output error below masking alone, and the pieces (damping placement,
masked CG) against exact references. The check against the official code on real SmolLM2 linears is
``python -m benchmarks.tools.reference_check`` (results/reference_check.json)."""

import pytest
import torch
from test_reconstruct import (
    PATTERNS,
    _error,
    _exact_masked_least_squares,
    _mask,
    _problem,
)
from tiny_models import tiny_model, tiny_windows

from crepe.config import PruneConfig
from crepe.methods import gradual
from crepe.methods.admm import unit_hessian
from crepe.methods.alps import alps_solve, magnitude_projector, masked_cg
from crepe.methods.gradual import (
    ADMM_GRAD_DAMP_BY_TOKENS,
    admm_grad_damp_for,
    admm_grad_update_linear,
    damping,
    gradual_admm,
    magnitude_on_scale,
    ramped_mask,
    selecting_iterations,
)
from crepe.methods.masks import is_valid_nm
from crepe.methods.params import Pattern
from crepe.methods.registry import get_method
from crepe.methods.scorers import InputStats
from crepe.models.adapters import decoder_linears, weight_view
from crepe.prune.model import prune_model
from crepe.run.options import RunOptions


@pytest.mark.parametrize("method", ["admm-grad", "alps"])
@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_method_hits_the_sparsity_and_pattern_and_beats_its_mask_alone(method, pattern, sparsity):
    w, x = _problem()
    stats = InputStats(sq_sum=x.pow(2).sum(0), hessian=x.t() @ x, tokens=x.shape[0])
    cfg = PruneConfig(method=method, sparsity=sparsity, pattern=pattern)
    new, mask, perm = get_method(method).prune(w, stats, sparsity, pattern, cfg, None)
    assert perm is None and torch.equal(new == 0, mask)
    assert int(mask.sum()) == round(w.numel() * (pattern.n / pattern.m if pattern.structured else sparsity))
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)
    assert _error(x, w, new) < _error(x, w, w.masked_fill(mask, 0))  # the solve lowers the error of its own mask
    assert _error(x, w, new) < _error(x, w, w.masked_fill(_mask("wanda", w, x, sparsity, pattern), 0))


def test_alps_beats_admm_grad_and_admm_grad_beats_sparsity_by_magnitude():
    w, x = _problem(out=48, inp=96, tokens=1024, seed=3)
    h = x.t() @ x
    keep, share = magnitude_projector(0.7, Pattern())
    alps, _ = alps_solve(w, h, keep, round(share * w.numel()))
    grad, _ = gradual_admm(w, h, magnitude_on_scale, 0.7)
    assert _error(x, w, alps) < _error(x, w, grad) < _error(x, w, w.masked_fill(_mask("wanda", w, x, 0.7, Pattern()), 0))


def test_masked_cg_reaches_the_exact_masked_least_squares():
    w, x = _problem(out=8, inp=32)
    mask = _mask("wanda", w, x, 0.5, Pattern())
    h_n, scale = unit_hessian(x.t() @ x, 0.0)
    keep = (~mask).float()
    w_n = w * scale
    solved = masked_cg(h_n, w_n @ h_n, keep, w_n * keep, iterations=200, rtol=1e-7) / scale
    torch.testing.assert_close(solved, _exact_masked_least_squares(w, x, mask), rtol=1e-3, atol=1e-4)


def test_damping_placements():
    _, x = _problem(inp=16)
    h = x.t() @ x
    mean, d_mean = unit_hessian(h, 0.1, "mean")
    unit, d_unit = unit_hessian(h, 0.1, "unit")
    torch.testing.assert_close(mean.diagonal(), torch.ones(16))
    torch.testing.assert_close(unit.diagonal(), torch.full((16,), 1.1))
    torch.testing.assert_close(d_unit, h.diagonal().sqrt())
    assert bool((d_mean > d_unit).all())
    with pytest.raises(ValueError, match="damping placement"):
        unit_hessian(h, 0.1, "row")


def test_ramped_mask_prunes_a_growing_share_of_the_nm_mask():
    score = torch.rand(8, 16, generator=torch.Generator().manual_seed(0))
    counts = [int(ramped_mask(score, 0.5, Pattern(2, 4), "layer", s).sum()) for s in (0.25, 0.5, 1.0)]
    assert counts == [16, 32, 64]
    full = ramped_mask(score, 0.5, Pattern(2, 4), "layer", 1.0)
    assert bool((ramped_mask(score, 0.5, Pattern(2, 4), "layer", 0.5) <= full).all())  # a subset of the N:M mask
    assert int(ramped_mask(score, 0.7, Pattern(), "layer", 0.1).sum()) == round(0.7 * 128)  # final sparsity at once


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8)])
def test_ramped_mask_prunes_the_lowest_of_the_nm_mask_ties_by_position(n, m):
    """The ramp is the stable sort's lowest ``count`` among the N:M mask's entries, even on a tied grid."""
    g = torch.Generator().manual_seed(m)
    for score in (torch.rand(16, 32, generator=g), torch.randint(0, 4, (16, 32), generator=g).float(),
                  torch.rand(16, 32, generator=g, dtype=torch.float64)):  # float64: lifted by its own max, no NaN
        full = ramped_mask(score, 0.5, Pattern(n, m), "layer", 1.0)
        count = round(int(full.sum()) * 0.3)
        candidates = score.flatten()[full.flatten()]
        chosen = torch.sort(candidates, stable=True).indices[:count]
        expected = torch.zeros(int(full.sum()), dtype=torch.bool)
        expected[chosen] = True
        ramp = ramped_mask(score, 0.5, Pattern(n, m), "layer", 0.3)
        assert torch.equal(ramp.flatten()[full.flatten()], expected) and not bool(ramp[~full].any())


@pytest.mark.parametrize("method", ["admm-grad", "alps"])
@pytest.mark.parametrize("pattern", [Pattern(), Pattern(2, 4)])
def test_method_prunes_a_model_through_the_engine(method, pattern):
    model = tiny_model()
    summary = prune_model(model, tiny_windows(), PruneConfig(method=method, sparsity=0.5, pattern=pattern), progress=False)
    assert summary.realised_sparsity == pytest.approx(0.5, abs=0.01)
    for module in decoder_linears(model).values():
        w = weight_view(module)
        assert torch.isfinite(w).all()
        if pattern.structured:
            assert is_valid_nm(w, 2, 4)


@pytest.mark.parametrize("method", ["admm-grad", "alps"])
def test_method_refuses_channel_permutation(method):
    w, x = _problem()
    stats = InputStats(sq_sum=x.pow(2).sum(0), hessian=x.t() @ x)
    cfg = PruneConfig(method=method, sparsity=0.5, pattern=Pattern(2, 4))
    with pytest.raises(ValueError, match="permutation"):
        get_method(method).prune(w, stats, 0.5, Pattern(2, 4), cfg, lambda s, p: torch.arange(s.shape[1]))


@pytest.mark.parametrize("method", ["crepe", "wanda", "ria"])
@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_the_alps_update_hits_the_pattern_and_beats_the_methods_mask_without_update(method, pattern, sparsity):
    """crepe's default update (``--update alps``) for any scoring method: exact sparsity, valid N:M,
    zeros exactly where its mask is, and a lower output error than the method's own mask with no update."""
    from crepe.methods.alps import alps_update_linear

    w, x = _problem()
    stats = InputStats(sq_sum=x.pow(2).sum(0), hessian=x.t() @ x, tokens=x.shape[0])
    cfg = PruneConfig(method=method, sparsity=sparsity, pattern=pattern, update="alps")
    new, mask, perm = alps_update_linear(w, stats, sparsity, pattern, cfg)
    assert perm is None and torch.equal(new == 0, mask)
    assert int(mask.sum()) == round(w.numel() * sparsity)
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)
    assert _error(x, w, new) < _error(x, w, w.masked_fill(mask, 0))
    assert _error(x, w, new) < _error(x, w, w.masked_fill(_mask(method, w, x, sparsity, pattern), 0))


def test_more_alps_damping_pulls_the_solution_toward_the_dense_weights():
    """The damping is a ridge toward W: more of it, a higher calibration error but a smaller change."""
    w, x = _problem(out=24, inp=48, tokens=256, seed=5)
    keep, share = magnitude_projector(0.5, Pattern(2, 4))
    results = [alps_solve(w, x.t() @ x, keep, round(share * w.numel()), damp=d)[0] for d in (0.0, 0.2, 1.0)]
    errors = [_error(x, w, r) for r in results]
    moves = [float(((r - w) * (r != 0)).norm()) for r in results]
    assert errors[0] < errors[1] < errors[2] and moves[0] > moves[1] > moves[2]


def _pruned_weights(**fields) -> dict[str, torch.Tensor]:
    model = tiny_model()
    prune_model(model, tiny_windows(), PruneConfig(sparsity=0.5, pattern=Pattern(2, 4), **fields), progress=False)
    return {k: weight_view(m).clone() for k, m in decoder_linears(model).items()}


def test_the_admm_grad_update_at_published_settings_is_the_admm_grad_method():
    """crepe's default update with ADMM-Grad's damping (0.1), the usual target and float32 products prunes to exactly the
    weights of --method admm-grad: it re-chooses its mask from |W_n| from the first iteration, as the
    method does. crepe's own defaults (more damping, the target moved toward the dense model) differ."""
    published = _pruned_weights(method="crepe", admm_grad_damp=0.1, dense_target=0.0, admm_grad_iterations=20,
                                admm_grad_products="float32")
    method = _pruned_weights(method="admm-grad")
    assert PruneConfig(method="crepe").resolved_update == "admm-grad"
    assert all(torch.equal(published[k], w) for k, w in method.items())
    default = _pruned_weights(method="crepe")
    assert any(not torch.equal(default[k], w) for k, w in method.items())


def test_a_dense_target_of_an_unpruned_stream_changes_nothing():
    """With a zero shift (dense and pruned inputs equal), any dense_target gives the weights of the
    usual target."""
    w, x = _problem(seed=2)
    h = x.t() @ x
    usual = gradual_admm(w, h, magnitude_on_scale, 0.5, Pattern(2, 4))[0]
    shift = w @ (x.t() @ x - h)
    assert torch.allclose(gradual_admm(w, h, magnitude_on_scale, 0.5, Pattern(2, 4), dense_shift=shift,
                                       toward_dense=0.7)[0], usual, atol=1e-5)


@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_the_dense_target_fits_the_dense_outputs_better_keeping_mask_and_pattern(pattern, sparsity):
    """Inputs X drifted from the dense model's X_dense: moving the target toward W X_dense lowers
    ||X W_hat^T - X_dense W^T||, the more the further, and the mask stays valid."""
    w, x = _problem(seed=4)
    x_dense = x + 0.3 * torch.randn_like(x)
    h = x.t() @ x
    shift = (x_dense @ w.t() - x @ w.t()).t() @ x  # sum (Y_dense - Y)^T X
    errors = []
    for share in (0.0, 0.5, 1.0):
        new, mask = gradual_admm(w, h, magnitude_on_scale, sparsity, pattern, dense_shift=shift, toward_dense=share)
        assert torch.equal(new == 0, mask)
        if pattern.structured:
            assert is_valid_nm(new, pattern.n, pattern.m)
        errors.append(float((x @ new.t() - x_dense @ w.t()).pow(2).sum()))
    assert errors[0] > errors[1] > errors[2]


def test_the_method_statistics_are_collected_only_where_its_score_is_read():
    """admm-grad and the sweeps choose their masks without the method's score (but order columns by it
    under --permute); alps starts from the method's mask, so it reads it."""
    from crepe.compose.steps import linear_steps
    from crepe.config import PermuteConfig
    from crepe.prune.linear import needed_stats

    for fields, read in (({}, False), ({"update": "sweep-admm"}, False), ({"update": "alps"}, True),
                         ({"update": "none"}, True), ({"pattern": Pattern(2, 4), "permute": PermuteConfig()}, True)):
        cfg = PruneConfig(**fields)
        assert ("sq_sum" in needed_stats(cfg, linear_steps(cfg))) == read, fields


def test_the_dense_stream_is_collected_only_for_a_dense_target():
    from crepe.compose.steps import linear_steps
    from crepe.prune.linear import needed_stats

    for fields, dense in (({}, True), ({"dense_target": 0.0}, False), ({"update": "admm"}, False),
                          ({"method": "admm-grad"}, False)):
        cfg = PruneConfig(**fields)
        assert ("dense_shift" in needed_stats(cfg, linear_steps(cfg))) == dense, fields
    with pytest.raises(ValueError, match="dense target"):
        PruneConfig(dense_target=1.5)
    with pytest.raises(ValueError, match="admm-grad damp"):
        PruneConfig(admm_grad_damp=-1)
    for share in (0, 1.5):
        with pytest.raises(ValueError, match="dense share"):
            PruneConfig(dense_share=share)
    with pytest.raises(ValueError, match="admm-grad iterations"):
        PruneConfig(admm_grad_iterations=1)


@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_over_relaxed_admm_keeps_mask_and_pattern_and_converges_sooner(pattern, sparsity):
    """Over-relaxation (a = 1.6) keeps the pattern, lowers the error against the mask alone, and after
    the mask is fixed its few iterations leave less error than plain ADMM's; a = 1 is plain ADMM."""
    w, x = _problem(seed=5)
    h = x.t() @ x
    plain, plain_mask = gradual_admm(w, h, magnitude_on_scale, sparsity, pattern, iterations=12, select_iterations=9)
    again, _ = gradual_admm(w, h, magnitude_on_scale, sparsity, pattern, iterations=12, select_iterations=9,
                            relaxation=1.0)
    assert torch.equal(plain, again)
    new, mask = gradual_admm(w, h, magnitude_on_scale, sparsity, pattern, iterations=12, select_iterations=9,
                             relaxation=1.6)
    assert torch.equal(new == 0, mask)
    assert int(mask.sum()) == int(plain_mask.sum())
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)
    assert _error(x, w, new) < _error(x, w, w.masked_fill(mask, 0))
    # on one fixed mask the relaxed steps approach its masked least squares faster
    def fixed(v, scale):  # keep exactly the plain run's mask
        return (~plain_mask).float()

    exact = _error(x, w, _exact_masked_least_squares(w, x, plain_mask))
    gaps = [_error(x, w, gradual_admm(w, h, fixed, sparsity, pattern, iterations=6, select_iterations=1, damp=0.0,
                                      relaxation=a)[0]) - exact for a in (1.0, 1.6)]
    assert 0 <= gaps[1] < gaps[0]


def test_relaxation_outside_zero_to_two_is_refused():
    w, x = _problem(out=8, inp=16)
    with pytest.raises(ValueError, match="relaxation"):
        gradual_admm(w, x.t() @ x, magnitude_on_scale, 0.5, relaxation=2.0)
    for bad in (0, 2.0, -1):
        with pytest.raises(ValueError, match="admm-grad relaxation"):
            PruneConfig(admm_grad_relaxation=bad)


def test_the_configs_relaxation_reaches_the_update():
    """--admm-grad-relaxation is passed through crepe's default update: 1.5 prunes to other weights,
    and the explicit default 1.0 to the same ones."""
    plain, relaxed = _pruned_weights(method="crepe"), _pruned_weights(method="crepe", admm_grad_relaxation=1.5)
    assert any(not torch.equal(plain[k], relaxed[k]) for k in plain)
    again = _pruned_weights(method="crepe", admm_grad_relaxation=1.0)
    assert all(torch.equal(plain[k], again[k]) for k in plain)


def test_the_configs_choosing_count_reaches_the_update_and_is_checked():
    """--admm-grad-select-iterations sets how many iterations re-choose the mask: the default's own
    count (three quarters of its iterations, rounded half up: 11 of 15, 8 of 10, 5 of 6) prunes to the same weights, another
    count to other ones; counts outside 1..iterations are refused."""
    iterations = PruneConfig().admm_grad_iterations
    own = selecting_iterations(iterations)
    assert PruneConfig().admm_grad_select_iterations is None and [selecting_iterations(n) for n in (15, 10, 6, 2)] == [11, 8, 5, 2]
    plain = _pruned_weights(method="crepe")
    same = _pruned_weights(method="crepe", admm_grad_select_iterations=own)
    assert all(torch.equal(plain[k], same[k]) for k in plain)
    fewer = _pruned_weights(method="crepe", admm_grad_iterations=iterations - 1, admm_grad_select_iterations=own - 1)
    assert any(not torch.equal(plain[k], fewer[k]) for k in plain)
    for bad in (0, iterations + 1):
        with pytest.raises(ValueError, match="admm-grad select iterations"):
            PruneConfig(admm_grad_select_iterations=bad)


def test_the_default_damping_follows_the_calibrations_size():
    """Unset, the admm-grad damping comes from the calibration's tokens (ADMM_GRAD_DAMP_BY_TOKENS): a run
    resolves and records it (RunOptions.resolved_prune), and a config passed straight to the engine takes
    it from each linear's token count, pruning to the weights of the explicit value."""
    (_, small), (large_at, large) = ADMM_GRAD_DAMP_BY_TOKENS[0], ADMM_GRAD_DAMP_BY_TOKENS[-1]
    assert [admm_grad_damp_for(t) for t in (0, large_at - 1, large_at, 10 * large_at)] == [small, small, large, large]
    assert PruneConfig().admm_grad_damp is None and PruneConfig().at_calibration(large_at).admm_grad_damp == large
    assert PruneConfig(admm_grad_damp=0.2).at_calibration(large_at).admm_grad_damp == 0.2
    assert RunOptions(nsamples=16).resolved_prune.admm_grad_damp == small
    assert RunOptions(nsamples=128).resolved_prune.admm_grad_damp == large
    assert damping(PruneConfig(), InputStats(tokens=large_at)) == large
    w, x = _problem(seed=3)

    def solve(cfg, tokens):
        return admm_grad_update_linear(w, InputStats(hessian=x.t() @ x, tokens=tokens), 0.5, Pattern(2, 4), cfg)[0]
    unset = solve(PruneConfig(), large_at)
    assert torch.equal(unset, solve(PruneConfig(admm_grad_damp=large), large_at))
    assert not torch.equal(unset, solve(PruneConfig(), large_at - 1))  # fewer tokens: the other damping
    windows = tiny_windows()
    assert windows.numel() < large_at
    assert all(torch.equal(a, b) for a, b in zip(_pruned_weights(method="crepe").values(),
                                                   _pruned_weights(method="crepe", admm_grad_damp=small).values()))
    with pytest.raises(ValueError, match="admm-grad damp"):
        PruneConfig(admm_grad_damp=-1.0)


def _textbook_gradual_admm(w, h, sparsity, pattern, iterations, select, damp, shift, share, relaxation):
    """Boza's iteration as written: V = a (W_n H_n + S + rho (Z - U)) (H_n + rho I)^-1 + U + (1 - a) Z,
    in float64 after the float32 scaling (rho 1, the magnitude score, the ramped mask)."""
    h_n, scale = (part.double() for part in unit_hessian(h, damp, "unit"))
    inv = torch.linalg.inv(h_n + torch.eye(h_n.shape[0], dtype=torch.float64))
    v = w.double() * scale
    target = v @ h_n + share * shift.double() / scale
    z, u = v.clone(), torch.zeros_like(v)
    for t in range(iterations):
        if t < select:
            pruned = ramped_mask(v.abs().float(), sparsity, pattern, "layer", 1 - (1 - (t + 1) / select) ** 3)
            z, u = v.masked_fill(pruned, 0), v.masked_fill(~pruned, 0)
        x = (target + z - u) @ inv
        mixed = relaxation * x + (1 - relaxation) * z
        v = mixed + u
        z, u = v.masked_fill(pruned, 0), v.masked_fill(~pruned, 0)
    return z / scale, pruned


@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_gradual_admm_is_the_textbook_iteration_without_its_w_h_product(pattern, sparsity):
    """The loop uses H_n (H_n + rho I)^-1 = I - rho (H_n + rho I)^-1, one product per iteration and
    none for W_n H_n: the same weights and mask as the iteration written out, dense target and
    over-relaxation included."""
    w, x = _problem(seed=5)
    h = x.t() @ x
    shift = (0.2 * torch.randn_like(x) @ w.t()).t() @ x
    for share, relaxation in ((0.0, 1.0), (0.3, 1.0), (0.3, 1.5)):
        new, mask = gradual_admm(w, h, magnitude_on_scale, sparsity, pattern, iterations=6, select_iterations=5,
                                 damp=0.3, dense_shift=shift, toward_dense=share, relaxation=relaxation)
        ref, ref_mask = _textbook_gradual_admm(w, h, sparsity, pattern, 6, 5, 0.3, shift, share, relaxation)
        assert torch.equal(mask, ref_mask)
        assert torch.allclose(new.double(), ref, rtol=1e-4, atol=1e-5 * float(w.abs().max()))


@pytest.mark.parametrize("pattern,sparsity", PATTERNS)
def test_bfloat16_products_keep_mask_and_pattern_and_the_error_of_float32(pattern, sparsity):
    """--admm-grad-products bfloat16 rounds each iteration's product operands to bfloat16: the mask is
    still exact and N:M valid, the pruned entries 0, and the output error within 2% of float32's on
    a problem whose inputs are not the calibration's (the solve generalises the same)."""
    w, x = _problem(out=64, inp=128, tokens=2048, seed=6)
    held_out = _problem(out=64, inp=128, tokens=1024, seed=7)[1]
    h = x[:1024].t() @ x[:1024]
    shift = (0.2 * torch.randn_like(x[:1024]) @ w.t()).t() @ x[:1024]
    runs = {dtype: gradual_admm(w, h, magnitude_on_scale, sparsity, pattern, iterations=6, select_iterations=5, damp=0.3,
                                dense_shift=shift, toward_dense=0.3, product_dtype=dtype)
            for dtype in (torch.float32, torch.bfloat16)}
    new, mask = runs[torch.bfloat16]
    assert new.dtype == torch.float32 and torch.equal(new == 0, mask)
    assert int(mask.sum()) == round(w.numel() * (pattern.n / pattern.m if pattern.structured else sparsity))
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)
    assert not torch.equal(new, runs[torch.float32][0])  # the products really ran in bfloat16
    for inputs in (x[:1024], held_out):
        assert _error(inputs, w, new) == pytest.approx(_error(inputs, w, runs[torch.float32][0]), rel=0.02)


def test_the_configs_product_precision_reaches_the_update_and_is_checked():
    """--admm-grad-products: bfloat16 prunes to other weights than float32 with the same pattern, the
    default (auto) to the weights of what it resolves to on this CPU; an unknown precision is refused."""
    full, low = (_pruned_weights(method="crepe", admm_grad_products=p) for p in ("float32", "bfloat16"))
    assert any(not torch.equal(full[k], low[k]) for k in full)
    assert all(is_valid_nm(w, 2, 4) for w in low.values())
    auto = _pruned_weights(method="crepe")
    assert PruneConfig().admm_grad_products == "auto"
    resolved = {"float32": full, "bfloat16": low}[gradual.resolve_auto("cpu")]
    assert all(torch.equal(auto[k], resolved[k]) for k in auto)
    with pytest.raises(ValueError, match="unknown admm-grad products 'float16'"):
        PruneConfig(admm_grad_products="float16")
    with pytest.raises(ValueError, match="unknown dense precision 'float16'"):
        PruneConfig(dense_precision="float16")


def test_the_configs_dense_precision_reaches_the_dense_stream():
    """--dense-precision: a bfloat16 dense forward prunes to other weights than float32 (the shift it
    measures moves), with the same valid pattern; auto to the weights of what it resolves to here."""
    full, low = (_pruned_weights(method="crepe", dense_precision=p) for p in ("float32", "bfloat16"))
    assert any(not torch.equal(full[k], low[k]) for k in full)
    assert all(is_valid_nm(w, 2, 4) for w in low.values())
    assert PruneConfig().dense_precision == "auto"
    auto = _pruned_weights(method="crepe")
    resolved = {"float32": full, "bfloat16": low}[gradual.resolve_auto("cpu")]
    assert all(torch.equal(auto[k], resolved[k]) for k in auto)


def test_bfloat16_products_warn_once_where_the_hardware_emulates_them_and_auto_takes_them_where_native(monkeypatch, caplog):
    """On hardware without native bfloat16 products the option says once that it is slower there;
    float32, and hardware that has them, say nothing. auto is bfloat16 where native, float32
    elsewhere, and never warns."""
    assert gradual.bfloat16_native("cpu") in (True, False, None)
    for native, expected, auto in ((True, 0, torch.bfloat16), (False, 1, torch.float32), (None, 0, torch.float32)):
        monkeypatch.setattr(gradual, "bfloat16_native", lambda device_type, native=native: native)
        gradual._warn_emulated.cache_clear()
        gradual.resolve_auto.cache_clear()
        caplog.clear()
        for products in ("bfloat16", "bfloat16", "float32"):
            dtype = gradual.product_dtype(PruneConfig(admm_grad_products=products), torch.device("cpu"))
            assert dtype == gradual.PRODUCT_DTYPES[products]
        assert gradual.product_dtype(PruneConfig(), torch.device("cpu")) == auto
        assert len([r for r in caplog.records if "no native bfloat16" in r.getMessage()]) == expected
        for precision in ("bfloat16", "float32"):
            dtype = gradual.dense_forward_dtype(PruneConfig(dense_precision=precision), torch.device("cpu"))
            assert dtype == gradual.PRODUCT_DTYPES[precision]
        assert gradual.dense_forward_dtype(PruneConfig(), torch.device("cpu")) == auto
        assert len([r for r in caplog.records if "--dense-precision bfloat16" in r.getMessage()]) == expected
    gradual.resolve_auto.cache_clear()
