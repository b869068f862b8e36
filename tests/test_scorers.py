import pytest
import torch
import torch.nn.functional as F

from crepe.methods.neighbourhood import box_count, box_mean, box_sum
from crepe.methods.params import CrepeParams
from crepe.methods.registry import score
from crepe.methods.scorers import InputStats, crepe, neighbourhood_term, ria, wanda


def _random(out=24, inp=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=g)
    stats = InputStats(sq_sum=torch.rand(inp, generator=g) * 10, tokens=100)
    return w, stats


def test_crepe_with_unit_row_col_and_zero_neighbourhood_equals_ria_exactly():
    w, stats = _random()
    params = CrepeParams(alpha=1.0, beta=1.0, gamma=0.0, act_power=0.5)
    assert torch.equal(crepe(w, stats, params), ria(w, stats, params))


def test_ria_ignores_crepe_defaults_and_uses_its_own_exponent():
    w, stats = _random()
    assert torch.equal(ria(w, stats, CrepeParams(act_power=2.0)), ria(w, stats, CrepeParams()))


def test_ria_matches_its_formula():
    w, stats = _random()
    a = w.abs()
    expected = (a / a.sum(0, keepdim=True) + a / a.sum(1, keepdim=True)) * stats.sq_sum.sqrt().pow(0.5)
    torch.testing.assert_close(ria(w, stats, CrepeParams()), expected)


def test_wanda_is_magnitude_times_input_norm():
    w, stats = _random()
    torch.testing.assert_close(wanda(w, stats, CrepeParams()), w.abs() * stats.sq_sum.sqrt())


@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_box_sum_matches_zero_padded_convolution(k):
    a = torch.rand(17, 23, generator=torch.Generator().manual_seed(k))
    ref = F.conv2d(a[None, None].double(), torch.ones(1, 1, k, k, dtype=torch.float64), padding=k // 2)[0, 0].float()
    torch.testing.assert_close(box_sum(a, k), ref, atol=1e-5, rtol=1e-5)


def test_box_sum_stays_accurate_on_large_matrices():
    a = torch.rand(1536, 576, generator=torch.Generator().manual_seed(0)) * 0.05
    ref = F.conv2d(a[None, None].double(), torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=1)[0, 0]
    assert (box_sum(a, 3).double() - ref).abs().div(ref).max() < 1e-5


def test_count_padding_averages_only_in_bounds_entries():
    a = torch.ones(5, 6)
    torch.testing.assert_close(box_mean(a, 3, "count"), torch.ones(5, 6))
    assert box_mean(a, 3, "zero")[0, 0] == pytest.approx(4 / 9)
    assert box_count(5, 6, 3)[0, 0] == 4 and box_count(5, 6, 3)[2, 2] == 9


def test_even_kernel_is_rejected():
    with pytest.raises(ValueError, match="odd"):
        box_sum(torch.ones(3, 3), 4)


@pytest.mark.parametrize("form", ["relative", "smoothed", "product"])
@pytest.mark.parametrize("padding", ["zero", "count"])
def test_neighbourhood_terms_are_finite_and_nonnegative(form, padding):
    w, _ = _random()
    w[0] = 0  # an all-zero row must not produce NaN
    term = neighbourhood_term(w.abs(), 3, form, padding)
    assert torch.isfinite(term).all() and (term >= 0).all()


def test_neighbourhood_term_changes_the_crepe_score():
    w, stats = _random()
    base = crepe(w, stats, CrepeParams())
    with_nbr = crepe(w, stats, CrepeParams(gamma=1.0, kernel=5))
    assert not torch.allclose(base, with_nbr)


def test_mean_term_scale_makes_each_term_average_one():
    w, stats = _random()
    s = crepe(w, InputStats(sq_sum=torch.ones(w.shape[1])), CrepeParams(alpha=1, beta=0, gamma=0, term_scale="mean"))
    assert s.mean().item() == pytest.approx(1.0, rel=1e-5)


def test_unknown_method_and_a_method_without_a_score_are_clear_errors():
    w, stats = _random()
    with pytest.raises(ValueError, match="unknown method 'nope'; choose from .*wanda"):
        score("nope", w, stats)
    with pytest.raises(ValueError, match="sparsegpt.* no score function"):
        score("sparsegpt", w, stats)


def test_scorers_needing_activations_explain_missing_stats():
    w, _ = _random()
    with pytest.raises(ValueError, match="statistics"):
        wanda(w, InputStats(), CrepeParams())
