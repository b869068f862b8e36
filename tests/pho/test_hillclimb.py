"""python -m pho.hillclimb: the climb itself on a known function, the CLI, resume, validation split only."""

import json
import math

import optuna
import pytest

from pho.hillclimb import BudgetSpent, climb, move, to_unit
from pho.space import SearchSpace


def test_climb_starts_at_ria_and_walks_to_the_minimum_of_a_separable_bowl():
    space = SearchSpace(params=("r", "alpha", "gamma"))
    seen = []

    def bowl(p):
        return (p["r"] - 4) ** 2 + (math.log(p["alpha"]) - math.log(3.0)) ** 2 + (to_unit(space, "gamma", p["gamma"]) - 0.6) ** 2

    def f(p):
        seen.append(p)
        return bowl(p)

    point, value = climb(space, f, step=0.125, refinements=3)
    assert seen[0] == space.ria_point()
    assert point["r"] == 4 and point["alpha"] == pytest.approx(3.0, rel=0.15)
    assert to_unit(space, "gamma", point["gamma"]) == pytest.approx(0.6, abs=0.02)
    assert value == min(bowl(p) for p in seen)


def test_climb_returns_the_best_so_far_when_the_budget_runs_out():
    space = SearchSpace(params=("alpha", "beta"))
    calls = []

    def f(p):
        if len(calls) == 5:
            raise BudgetSpent
        calls.append(p)
        return -p["alpha"]

    _, value = climb(space, f)
    assert len(calls) == 5 and value == min(-p["alpha"] for p in calls)


def test_moves_stay_inside_the_bounds():
    space = SearchSpace()
    p = space.ria_point()
    assert move(space, p, "gamma", -1, 0.25)["gamma"] == space.gamma_range[0]
    assert move(space, {**p, "r": 7}, "r", 1, 0.1)["r"] == 7
    assert move(space, p, "alpha", 1, 0.5)["alpha"] == pytest.approx(10.0)


def hc_args(common_args, tmp_path, n, extra=()):
    return [*common_args, "--storage", f"sqlite:///{tmp_path / 'hc.db'}", "--study-name", "hc", "--n-trials", str(n),
            "--val-seqlen", "32", "--val-windows", "2", "--params", "alpha,gamma", "--no-plots",
            "--best-config", str(tmp_path / "hc.json"), *extra]


def trials(tmp_path):
    study = optuna.load_study(study_name="hc", storage=f"sqlite:///{tmp_path / 'hc.db'}")
    return [(t.number, t.state.name, t.value, t.params) for t in study.get_trials()]


def test_hillclimb_scores_on_validation_only_and_resumes_where_it_stopped(cli, common_args, tmp_path, monkeypatch):
    import pho.hillclimb as hc

    splits = []
    real_eval_set = hc.eval_set
    monkeypatch.setattr(hc, "eval_set", lambda tok, ds, split, *a, **k: splits.append(split) or real_eval_set(tok, ds, split, *a, **k))
    assert cli("pho.hillclimb", hc_args(common_args, tmp_path, 3)) == 0
    first = trials(tmp_path)
    assert len(first) == 3 and first[0][3] == {"alpha": 1.0, "gamma": 1e-4}
    assert all(s == "COMPLETE" and v > 1 for _, s, v, _ in first)
    assert cli("pho.hillclimb", hc_args(common_args, tmp_path, 6)) == 0
    second = trials(tmp_path)
    assert second[:3] == first and len(second) == 6
    assert len({tuple(sorted(p.items())) for *_, p in second}) == 6  # no point evaluated twice
    assert set(splits) == {"validation"}
    best = json.loads((tmp_path / "hc.json").read_text())
    assert best["value"] == min(v for _, _, v, _ in second) and best["crepe"]["kernel"] == 3
    assert best["new_trials_this_run"] == 3


def test_a_trial_left_running_by_a_killed_run_is_failed_and_its_point_re_evaluated(cli, common_args, tmp_path):
    assert cli("pho.hillclimb", hc_args(common_args, tmp_path, 2)) == 0
    study = optuna.load_study(study_name="hc", storage=f"sqlite:///{tmp_path / 'hc.db'}")
    study.ask()  # simulates a process killed mid-evaluation
    assert cli("pho.hillclimb", hc_args(common_args, tmp_path, 3)) == 0
    states = [s for _, s, _, _ in trials(tmp_path)]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 3 and "RUNNING" not in states


def test_hillclimb_refuses_a_study_of_another_space(cli, common_args, tmp_path, capsys):
    assert cli("pho.hillclimb", hc_args(common_args, tmp_path, 2)) == 0
    before = trials(tmp_path)
    assert cli("pho.hillclimb", hc_args(common_args, tmp_path, 4, extra=["--gamma-range", "1e-3,1"])) == 2
    assert "different space" in capsys.readouterr().err and trials(tmp_path) == before


def test_the_climb_answers_a_point_that_prunes_like_an_evaluated_one_without_a_trial():
    """With gamma off (not searched), k is never read: the climb's r moves cost no prune and no trial."""
    from crepe.methods.params import Pattern
    from pho.hillclimb import StudyEvaluator
    from pho.objective import base_config, config_key, with_params

    space, target = SearchSpace(params=("r", "alpha")), base_config(0.5, Pattern(), "sweep-admm")
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="minimize")
    scored = []

    def bowl(params):
        return (math.log(params["alpha"]) - math.log(2.0)) ** 2

    def score(params):
        scored.append(params)
        return bowl(params), {}

    evaluator = StudyEvaluator(study, space, score, 20, None,
                               key=lambda p: config_key(with_params(target, space.to_crepe(p))))
    point, value = climb(space, evaluator, refinements=1)
    assert point["alpha"] == pytest.approx(2.0, rel=0.2) and value == min(bowl(p) for p in scored)
    assert all(p["r"] == 1 for p in scored)  # every r move was answered from the trial it prunes like
    assert len(study.trials) == len(scored) == len({p["alpha"] for p in scored}) >= 3
