"""PHO over the pipeline: the proxies and the climb prune with the weight update (--update), as crepe.prune does."""

import json

import pytest
import torch
from safetensors import safe_open

from crepe.config import PruneConfig
from crepe.evaluation.perplexity import window_nll
from crepe.methods.params import Pattern
from crepe.methods.scorers import InputStats
from crepe.models.adapters import model_target
from crepe.prune.cached import collect_input_stats, prune_from_stats
from crepe.prune.model import prune_model
from pho.objective import EndToEndProxy
from pho.proxies import LayerData
from tests.pho.test_hillclimb import hc_args
from tests.pho.test_search import load, search_args
from tests.tiny_models import tiny_model, tiny_windows


def with_hessians():
    model, windows = tiny_model(), tiny_windows(n=4)
    stats = collect_input_stats(model, windows, frozenset({"sq_sum", "hessian"}), progress=False)
    return model, windows, {k: LayerData(sq_sum=s.sq_sum, hessian=s.hessian) for k, s in stats.items()}


@pytest.mark.parametrize("update", ["obs", "sweep"])
def test_e2e_runs_the_update_on_the_cached_hessians_as_one_shot_pruning_does(update):
    model, windows, data = with_hessians()
    cfg = PruneConfig(method="crepe", sparsity=0.5, update=update)
    with torch.no_grad():
        value = EndToEndProxy(model, data, windows[:2])(cfg).values["e2e"]
        plain = EndToEndProxy(model, data, windows[:2])(PruneConfig(method="crepe", sparsity=0.5, update="none"))
        target = model_target(model)
        snapshot = target.snapshot()
        prune_from_stats(model, {k: InputStats(sq_sum=d.sq_sum, hessian=d.hessian, tokens=1) for k, d in data.items()}, cfg)
        expected = window_nll(model, windows[:2]).mean().item()
        target.restore(snapshot)
    assert value == pytest.approx(expected, rel=1e-5) and value != pytest.approx(plain.values["e2e"], rel=1e-6)


def test_e2e_seq_runs_the_update_inside_the_sequential_engine():
    model, windows, data = with_hessians()
    cfg = PruneConfig(method="crepe", sparsity=0.5, pattern=Pattern(2, 4), update="obs")
    with torch.no_grad():
        value = EndToEndProxy(model, data, windows[:2], sequential=True)(cfg).values["e2e_seq"]
        prune_model(model, windows[:2], cfg, progress=False)
        assert value == pytest.approx(window_nll(model, windows[:2]).mean().item(), rel=1e-5)


def test_search_and_climb_take_the_update_record_it_and_cache_hessians_only_when_needed(cli, common_args, tmp_path):
    assert cli("pho.search", search_args(common_args, tmp_path, n=2, extra=["--no-plots", "--update", "obs"])) == 0
    assert load(tmp_path).user_attrs["objective"]["update"] == "obs"
    caches = list((tmp_path / "cache").glob("*.safetensors"))
    assert len(caches) == 1
    with safe_open(str(caches[0]), framework="pt") as f:
        assert any(k.startswith("hessian/") for k in f.keys())  # noqa: SIM118
    assert cli("pho.search", search_args(common_args, tmp_path, name="plain", n=2,
                                         extra=["--no-plots", "--update", "none"])) == 0
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2  # a norms-only cache has its own key
    assert cli("pho.search", search_args(common_args, tmp_path, name="default", n=2, extra=["--no-plots"])) == 0
    assert "update" not in load(tmp_path, "default").user_attrs["objective"]  # the mask score (crepe's default
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2  # update reads no coefficient): the norms cache
    assert cli("pho.search", search_args(common_args, tmp_path, name="r", extra=["--proxy", "recon", "--update", "obs"])) == 2
    assert cli("pho.hillclimb", [*hc_args(common_args, tmp_path, 2), "--update", "obs"]) == 0
    best = json.loads((tmp_path / "hc.json").read_text())
    assert best["update"] == "obs"


def test_search_with_out_error_runs_the_update_per_linear_and_caches_hessians(cli, common_args, tmp_path):
    args = search_args(common_args, tmp_path, name="oe", n=2, extra=["--no-plots", "--proxy", "out_error",
                                                                    "--update", "sweep", "--layer-stride", "3"])
    assert cli("pho.search", args) == 0
    objective = load(tmp_path, "oe").user_attrs["objective"]
    assert objective["proxy"] == "out_error" and objective["update"] == "sweep" and objective["layer_stride"] == 3
    assert cli("pho.search", search_args(common_args, tmp_path, name="oe-none", n=2, extra=[
        "--no-plots", "--proxy", "out_error", "--update", "none"])) == 0  # mask-only: needs the Hessians too


def test_e2e_with_a_layer_stride_prunes_only_those_decoder_layers_and_restores_them():
    model, windows, data = with_hessians()
    target = model_target(model)
    before = {k: t.weight.detach().clone() for k, t in target.linears.items()}
    cfg = PruneConfig(method="crepe", sparsity=0.5, update="sweep")
    layers = len(target.per_layer)
    with torch.no_grad():
        strided = EndToEndProxy(model, data, windows[:2], layer_stride=2)
        value = strided(cfg).values["e2e"]
        assert all(torch.equal(t.weight, before[k]) for k, t in target.linears.items())  # restored
        stats = {k: InputStats(sq_sum=d.sq_sum, hessian=d.hessian, tokens=1) for k, d in data.items()}
        pruned = prune_from_stats(model, stats, cfg, target, layers=set(range(1, layers, 2)))
        assert {int(k.split(".")[1]) for k in pruned} == set(range(1, layers, 2))
        assert all(torch.equal(t.weight, before[k]) for k, t in target.linears.items() if t.layer % 2 == 0)
        assert value == pytest.approx(window_nll(model, windows[:2]).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="faithful"):
        EndToEndProxy(model, data, windows[:2], sequential=True, layer_stride=2)
