import pytest
import torch

from crepe.methods.masks import is_valid_nm, nm_mask, select_mask, unstructured_mask
from crepe.methods.params import Pattern


def _scores(out=16, inp=32, seed=0):
    return torch.rand(out, inp, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.7, 0.95])
def test_per_layer_prunes_exactly_the_requested_count(sparsity):
    s = _scores()
    assert unstructured_mask(s, sparsity, "layer").sum() == round(s.numel() * sparsity)


def test_per_layer_prunes_the_lowest_scores():
    s = _scores()
    mask = unstructured_mask(s, 0.5, "layer")
    assert s[mask].max() <= s[~mask].min()


def test_per_row_prunes_the_same_count_in_every_row():
    mask = unstructured_mask(_scores(), 0.25, "row")
    assert (mask.sum(1) == 8).all()


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (1, 4), (3, 8)])
def test_nm_mask_prunes_n_of_every_m(n, m):
    s = _scores()
    mask = nm_mask(s, n, m)
    assert (mask.view(16, -1, m).sum(-1) == n).all()
    assert is_valid_nm(s.masked_fill(mask, 0), n, m)


def test_nm_rejects_widths_not_divisible_by_m():
    with pytest.raises(ValueError, match="multiple of 8"):
        nm_mask(torch.rand(4, 12), 4, 8)


def test_ties_are_broken_deterministically_by_position():
    s = torch.ones(4, 8)
    mask = unstructured_mask(s, 0.5, "row")
    assert mask[:, :4].all() and not mask[:, 4:].any()


def test_select_mask_dispatches_on_pattern():
    s = _scores()
    assert torch.equal(select_mask(s, 0.5, Pattern(2, 4)), nm_mask(s, 2, 4))
    assert torch.equal(select_mask(s, 0.5, Pattern(), "row"), unstructured_mask(s, 0.5, "row"))


@pytest.mark.parametrize("shape,k", [((1000,), 1), ((1000,), 500), ((1000,), 999), ((8, 64), 17), ((16, 8, 4), 2),
                                     ((16, 8, 4), 1), ((16, 8, 4), 3), ((16, 8, 8), 4), ((16, 8, 8), 1), ((16, 8, 2), 1),
                                     ((16, 8, 16), 5)])
def test_linear_time_selection_equals_a_stable_sort_even_with_many_ties(shape, k):
    from crepe.methods.masks import _lowest_k_mask, _lowest_k_mask_by_sort

    g = torch.Generator().manual_seed(k)
    scores = torch.randint(0, 5, shape, generator=g).float()  # heavy ties, as on a 4-bit grid
    assert torch.equal(_lowest_k_mask(scores, k), _lowest_k_mask_by_sort(scores, k))
    scores = torch.rand(shape, generator=g)
    assert torch.equal(_lowest_k_mask(scores, k), _lowest_k_mask_by_sort(scores, k))


@pytest.mark.parametrize("shape,k", [((64, 200), 100), ((4, 6, 130), 65)])
def test_ties_resolved_only_in_the_rows_that_have_them_equal_a_stable_sort(shape, k):
    """Rows without surplus ties at the threshold keep the fast mask; tied rows get the stable-sort one."""
    from crepe.methods.masks import _lowest_k_mask, _lowest_k_mask_by_sort

    g = torch.Generator().manual_seed(1)
    scores = torch.rand(shape, generator=g)
    flat = scores.view(-1, shape[-1])
    flat[::3] = torch.randint(0, 4, flat[::3].shape, generator=g).float()  # every third row heavily tied
    assert torch.equal(_lowest_k_mask(scores, k), _lowest_k_mask_by_sort(scores, k))
    assert bool((_lowest_k_mask(scores, k).sum(-1) == k).all())


def test_kth_smallest_equals_kthvalue_with_ties_and_skew_per_layer_and_per_row():
    from crepe.methods.masks import all_finite, kth_smallest

    gen = torch.Generator().manual_seed(1)
    for transform in (lambda x: x, lambda x: (x * 8).round(), lambda x: x.abs() ** 3):
        x = transform(torch.randn(200_003, generator=gen))
        for k in (1, 7, 20_000, 100_001, 200_003):
            assert torch.equal(kth_smallest(x, k), x.kthvalue(k, keepdim=True).values)
        rows = x[:200_000].view(400, 500)
        assert torch.equal(kth_smallest(rows, 123), rows.kthvalue(123, dim=-1, keepdim=True).values)
    for x in (torch.full((100_000,), 2.0), torch.randn(100_000, generator=gen).sort().values,
              torch.where(torch.arange(100_000) % 5 == 0, float("nan"), torch.rand(100_000, generator=gen))):
        for k in (1, 50_000, 79_999):  # every value tied, a sorted input, NaNs (outside every bracket)
            assert torch.equal(kth_smallest(x, k), x.kthvalue(k, keepdim=True).values)
    assert all_finite(torch.ones(10)) and not all_finite(torch.tensor([1.0, float("nan")]))
    assert not all_finite(torch.tensor([float("inf"), float("-inf")])) and not all_finite(torch.tensor([float("inf")]).half())
