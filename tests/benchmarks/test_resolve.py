"""benchmarks.resolve and the stale check: a stored config against what its command gives today."""

import json
import shlex
from pathlib import Path

import pytest
from tiny_models import FAST_PRUNE_ARGS

import benchmarks.composition as composition
from benchmarks.common import Table, stale
from benchmarks.resolve import differences, prune_report, resolve, split_program


def _report(path: Path, command: list[str], **config_changes) -> None:
    resolved = resolve(command)
    path.write_text(json.dumps({"config": {**resolved["config"], **config_changes}, "options": resolved["run"]}))


def test_a_report_made_under_another_default_differs_and_a_baseline_ignores_crepe_parameters(tmp_path):
    crepe = ["python", "-m", "crepe.prune", "--method", "crepe", "--sparsity", "0.5", "--update", "none"]
    old = resolve(crepe)["config"]["crepe"]
    _report(tmp_path / "crepe.json", crepe, crepe={**old, "gamma": 0.01})
    assert differences(prune_report(tmp_path / "crepe.json")["config"], resolve(crepe)) == [
        "config.crepe.gamma: 0.01 -> 0.0"]
    default = crepe[:-2]  # crepe's default update (admm-grad) chooses its mask from the weights: it reads none
    _report(tmp_path / "default.json", default, crepe={**old, "gamma": 0.01, "act_power": 1.0})
    assert differences(prune_report(tmp_path / "default.json")["config"], resolve(default)) == []
    ria = ["python", "-m", "crepe.prune", "--method", "ria", "--sparsity", "0.5"]
    _report(tmp_path / "ria.json", ria, crepe={**old, "gamma": 0.01})  # RIA never reads CRePE's parameters
    assert differences(prune_report(tmp_path / "ria.json")["config"], resolve(ria)) == []


def test_differences_compare_only_recorded_keys_and_treat_tuples_as_lists():
    assert differences({"a": 1, "b": (1, 2)}, {"a": 1, "b": [1, 2], "new": 3}) == []
    assert differences({"a": {"x": 1}}, {"a": {}}) == ["a.x: missing now"]
    assert differences({"cache_dir": "a"}, {"cache_dir": "b"}) == []  # where a cache lives is no result
    old_admm_grad = {"resolved_update": "admm-grad", "admm_grad_damp": 0.5}  # before --admm-grad-iterations
    assert differences({"p": old_admm_grad}, {"p": {**old_admm_grad, "admm_grad_iterations": 20}}) == []
    assert differences({"p": old_admm_grad}, {"p": {**old_admm_grad, "admm_grad_iterations": 15}}) == [
        "p.admm_grad_iterations: 20 (before the option) -> 15"]


def test_the_admm_grad_options_of_a_prune_that_ran_another_update_are_not_compared():
    """A record of SparseGPT or mask-only CRePE stores the admm-grad update's options but never read
    them: a moved default of theirs leaves it current; an admm-grad record is still compared."""
    for update in ("none", "admm", "alps"):
        other = {"method": "crepe", "resolved_update": update, "admm_grad_iterations": 15, "dense_target": 0.3}
        assert differences(other, {**other, "admm_grad_iterations": 13, "dense_target": 0.0}) == []
        assert differences(other, {**other, "resolved_update": "obs"}) == [f"resolved_update: {update!r} -> 'obs'"]
    ran = {"method": "crepe", "resolved_update": "admm-grad", "admm_grad_iterations": 15}
    assert differences(ran, {**ran, "admm_grad_iterations": 13}) == ["admm_grad_iterations: 15 -> 13"]


def test_commands_split_into_program_and_flags():
    assert split_program(shlex.split("OMP_NUM_THREADS=1 python -m benchmarks.x --a 1")) == ("benchmarks.x", ["--a", "1"])
    assert split_program(["python", "-m", "crepe.prune", "--sparsity", "0.6"]) == ("crepe.prune", ["--sparsity", "0.6"])


def test_composition_refuses_an_out_dir_made_with_another_protocol(tmp_path):
    argv = ["--out-dir", str(tmp_path), "--cells", "2:4/plain", "--methods", "ria"]
    path, planned = next(iter(composition.planned(argv).items()))
    made = {"config": planned["config"]["config"], "run": {**planned["config"]["run"], "nsamples": 16}}
    Path(path).write_text(json.dumps({"config": made["config"], "provenance": {"argv": None, "config": made}}))
    with pytest.raises(ValueError, match=r"another config \(run.nsamples: 16 -> 8\)"):
        composition.check_out_dir(argv)
    composition.check_out_dir([*argv, "--nsamples", "16"])


def test_a_changed_default_makes_a_stored_cell_stale(tmp_path, monkeypatch):
    """The check the results group runs: a missing record, then a current one, then a moved default."""
    command = f"python -m benchmarks.composition --out-dir {tmp_path} --cells 2:4/plain --methods ria"
    table = Table(str(tmp_path / "table.md"), (command,))
    assert list(stale(composition, table).values()) == [["missing"]]
    path, planned = next(iter(composition.planned(shlex.split(command)[3:]).items()))
    Path(path).write_text(json.dumps({"config": planned["config"]["config"],
                                      "provenance": {"argv": None, "config": planned["config"]}}))
    assert stale(composition, table) == {}
    parser = composition.build_parser()
    parser.set_defaults(nsamples=16)  # as if the default moved
    monkeypatch.setattr(composition, "build_parser", lambda: parser)
    assert stale(composition, table) == {path: ["run.nsamples: 8 -> 16"]}


def test_a_report_crepe_prune_writes_today_resolves_to_itself(tiny_folder, tiny_corpus, tmp_path, cli):
    report = tmp_path / "r.json"
    flags = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST_PRUNE_ARGS,
             "--method", "crepe", "--update", "none", "--pattern", "2:4", "--gamma", "0.1", "--report", str(report)]
    assert cli("crepe.prune", flags) == 0
    recorded = prune_report(report)
    assert recorded["command"][-len(flags):] == flags  # the stamp holds the flags as typed
    assert differences(recorded["config"], resolve(["python", "-m", "crepe.prune", *flags])) == []
    assert differences(recorded["config"], resolve(["python", "-m", "crepe.prune", *flags, "--gamma", "0.2"])) == [
        "config.crepe.gamma: 0.1 -> 0.2"]
