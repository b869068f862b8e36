"""A killed or interrupted run leaves the old output or the new one, never a mix nor a stray temporary:
crepe's temporary names are swept by the next run into the same folder, a folder caught between the two
renames of its replacement is put back, and a PHO study keeps every completed trial.

Kills are real (SIGKILL in a subprocess) at the worst moments, chosen by wrapping the function that
reaches them, so no test waits on a clock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from tiny_models import FAST_PRUNE_ARGS as FAST
from tiny_models import HANG_GUARD_S

from crepe.io.files import sweep_stale, temp_prefix, write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


def dead_pid() -> int:
    """The id of a process that has exited (its number is not reused this soon)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True, timeout=HANG_GUARD_S)
    return int(proc.stdout)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".crepe-" in p.name)


def killed(code: str, argv: list[str]) -> None:
    """Run ``code`` (which wraps a function to SIGKILL the process) then ``python -m`` ``argv`` in a subprocess."""
    script = f"import os, signal, sys\n{code}\nfrom crepe.io.console import run_cli\nsys.argv = {argv!r}\n"
    proc = subprocess.run([sys.executable, "-c", script + RUN], capture_output=True, text=True, timeout=HANG_GUARD_S,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -9, proc.stderr[-2000:]


RUN = "from crepe.cli.prune import main\nrun_cli('crepe.prune', main)\n"


def test_the_sweep_removes_what_dead_processes_left_and_puts_a_replaced_folder_back(tmp_path):
    pid = dead_pid()
    (tmp_path / f".out.crepe-tmp-{pid}-abc").mkdir()
    (tmp_path / f".report.json.crepe-tmp-{pid}-x.tmp").write_text("half")
    (tmp_path / f".model.crepe-old-{pid}").mkdir()
    (tmp_path / f".model.crepe-old-{pid}" / "config.json").write_text("{}")
    (tmp_path / f".other.crepe-old-{pid}").mkdir()
    (tmp_path / "other").mkdir()  # its replacement was installed: the old copy is garbage
    mine = tmp_path / f"{temp_prefix(tmp_path / 'live')}xyz"
    mine.mkdir()  # this process is alive: its temporary stays
    (tmp_path / ".hidden.user").mkdir()
    sweep_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".hidden.user", mine.name, "model", "other"])
    assert (tmp_path / "model" / "config.json").is_file()


def test_an_atomic_write_sweeps_a_killed_writer_s_temporary_file(tmp_path):
    stale = tmp_path / f".r.json.crepe-tmp-{dead_pid()}-q.tmp"
    stale.write_text("{")
    write_json_atomic(tmp_path / "r.json", {"ok": True})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize("offload", ["none", "disk"])
def test_sigkill_before_the_install_leaves_the_old_folder_and_the_next_run_sweeps(offload, tiny_folder, tiny_corpus,
                                                                                  tmp_path, cli):
    out = tmp_path / "out"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST,
            "--offload", offload, "--save", str(out)]
    assert cli("crepe.prune", argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    kill = ("import crepe.io.files as files\n"
            "def install(tmp, path): os.kill(os.getpid(), signal.SIGKILL)\n"
            "files.install_folder = install\n"
            "import crepe.output.folder, crepe.streaming.writer\n"
            "crepe.output.folder.install_folder = crepe.streaming.writer.install_folder = install\n")
    killed(kill, ["crepe.prune", *argv, "--method", "ria", "--overwrite"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old folder, whole
    assert len(leftovers(tmp_path)) == 1  # the complete new one, never installed
    assert cli("crepe.prune", [*argv, "--method", "ria", "--overwrite"]) == 0
    assert leftovers(tmp_path) == []
    assert json.loads((out / "config.json").read_text())["pruning_config"]["config"]["method"] == "ria"


def test_sigkill_between_the_two_renames_puts_the_old_folder_back(tiny_folder, tiny_corpus, tmp_path, cli, capsys):
    out = tmp_path / "out"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST,
            "--save", str(out)]
    assert cli("crepe.prune", argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    kill = ("real_replace = os.replace\n"
            f"def replace(src, dst):\n"
            f"    if str(dst) == {str(out)!r} and '.crepe-tmp-' in str(src): os.kill(os.getpid(), signal.SIGKILL)\n"
            "    real_replace(src, dst)\n"
            "os.replace = replace\n")
    killed(kill, ["crepe.prune", *argv, "--method", "ria", "--overwrite"])
    assert not out.exists() and len(leftovers(tmp_path)) == 2  # the old folder moved aside, the new one beside it
    assert cli("crepe.prune", argv) == 2  # the sweep put the old folder back first: it exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("offload", ["none", "disk"])
def test_ctrl_c_while_saving_leaves_the_old_folder_and_no_temporary(offload, tiny_folder, tiny_corpus, tmp_path, cli,
                                                                   monkeypatch):
    out = tmp_path / "out"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST,
            "--offload", offload, "--save", str(out)]
    assert cli("crepe.prune", argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("crepe.output.folder.write_card_and_recipe", interrupt)  # in memory: the last step
    monkeypatch.setattr("crepe.run.job.write_extras", interrupt)  # streamed: the last step before the rename
    assert cli("crepe.prune", [*argv, "--method", "ria", "--overwrite"]) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and leftovers(tmp_path) == []


def test_a_killed_search_keeps_its_completed_trials_and_resumes(tiny_folder, tiny_corpus, tmp_path, cli):
    db = f"sqlite:///{tmp_path / 'pho.db'}"
    argv = ["--model", str(tiny_folder), "--dataset", tiny_corpus, "--nsamples", "4", "--seqlen", "32",
            "--x-tokens", "16", "--cache-dir", str(tmp_path / "cache"), "--log-level", "WARNING", "--storage", db,
            "--study-name", "s", "--n-trials", "4", "--best-config", str(tmp_path / "best.json"), "--no-plots"]
    kill = ("import pho.search as search\n"
            "make = search.make_objective\n"
            "def make_killing(*args, **kwargs):\n"
            "    objective = make(*args, **kwargs)\n"
            "    def run(trial):\n"
            "        if trial.number == 2: os.kill(os.getpid(), signal.SIGKILL)\n"
            "        return objective(trial)\n"
            "    return run\n"
            "search.make_objective = make_killing\n")
    script = f"import os, signal, sys\n{kill}\nfrom crepe.io.console import run_cli\nsys.argv = {['pho.search', *argv]!r}\n"
    proc = subprocess.run([sys.executable, "-c", script + "run_cli('pho.search', search.main)\n"], capture_output=True,
                          text=True, timeout=HANG_GUARD_S, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -9, proc.stderr[-2000:]
    study = optuna.load_study(study_name="s", storage=db)
    done = [(t.number, t.value, t.params) for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
    assert [n for n, _, _ in done] == [0, 1] and not (tmp_path / "best.json").exists()
    assert cli("pho.search", argv) == 0
    study = optuna.load_study(study_name="s", storage=db)
    after = [(t.number, t.value, t.params) for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
    assert after[:2] == done and len(after) == 4
    assert json.loads((tmp_path / "best.json").read_text())["complete_trials"] == 4
