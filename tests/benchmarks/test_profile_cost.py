"""benchmarks.profile_cost: the profile's parts are found in a real prune and add up to its time."""

import cProfile
import pstats

import pytest

from benchmarks import profile_cost


@pytest.mark.parametrize(("method", "products"), [("crepe", True), ("sparsegpt", False)])
def test_the_parts_of_a_real_prune_are_found_and_add_up(method, products):
    from tiny_models import tiny_model, tiny_windows

    from crepe.config import PruneConfig
    from crepe.prune.model import prune_model

    model = tiny_model()
    profile = cProfile.Profile()
    profile.enable()
    prune_model(model, tiny_windows(), PruneConfig(method=method, sparsity=0.5), progress=False)
    profile.disable()
    parts = profile_cost.shares(pstats.Stats(profile))
    main = ("layer forwards", "statistics", "per-linear solve", "rest")
    assert sum(parts[name] for name in main) == pytest.approx(parts["total"])
    assert all(parts[name] > 0 for name in main[:3]) and parts["factorisations"] > 0
    assert (parts["ADMM products"] > 0) is products  # only the default's admm-grad iterates
    assert parts["ADMM products"] + parts["factorisations"] <= parts["per-linear solve"]
    line = profile_cost.describe(method, parts, [0.5, 2.0])
    assert "[of which ADMM products" in line and line.endswith("decoder layers 0.5 / 2.0 s")
