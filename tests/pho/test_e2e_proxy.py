"""The model-level e2e proxy on a tiny model: its value, its restore, and its response to sparsity."""

import math

import pytest
import torch

from crepe.config import PruneConfig
from crepe.evaluation.perplexity import window_nll
from crepe.methods.params import CrepeParams, Pattern
from crepe.methods.scorers import InputStats
from crepe.models.adapters import decoder_linears, model_target, weight_view
from crepe.prune.cached import collect_input_stats, prune_from_stats
from crepe.prune.model import prune_model
from pho.objective import EndToEndProxy
from pho.proxies import LayerData
from tests.tiny_models import tiny_model, tiny_windows


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():  # scoped: a global switch would leak into later tests that train
        yield


def setup():
    model, windows = tiny_model(), tiny_windows(n=4)
    stats = collect_input_stats(model, windows, progress=False)
    data = {name: LayerData(sq_sum=s.sq_sum) for name, s in stats.items()}
    return model, windows, data


def test_e2e_is_the_mean_calibration_nll_of_the_one_shot_pruned_model_and_restores_the_weights():
    model, windows, data = setup()
    dense = {k: weight_view(m).clone() for k, m in decoder_linears(model).items()}
    cfg = PruneConfig(method="crepe", sparsity=0.5, crepe=CrepeParams(alpha=2.0, gamma=0.1, kernel=3), update="none")
    result = EndToEndProxy(model, data, windows[:2])(cfg)
    assert all(torch.equal(weight_view(m), dense[k]) for k, m in decoder_linears(model).items())
    # independent computation: prune with the same statistics, then the NLL of the same windows
    target = model_target(model)
    snapshot = target.snapshot()
    prune_from_stats(model, {k: InputStats(sq_sum=d.sq_sum, tokens=1) for k, d in data.items()}, cfg)
    expected = window_nll(model, windows[:2]).mean().item()
    target.restore(snapshot)
    assert result.values["e2e"] == pytest.approx(expected, rel=1e-5)
    assert result.realised_sparsity == pytest.approx(0.5, abs=1e-3)


def test_e2e_moves_away_from_the_dense_nll_as_sparsity_grows_and_rejects_empty_windows():
    model, windows, data = setup()
    dense = window_nll(model, windows[:2]).mean().item()
    proxy = EndToEndProxy(model, data, windows[:2])
    gaps = [abs(proxy(PruneConfig(method="crepe", sparsity=s, update="none")).values["e2e"] - dense) for s in (0.1, 0.9)]
    assert 0 < gaps[0] < gaps[1] and all(math.isfinite(g) for g in gaps)
    with pytest.raises(ValueError, match="calibration windows"):
        EndToEndProxy(model, data, windows[:0])


def test_e2e_seq_prunes_with_the_sequential_engine_on_its_windows_and_restores_the_weights():
    model, windows, data = setup()
    dense = {k: weight_view(m).clone() for k, m in decoder_linears(model).items()}
    cfg = PruneConfig(method="crepe", sparsity=0.5, pattern=Pattern(2, 4))
    result = EndToEndProxy(model, data, windows[:2], sequential=True)(cfg)
    assert all(torch.equal(weight_view(m), dense[k]) for k, m in decoder_linears(model).items())
    prune_model(model, windows[:2], cfg, progress=False)
    expected = window_nll(model, windows[:2]).mean().item()
    assert result.values == {"e2e_seq": pytest.approx(expected, rel=1e-5)}
    assert result.realised_sparsity == pytest.approx(0.5, abs=1e-3)
