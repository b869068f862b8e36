"""Committed results are what their recorded commands give with today's code, and README shows them as is.

Nothing is pruned or loaded: each committed table's command is re-parsed through today's CLI parsers
and config objects (scripts/resolve_config.py, each script's ``planned``/``recorded``) and compared
with the config its records hold.
"""

import argparse
import dataclasses
import json
import re
import shlex
import subprocess
from pathlib import Path

import bench_composition
import bench_methods
import pytest
import results_provenance as rp
import update_readme
from resolve_config import (
    command_from_args,
    differences,
    prune_report,
    resolve,
    split_program,
)

ROOT = Path(__file__).resolve().parents[1]
TABLES = rp.tables()


@pytest.fixture(scope="module")
def checks():
    return {t.path: rp.check(t) for t in TABLES}


@pytest.mark.parametrize("table", TABLES, ids=[t.path for t in TABLES])
def test_every_committed_table_is_current_or_says_under_which_defaults_it_was_made(table, checks):
    c = checks[table.path]
    assert c.records > 0 or not c.resolvable, f"{table.path}: its command finds none of its records ({c.planned} planned)"
    if table.stale_note:
        assert c.stale, f"{table.path} now resolves to its recorded configs: drop its stale note"
    else:
        assert not c.stale, (f"{table.path} no longer resolves to its recorded config (re-run it, or note under "
                             f"which defaults it was made): {dict(list(c.differences.items())[:3])}")


def test_readme_blocks_are_what_update_readme_writes_now(checks):
    text = (ROOT / "README.md").read_text()
    assert update_readme.render(text, update_readme.blocks(checks)) == text, (
        "README.md's generated blocks differ from results/: run python scripts/update_readme.py")


def test_provenance_md_lists_every_table_with_its_status(checks):
    rows = {line.split(" | ")[0].lstrip("| "): line
            for line in (ROOT / "results" / "PROVENANCE.md").read_text().splitlines() if line.startswith("| results/")}
    assert set(rows) == {t.path for t in TABLES}, "run python scripts/results_provenance.py"
    for path, c in checks.items():
        assert ("**stale**" in rows[path]) == c.stale, f"{path}: status changed, run python scripts/results_provenance.py"


def _committed_results() -> list[str]:
    files = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True)
    if files.returncode:
        pytest.skip("not a git checkout")
    return files.stdout.split()


def test_every_committed_result_belongs_to_a_registered_table():
    orphans = [f for f in _committed_results() if f != "results/PROVENANCE.md" and not any(
        t.accounts_for(f) for t in TABLES)]
    assert not orphans, f"register these in scripts/results_provenance.py tables(): {orphans[:10]}"


def test_the_registry_accounts_for_same_stem_files_folders_and_patterns():
    table = rp.Table("results/x.md", ("python scripts/x.py",), covers=("results/x/*",))
    assert all(table.accounts_for(f) for f in ("results/x.md", "results/x.json", "results/x/a.json"))
    assert not any(table.accounts_for(f) for f in ("results/xy.md", "results/y.json"))
    assert rp.Table("results/f/", ("python scripts/f.py",)).accounts_for("results/f/a/b.json")


def test_no_run_log_is_committed():
    assert not [p for p in _committed_results() if p.endswith(".log")], "logs stay out of git (.gitignore)"


# --- the mechanism, on records made up here ------------------------------------------------------------

def _report(path: Path, command: list[str], **config_changes) -> None:
    resolved = resolve(command)
    config = {**resolved["config"], **config_changes}
    path.write_text(json.dumps({"config": config, "argv": resolved["run"]}))


def test_a_report_made_under_another_default_differs_and_a_baseline_ignores_crepe_parameters(tmp_path):
    crepe = ["python", "-m", "crepe.prune", "--method", "crepe", "--sparsity", "0.5"]
    old = resolve(crepe)["config"]["crepe"]
    _report(tmp_path / "crepe.json", crepe, crepe={**old, "gamma": 0.01})
    recorded = prune_report(tmp_path / "crepe.json")
    assert differences(recorded["config"], resolve(crepe)) == ["config.crepe.gamma: 0.01 -> 0.0"]
    ria = ["python", "-m", "crepe.prune", "--method", "ria", "--sparsity", "0.5"]
    _report(tmp_path / "ria.json", ria, crepe={**old, "gamma": 0.01})  # RIA never reads CRePE's parameters
    assert differences(prune_report(tmp_path / "ria.json")["config"], resolve(ria)) == []


