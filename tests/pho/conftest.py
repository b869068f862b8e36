"""Shared fixtures of the PHO tests: a tiny Llama folder, a text corpus, an in-process CLI runner."""

import importlib
import sys

import pytest
from tiny_models import SAMPLE_TEXT, save_tiny_folder

from crepe.cli import run_cli


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    return save_tiny_folder(tmp_path_factory.mktemp("pho_tiny") / "llama")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("pho_data") / "corpus.txt"
    path.write_text(SAMPLE_TEXT)
    return f"text:{path}"


@pytest.fixture
def common_args(tiny_folder, corpus, tmp_path):
    """Flags that make a PHO command run in a second on the tiny model."""
    return ["--model", str(tiny_folder), "--dataset", corpus, "--nsamples", "4", "--seqlen", "32",
            "--x-tokens", "16", "--cache-dir", str(tmp_path / "cache"), "--log-level", "WARNING"]


@pytest.fixture
def cli(monkeypatch):
    """Run ``python -m <module> argv`` in-process; returns the exit code."""
    def run(module: str, argv: list[str]) -> int:
        main = importlib.import_module(module).main
        monkeypatch.setattr(sys, "argv", [module, *argv])
        with pytest.raises(SystemExit) as exit_info:
            run_cli(module, main)
        return exit_info.value.code
    return run
