"""crepe.io.provenance: commit (also outside git), stable config hash, the record and its markdown line."""

import hashlib
import json
import subprocess

import pytest

from crepe.io.provenance import (
    UNKNOWN,
    canonical_json,
    config_hash,
    file_commit,
    git_commit,
    markdown_stamp,
    provenance,
)


@pytest.fixture(autouse=True)
def _no_outer_repository(monkeypatch):
    """Run git on the folders made here only, even under a hook or a shell that sets GIT_DIR & co."""
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
        monkeypatch.delenv(name, raising=False)


def _repo(path):
    def git(*args):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (path / "a.txt").write_text("one\n")
    (path / "results").mkdir()
    (path / "results" / "t.md").write_text("table\n")
    git("add", "a.txt", "results/t.md")
    git("commit", "-q", "-m", "first")
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def test_git_commit_is_the_short_head_and_says_dirty_when_tracked_files_changed(tmp_path):
    head = _repo(tmp_path)
    assert git_commit(tmp_path) == head and file_commit("a.txt", tmp_path) == head
    (tmp_path / "untracked.txt").write_text("x")
    (tmp_path / "results" / "t.md").write_text("rewritten by a run\n")
    assert git_commit(tmp_path) == head  # untracked files and results (a run's outputs) are not code
    assert git_commit(tmp_path / "results") == head
    (tmp_path / "a.txt").write_text("two\n")
    assert git_commit(tmp_path) == git_commit(tmp_path / "results") == head + "-dirty"


def test_outside_a_repository_the_commit_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_commit(tmp_path) == UNKNOWN and file_commit("a.txt", tmp_path) == UNKNOWN
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable at all
    assert git_commit(tmp_path) == UNKNOWN


def test_config_hash_ignores_key_order_and_changes_with_any_value():
    a = {"method": "crepe", "crepe": {"alpha": 1.0, "kernel": 7}}
    b = {"crepe": {"kernel": 7, "alpha": 1.0}, "method": "crepe"}
    assert canonical_json(a) == canonical_json(b) == '{"crepe":{"alpha":1.0,"kernel":7},"method":"crepe"}'
    assert config_hash(a) == config_hash(b) == hashlib.sha256(canonical_json(a).encode()).hexdigest()
    assert config_hash({**a, "method": "ria"}) != config_hash(a)


@pytest.mark.parametrize("command", [["python", "-m", "crepe.prune", "--model", "a b"],
                                     "python -m crepe.prune --model 'a b'"])
def test_provenance_records_commit_command_config_and_hash(command):
    config = {"method": "crepe", "sparsity": 0.5}
    record = provenance(command, config, with_versions=False)
    assert record["command"] == "python -m crepe.prune --model 'a b'"
    assert record["argv"] == ["python", "-m", "crepe.prune", "--model", "a b"]
    assert record["config"] == config and record["config_sha256"] == config_hash(config)
    assert record["commit"] == git_commit() and record["date"][:2] == "20"
    json.dumps(record)  # stored as JSON as is
    line = markdown_stamp(record)
    assert line.startswith("Made by `python -m crepe.prune --model 'a b'` at commit ")
    assert record["config_sha256"][:12] in line and "\n" not in line


def test_provenance_reuses_the_report_versions():
    from crepe.io.environment import versions

    assert provenance(["x"], {})["versions"] == versions()


def test_versions_name_the_machine():
    from crepe.io.environment import versions

    import torch

    found = versions()
    assert found["cpu"].strip() and found["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    from crepe.io.environment import bfloat16_native

    assert found["cpu_bfloat16_native"] == str(bfloat16_native("cpu"))  # what --admm-grad-products auto ran
