"""PHO test fixtures (the tiny folder, corpus and CLI runner come from tests/conftest.py)."""

import pytest


@pytest.fixture
def common_args(tiny_folder, tiny_corpus, tmp_path):
    """Flags that make a PHO command run in a second on the tiny model."""
    return ["--model", str(tiny_folder), "--dataset", tiny_corpus, "--nsamples", "4", "--seqlen", "32",
            "--x-tokens", "16", "--cache-dir", str(tmp_path / "cache"), "--log-level", "WARNING"]
