"""python -m pho.search on a tiny model: trials, RIA first, best config, resume, plots, bad input."""

import json

import optuna
import pytest

from crepe.config import load_crepe_params


def search_args(common_args, tmp_path, name="s", n=4, extra=()):
    return [*common_args, "--storage", f"sqlite:///{tmp_path / 'pho.db'}", "--study-name", name,
            "--n-trials", str(n), "--best-config", str(tmp_path / "best.json"), *extra]


def load(tmp_path, name="s"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'pho.db'}")


def states(study):
    return [(t.number, t.state.name, t.value, t.params) for t in study.get_trials()]


def test_search_runs_n_trials_with_ria_first_and_writes_a_loadable_best_config(cli, common_args, tmp_path):
    assert cli("pho.search", search_args(common_args, tmp_path, n=4, extra=["--update", "sweep-admm"])) == 0
    study = load(tmp_path)
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    ria = trials[0]
    assert ria.params == {"r": 1, "alpha": 1.0, "beta": 1.0, "gamma": 1e-4}  # the sweep never reads act_power
    assert ria.user_attrs["crepe"]["gamma"] == 0.0 and ria.user_attrs["label"] == "ria"
    assert all(t.user_attrs["realised_sparsity"] == pytest.approx(0.5, abs=1e-3) for t in trials)
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["value"] == study.best_value and best["trial"] == study.best_trial.number
    params = load_crepe_params(tmp_path / "best.json")
    assert params.kernel == 2 * study.best_trial.params["r"] + 1 and params.kernel % 2 == 1
    log = json.loads((tmp_path / "best_trials.json").read_text())
    assert [t["number"] for t in log["trials"]] == [0, 1, 2, 3]
    assert (tmp_path / "best_history.png").stat().st_size > 1000
    assert "importance" in best["plots"]
    assert best["proxy"] == "e2e" and study.user_attrs["objective"]["proxy"] == "e2e"  # auto, unstructured
    assert study.user_attrs["objective"]["e2e_windows"] == 4  # the e2e default


def test_the_space_searches_what_the_pipeline_reads_and_drops_a_parameter_it_never_reads(
        cli, common_args, tmp_path, caplog):
    from crepe.methods.params import Pattern
    from pho.objective import base_config
    from pho.study_cli import read_space_params

    assert "act_power" not in read_space_params(base_config(0.5, Pattern(), "sweep-admm"), None)  # the sweep
    with pytest.raises(ValueError, match="admm-grad update reads none of the searched"):  # crepe's default update
        read_space_params(base_config(0.5, Pattern()), None)  # re-chooses its mask from the weights
    assert "act_power" in read_space_params(base_config(0.5, Pattern(), "none"), None)  # the mask score reads it
    assert "act_power" in read_space_params(base_config(0.5, Pattern(), "admm"), None)  # so does a fixed-mask update
    with caplog.at_level("WARNING", logger="pho.study_cli"):
        assert cli("pho.search", search_args(common_args, tmp_path, n=2, extra=["--params", "alpha,act_power",
                                                                                 "--update", "sweep-admm", "--no-plots"])) == 0
    assert "not searching act_power: the sweep-admm update never reads it" in caplog.text
    assert set(load(tmp_path).trials[0].params) == {"alpha"}
    assert cli("pho.search", search_args(common_args, tmp_path, name="m", n=2, extra=[
        "--params", "alpha,act_power", "--update", "none", "--no-plots"])) == 0
    assert set(load(tmp_path, "m").trials[0].params) == {"alpha", "act_power"}
    assert cli("pho.search", search_args(common_args, tmp_path, name="e", extra=["--params", "act_power",
                                                                              "--update", "sweep-admm"])) == 2
    assert cli("pho.search", search_args(common_args, tmp_path, name="g", extra=["--update", "admm-grad"])) == 2


def test_a_search_fits_the_mask_score_by_default(cli, common_args, tmp_path):
    """Without --update the trials prune mask-only (crepe's default update would read no coefficient),
    and different points give different values."""
    assert cli("pho.search", search_args(common_args, tmp_path, n=3, extra=["--no-plots"])) == 0
    study = load(tmp_path)
    assert "update" not in study.user_attrs["objective"]  # update_attrs: none is recorded as no update
    values = {round(t.value, 9) for t in study.trials if t.value is not None}
    assert len(values) > 1


def test_the_best_config_is_consumed_by_crepe_prune(cli, common_args, tmp_path, tiny_folder, tiny_corpus):
    assert cli("pho.search", search_args(common_args, tmp_path, n=3, extra=["--no-plots"])) == 0
    report = tmp_path / "report.json"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--nsamples", "4", "--seqlen", "32",
            "--eval-dataset", "none", "--config", str(tmp_path / "best.json"), "--report", str(report)]
    assert cli("crepe.prune", argv) == 0
    crepe = json.loads(report.read_text())["config"]["crepe"]
    assert crepe == json.loads((tmp_path / "best.json").read_text())["crepe"]


