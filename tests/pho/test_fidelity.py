"""Multi-fidelity PHO: rungs, the rung-by-rung proxy against the plain one, pruned trials, warm starts, resume."""

import json

import optuna
import pytest
import torch

from crepe.config import PruneConfig
from crepe.methods.params import CrepeParams, Pattern
from crepe.models.adapters import decoder_linears, weight_view
from pho.fidelity import FidelityProxy, make_pruner, rungs
from pho.objective import EndToEndProxy
from tests.pho.test_e2e_proxy import setup
from tests.pho.test_search import load, search_args


def test_rungs_are_powers_of_eta_below_the_budget_then_the_budget():
    assert rungs(8, 3) == [1, 3, 8] and rungs(9, 3) == [1, 3, 9] and rungs(1, 3) == [1] and rungs(4, 2) == [1, 2, 4]
    with pytest.raises(ValueError):
        rungs(0, 3)
    with pytest.raises(ValueError, match="unknown pruner"):
        make_pruner("median", 4)


@pytest.mark.parametrize("sequential,pattern", [(False, Pattern()), (True, Pattern(2, 4))])
def test_the_full_budget_value_is_the_plain_proxy_and_each_rung_is_reported_then_weights_restored(sequential, pattern):
    model, windows, data = setup()
    dense = {k: weight_view(m).clone() for k, m in decoder_linears(model).items()}
    cfg = PruneConfig(method="crepe", sparsity=0.5, pattern=pattern, crepe=CrepeParams(alpha=2.0, gamma=0.1, kernel=3),
                      update="none")  # setup() holds no Hessians
    seen = []
    with torch.no_grad():
        result = FidelityProxy(model, data, windows, sequential, reduction_factor=2)(cfg, lambda k, v: seen.append((k, v)))
        plain = {k: EndToEndProxy(model, data, windows[:k], sequential=sequential)(cfg).values for k, _ in seen}
    assert [k for k, _ in seen] == [1, 2, 4]
    name = "e2e_seq" if sequential else "e2e"
    assert all(v == pytest.approx(plain[k][name], rel=1e-5) for k, v in seen)  # every rung: the plain proxy on k
    assert result.values[name] == seen[-1][1] and result.realised_sparsity == pytest.approx(0.5, abs=1e-3)
    assert all(torch.equal(weight_view(m), dense[k]) for k, m in decoder_linears(model).items())


def test_a_stopped_trial_restores_the_weights():
    model, windows, data = setup()
    dense = {k: weight_view(m).clone() for k, m in decoder_linears(model).items()}

    def stop(k, v):
        raise optuna.TrialPruned()

    with torch.no_grad(), pytest.raises(optuna.TrialPruned):
        FidelityProxy(model, data, windows, False)(PruneConfig(method="crepe", sparsity=0.5, update="none"), stop)
    assert all(torch.equal(weight_view(m), dense[k]) for k, m in decoder_linears(model).items())


def test_a_multi_fidelity_search_prunes_trials_warm_starts_first_and_resumes(cli, common_args, tmp_path):
    warm = tmp_path / "warm.json"
    warm.write_text(json.dumps({"crepe": {"alpha": 3.0, "beta": 0.5, "gamma": 0.0, "kernel": 5, "act_power": 1.2}}))
    extra = ["--no-plots", "--pruner", "sha", "--reduction-factor", "2", "--e2e-windows", "4", "--sampler", "tpe",
             "--warm-start", f"{warm},default", "--update", "sweep-admm"]
    assert cli("pho.search", search_args(common_args, tmp_path, n=8, extra=extra)) == 0
    study = load(tmp_path)
    trials = study.get_trials()
    # the sweep never reads act_power (not searched) nor k with gamma off:
    # the shipped config and RIA's point prune alike, so they share one trial
    assert [t.user_attrs.get("label") for t in trials[:3]] == ["warm:warm", "warm:default", None]
    assert trials[0].params == {"r": 2, "alpha": 3.0, "beta": 0.5, "gamma": 1e-4}
    assert trials[0].state.name == "COMPLETE"  # nothing to compare the first trial with
    assert len(trials) == 8 and any(t.state.name == "PRUNED" for t in trials)
    assert all(max(t.intermediate_values) == 4 for t in trials if t.state.name == "COMPLETE")
    assert all(t.user_attrs["process_cpu_seconds"] > 0 for t in trials)
    assert study.user_attrs["objective"]["fidelity"] == {"pruner": "sha", "rungs": [1, 2, 4]}
    before = [(t.number, t.state.name, t.value) for t in trials]
    assert cli("pho.search", search_args(common_args, tmp_path, n=10, extra=extra)) == 0
    after = [(t.number, t.state.name, t.value) for t in load(tmp_path).get_trials()]
    assert len(after) == 10 and after[:8] == before  # finished = complete + pruned
    assert cli("pho.search", search_args(common_args, tmp_path, n=10, extra=[*extra[:-2], "--pruner", "none"])) == 2


def test_a_pruner_needs_an_end_to_end_proxy(cli, common_args, tmp_path):
    assert cli("pho.search", search_args(common_args, tmp_path, extra=["--proxy", "recon", "--pruner", "sha"])) == 2
    assert not (tmp_path / "pho.db").exists() or not optuna.get_all_study_names(f"sqlite:///{tmp_path / 'pho.db'}")