def test_a_changed_default_makes_the_committed_methods_table_stale(monkeypatch):
    import crepe.cli.prune

    table = next(t for t in TABLES if t.path == "results/methods.md")
    original = crepe.cli.prune.config_from_args

    def gamma_default_moved(args):
        cfg = original(args)
        return dataclasses.replace(cfg, crepe=dataclasses.replace(cfg.crepe, gamma=0.05))

    monkeypatch.setattr(crepe.cli.prune, "config_from_args", gamma_default_moved)
    c = rp.check(table)
    assert c.stale and all(Path(k).name.startswith("crepe__") for k in c.differences)  # baselines unaffected
    assert "config.crepe.gamma: 0.0 -> 0.05" in c.differences["results/bench_methods/crepe__0.5.json"]
    monkeypatch.undo()
    parser = bench_methods.build_parser()
    parser.set_defaults(max_eval_windows=40)
    monkeypatch.setattr(bench_methods, "build_parser", lambda: parser)
    assert "run.max_eval_windows: 24 -> 40" in rp.check(table).differences["results/bench_methods/ria__0.5.json"]


def test_differences_compare_only_recorded_keys_and_treat_tuples_as_lists():
    assert differences({"a": 1, "b": (1, 2)}, {"a": 1, "b": [1, 2], "new": 3}) == []
    assert differences({"a": {"x": 1}}, {"a": {}}) == ["a.x: missing now"]
    assert differences({"cache_dir": "a"}, {"cache_dir": "b"}) == []  # where a cache lives is no result


def test_a_prune_config_recorded_before_the_update_existed_compares_as_update_none():
    old = {"method": "crepe", "sparsity": 0.5, "pattern": "unstructured"}  # no resolved_update key yet
    now = {**old, "update": None, "resolved_update": "sweep-admm"}
    assert differences(old, now) == ["resolved_update: 'none' -> 'sweep-admm'"]
    assert differences(old, {**now, "resolved_update": "none"}) == []
    assert differences({"method": "crepe"}, {"method": "crepe", "resolved_update": "obs"}) == []  # no PruneConfig


def test_commands_split_into_program_and_flags_and_stored_args_spell_out_a_command():
    assert split_program(shlex.split("OMP_NUM_THREADS=1 python scripts/x.py --a 1")) == ("scripts/x.py", ["--a", "1"])
    assert split_program(["python", "-m", "crepe.prune", "--sparsity", "0.6"]) == ("crepe.prune", ["--sparsity", "0.6"])
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--flag", action="store_true")
    ap.add_argument("--many", type=float, nargs="*", default=[])
    ap.add_argument("--none", default=None)
    stored = {"cmd": "sweep", "n": 3, "flag": True, "many": [0.5, 0.75], "none": None}
    argv = command_from_args(["python", "s.py"], ap, stored)
    assert vars(ap.parse_args(argv[2:])) == stored


def test_composition_refuses_an_out_dir_made_with_another_protocol(tmp_path):
    argv = ["--out-dir", str(tmp_path), "--cells", "2:4/plain", "--methods", "ria"]
    path, planned = next(iter(bench_composition.planned(argv).items()))
    made = {"config": planned["config"]["config"], "run": {**planned["config"]["run"], "nsamples": 16}}
    Path(path).write_text(json.dumps({"config": made["config"], "provenance": {"argv": None, "config": made}}))
    with pytest.raises(ValueError, match=r"another config \(run.nsamples: 16 -> 8\)"):
        bench_composition.check_out_dir(argv)
    bench_composition.check_out_dir([*argv, "--nsamples", "16"])


def test_the_committed_composition_table_is_in_the_folder_the_script_writes_by_default():
    defaults = bench_composition.build_parser().parse_args([])
    assert Path(defaults.out_dir) == Path("results/compose/smollm2_small")
    assert (ROOT / defaults.out_dir / "table.md").is_file()


def test_render_refuses_a_missing_or_unknown_block():
    text = "a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n"
    assert update_readme.render(text, {"x": "new"}) == "a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb\n"
    with pytest.raises(ValueError, match="do not match"):
        update_readme.render(text, {"x": "new", "y": "other"})
    with pytest.raises(ValueError, match="do not match"):
        update_readme.render(text.replace("x:", "z:"), {"x": "new"})


def test_every_generated_readme_block_names_its_source_and_status(checks):
    for name, body in update_readme.blocks(checks).items():
        first = body.splitlines()[0]
        assert re.match(r"<sub>Source: `results/", first) and ("current" in first or "older defaults" in first), name


def test_a_report_crepe_prune_writes_today_resolves_to_itself(tiny_folder, tiny_corpus, tmp_path, cli):
    from tiny_models import FAST_PRUNE_ARGS

    report = tmp_path / "r.json"
    flags = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST_PRUNE_ARGS,
             "--method", "crepe", "--pattern", "2:4", "--gamma", "0.1", "--report", str(report)]
    assert cli("crepe.prune", flags) == 0
    recorded = prune_report(report)
    assert recorded["command"][-len(flags):] == flags  # the stamp holds the flags as typed
    assert differences(recorded["config"], resolve(["python", "-m", "crepe.prune", *flags])) == []
    assert json.loads(report.read_text())["provenance"]["config"] == json.loads(report.read_text())["config"]
    assert differences(recorded["config"], resolve(["python", "-m", "crepe.prune", *flags, "--gamma", "0.2"])) == [
        "config.crepe.gamma: 0.1 -> 0.2"]
