"""--push-to-hub / push_to_hub=: checked before any work, uploaded after the save, one line on failure (no network here)."""

import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
from tiny_models import FAST_PRUNE_ARGS as FAST

import crepe
from crepe.output.hub import check_push_target

ROOT = Path(__file__).resolve().parents[1]


class FakeHub:
    """Stands in for ``huggingface_hub.HfApi``: records the calls; ``fail`` names a method that raises."""

    calls: list = []
    fail: str | None = None

    def __init__(self, *args, **kwargs):
        pass

    def _call(self, name, *args, **kwargs):
        FakeHub.calls.append((name, args, kwargs))
        if FakeHub.fail == name:
            raise OSError(f"{name} refused\nsecond line of detail")

    def whoami(self):
        self._call("whoami")
        return {"name": "someone"}

    def create_repo(self, repo_id, **kwargs):
        self._call("create_repo", repo_id, **kwargs)

    def upload_folder(self, **kwargs):
        self._call("upload_folder", **kwargs)
        return huggingface_hub.CommitInfo(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/1",
                                          commit_message="m", commit_description="", oid="1")


@pytest.fixture
def hub(monkeypatch):
    FakeHub.calls, FakeHub.fail = [], None
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return FakeHub


def _argv(model, corpus, save, repo="org/tiny-pruned"):
    return ["--model", str(model), "--calib-dataset", corpus, "--eval-dataset", "none", *FAST, "--save", str(save),
            "--push-to-hub", repo]


@pytest.mark.parametrize("repo, save, message", [("org/a/b", "out", "is not a hub repo id"),
                                                 ("bad name", "out", "is not a hub repo id"),
                                                 ("org/x", None, "give --save DIR")])
def test_the_target_is_checked_before_any_work(repo, save, message, hub):
    with pytest.raises(ValueError, match=message):
        check_push_target(repo, save)
    assert not hub.calls
    check_push_target(None, None)  # no push asked: nothing to check


def test_offline_the_push_fails_with_one_line_before_any_work(tiny_folder, tiny_corpus, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "crepe.prune", *_argv(tiny_folder, tiny_corpus, tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("crepe.prune: error: --push-to-hub org/tiny-pruned needs the hub, but HF_HUB_OFFLINE")
    assert not any(tmp_path.iterdir())


def test_without_an_accepted_token_the_push_fails_before_any_work(tiny_folder, tiny_corpus, tmp_path, hub, cli, capsys):
    hub.fail = "whoami"
    assert cli("crepe.prune", _argv(tiny_folder, tiny_corpus, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot sign in to the hub (whoami refused)" in err
    assert not any(tmp_path.iterdir())


def test_the_saved_folder_is_uploaded_into_a_created_repo(tiny_folder, tiny_corpus, tmp_path, hub, cli, capsys):
    assert cli("crepe.prune", _argv(tiny_folder, tiny_corpus, tmp_path / "out")) == 0
    names = [name for name, _, _ in hub.calls]
    assert names == ["whoami", "create_repo", "upload_folder"]
    _, args, kwargs = hub.calls[1]
    assert args == ("org/tiny-pruned",) and kwargs["exist_ok"] is True
    upload = hub.calls[2][2]
    assert upload["repo_id"] == "org/tiny-pruned" and Path(upload["folder_path"]) == tmp_path / "out"
    assert (tmp_path / "out" / "README.md").is_file()
    assert "pushed" in capsys.readouterr().out


def test_a_failed_upload_is_one_line_and_the_saved_folder_stays(tiny_folder, tiny_corpus, tmp_path, hub, cli, capsys):
    hub.fail = "upload_folder"
    assert cli("crepe.prune", _argv(tiny_folder, tiny_corpus, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("crepe.prune")]  # the rest: progress bars
    assert "Traceback" not in err and line.startswith("crepe.prune: error: upload to org/tiny-pruned failed")
    assert line.endswith(f"the pruned model is saved in {tmp_path / 'out'}: retry with "
                         f"`hf upload org/tiny-pruned {tmp_path / 'out'}`")
    assert {"config.json", "README.md", "recipe.yaml", "model.safetensors"} <= {p.name for p in (tmp_path / "out").iterdir()}


def test_crepe_save_pushes_too(tiny_folder, tiny_corpus, tmp_path, hub):
    model = crepe.oneshot(str(tiny_folder), dataset=tiny_corpus, num_calibration_samples=4, max_seq_length=32)
    crepe.save(model, tmp_path / "out", push_to_hub="org/tiny")
    assert [name for name, _, _ in hub.calls] == ["whoami", "create_repo", "upload_folder"]
    assert Path(hub.calls[2][2]["folder_path"]) == tmp_path / "out"
