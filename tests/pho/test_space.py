"""The search space: RIA's point is exactly RIA, gamma's lower bound switches the term off, bad spaces fail."""

import pytest
import torch

from crepe.methods.registry import score
from crepe.methods.scorers import InputStats
from pho.space import PARAMS, SearchSpace


def test_ria_point_maps_to_a_score_equal_to_ria_bit_for_bit():
    space = SearchSpace()
    params = space.to_crepe(space.ria_point())
    assert (params.alpha, params.beta, params.gamma, params.kernel, params.act_power) == (1.0, 1.0, 0.0, 3, 0.5)
    w = torch.randn(12, 20, generator=torch.Generator().manual_seed(0))
    stats = InputStats(sq_sum=torch.rand(20, generator=torch.Generator().manual_seed(1)) + 0.1)
    assert torch.equal(score("crepe", w, stats, params), score("ria", w, stats, params))


def test_gamma_at_its_lower_bound_is_off_and_r_encodes_an_odd_kernel():
    space = SearchSpace(gamma_range=(1e-3, 1.0))
    assert space.to_crepe({"gamma": 1e-3}).gamma == 0.0
    assert space.to_crepe({"gamma": 2e-3}).gamma == 2e-3
    assert [space.to_crepe({"r": r}).kernel for r in (0, 1, 5)] == [1, 3, 11]


def test_unsearched_parameters_keep_the_base_values():
    space = SearchSpace(params=("gamma", "r"))
    params = space.to_crepe({"gamma": 0.5, "r": 2})
    assert (params.alpha, params.beta, params.act_power, params.gamma, params.kernel) == (1.0, 1.0, 0.5, 0.5, 5)
    assert set(space.distributions()) == {"gamma", "r"}


@pytest.mark.parametrize("kwargs, message", [
    ({"params": ()}, "empty search space"),
    ({"alpha_range": (2.0, 1.0)}, "empty search space"),
    ({"r_range": (3, 3)}, "empty search space"),
    ({"gamma_range": (0.0, 1.0)}, "must be positive"),
    ({"params": ("alpha", "nope")}, "distinct names"),
    ({"r_range": (1.5, 3)}, "non-negative ints"),
])
def test_bad_spaces_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace(**kwargs)


def test_random_samples_lie_in_the_bounds_and_repeat_with_the_seed():
    space = SearchSpace()
    a = [space.sample(torch.Generator().manual_seed(3)) for _ in range(1)]
    pts = [space.sample(g) for g in [torch.Generator().manual_seed(3)] for _ in range(50)]
    assert pts[0] == a[0]
    for p in pts:
        for name in PARAMS:
            lo, hi = space.bounds(name)
            assert lo <= p[name] <= hi
        assert isinstance(p["r"], int)
    assert len({p["r"] for p in pts}) > 3


def test_space_round_trips_through_its_dict():
    space = SearchSpace(params=("alpha", "gamma"), gamma_range=(1e-3, 5.0))
    assert SearchSpace.from_dict(space.to_dict()) == space