def test_rerunning_the_same_command_resumes_without_losing_or_repeating_trials(cli, common_args, tmp_path):
    assert cli("pho.search", search_args(common_args, tmp_path, n=3, extra=["--no-plots"])) == 0
    before = states(load(tmp_path))
    assert cli("pho.search", search_args(common_args, tmp_path, n=6, extra=["--no-plots"])) == 0
    after = states(load(tmp_path))
    assert len(after) == 6 and after[:3] == before
    assert cli("pho.search", search_args(common_args, tmp_path, n=6, extra=["--no-plots"])) == 0
    assert states(load(tmp_path)) == after


@pytest.mark.parametrize("proxy", ["e2e", "e2e_seq"])
def test_an_e2e_search_stores_its_window_count_and_minimises_the_calibration_nll(cli, common_args, tmp_path, proxy):
    extra = ["--proxy", proxy, "--e2e-windows", "2", "--params", "alpha,beta", "--no-plots"]
    assert cli("pho.search", search_args(common_args, tmp_path, n=3, extra=extra)) == 0
    study = load(tmp_path)
    assert study.user_attrs["objective"]["proxy"] == proxy and study.user_attrs["objective"]["e2e_windows"] == 2
    assert study.direction.name == "MINIMIZE"
    assert all(0 < t.value < 20 for t in study.trials)  # a mean token NLL (log PPL) of a tiny vocabulary
    assert json.loads((tmp_path / "best.json").read_text())["proxy"] == proxy


def test_tpe_sampler_and_a_two_four_pattern_search(cli, common_args, tmp_path):
    extra = ["--sampler", "tpe", "--pattern", "2:4", "--proxy", "gini", "--params", "alpha,gamma", "--no-plots",
             "--update", "none"]  # a per-linear proxy scores masks
    assert cli("pho.search", search_args(common_args, tmp_path, n=3, extra=extra)) == 0
    study = load(tmp_path)
    assert set(study.trials[1].params) == {"alpha", "gamma"}
    assert study.user_attrs["objective"]["pattern"] == "2:4"
    assert study.direction.name == "MAXIMIZE"


@pytest.mark.parametrize("extra, message", [
    (["--sampler", "grid"], "unknown sampler 'grid'"),
    (["--params", ""], "empty search space"),
    (["--alpha-range", "5,1"], "empty search space"),
    (["--r-range", "2,7"], "different space"),
    (["--sparsity", "0.6"], "different objective"),
    (["--proxy", "nope"], "unknown proxy"),
    (["--e2e-windows", "5"], "--e2e-windows must be in [1, --nsamples=4]"),
    (["--proxy", "e2e", "--layer-stride", "2"], "--layer-stride applies to per-linear proxies"),
])
def test_bad_input_fails_with_one_line_and_leaves_the_study_intact(cli, common_args, tmp_path, capsys, extra, message):
    assert cli("pho.search", search_args(common_args, tmp_path, n=3, extra=["--no-plots"])) == 0
    before, attrs = states(load(tmp_path)), load(tmp_path).user_attrs
    capsys.readouterr()
    assert cli("pho.search", search_args(common_args, tmp_path, n=5, extra=["--no-plots", *extra])) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert states(load(tmp_path)) == before and load(tmp_path).user_attrs == attrs


def test_unwritable_storage_path_is_a_clear_error(cli, common_args, tmp_path, capsys):
    argv = [*common_args, "--storage", f"sqlite:///{tmp_path / 'missing' / 'x.db'}", "--study-name", "s",
            "--best-config", str(tmp_path / "b.json")]
    assert cli("pho.search", argv) == 2
    assert "not writable" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


def test_optuna_dashboard_reads_the_study_database(cli, common_args, tmp_path):
    """optuna-dashboard (its WSGI app, no server) lists the study and serves its trials."""
    dashboard = pytest.importorskip("optuna_dashboard")
    from wsgiref.util import setup_testing_defaults

    assert cli("pho.search", search_args(common_args, tmp_path, n=3, extra=["--no-plots"])) == 0
    app = dashboard.wsgi(f"sqlite:///{tmp_path / 'pho.db'}")

    def get(path):
        status = []
        environ = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
        assert status[0].startswith("200"), status
        return json.loads(body)

    studies = get("/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["s"]
    detail = get(f"/api/studies/{studies[0]['study_id']}")
    assert len(detail["trials"]) == 3 and all(t["state"] == "Complete" for t in detail["trials"])
