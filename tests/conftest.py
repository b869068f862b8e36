"""Shared test fixtures: a tiny Llama folder with a tokenizer, a text corpus, an in-process CLI runner."""

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tiny_models helpers

from tiny_models import SAMPLE_TEXT, save_tiny_folder  # noqa: E402

from crepe.io.console import run_cli  # noqa: E402


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A saved 2-layer random Llama with a 128-token BPE tokenizer."""
    return save_tiny_folder(tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """``text:PATH`` of a small plain-text corpus."""
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(SAMPLE_TEXT)
    return f"text:{path}"


# a `python -m` command whose main() lives elsewhere (eval/ holds shims over crepe.cli.*: crepe.cli.scripts)
COMMAND_MODULES = {"crepe.prune": "crepe.cli.prune", "crepe.vit": "crepe.vit.__main__", "eval.ppl": "crepe.cli.ppl",
                   "eval.zeroshot": "crepe.cli.zeroshot", "eval.speed": "crepe.cli.speed"}


@pytest.fixture
def cli(monkeypatch):
    """Run ``python -m <module> argv`` in-process the way the console does; returns the exit code."""
    def run(module: str, argv: list[str]) -> int:
        main = importlib.import_module(COMMAND_MODULES.get(module, module)).main
        monkeypatch.setattr(sys, "argv", [module, *argv])
        with pytest.raises(SystemExit) as exit_info:
            run_cli(module, main)
        return exit_info.value.code
    return run


@pytest.fixture(autouse=True)
def _grad_mode_restored():
    """Scripts' main() turns autograd off for their process; in-process calls must not leak it into later tests."""
    import torch

    enabled = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(enabled)
