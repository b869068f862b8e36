"""The commands: the console scripts of pyproject.toml (``crepe-prune``, ``crepe-eval-ppl``, ...) and the
``python -m`` modules that run the same functions (``crepe.prune``, and ``eval.*`` from the repository
root). Each imports its command only when called: ``crepe.prune`` and ``eval.ppl`` may restart
themselves once for huge pages (:mod:`crepe.io.memory`), before the heavy imports."""

from __future__ import annotations

import sys
from pathlib import Path

from crepe.io.console import run_cli
from crepe.io.memory import reexec_with_hugepage_malloc


def prog(module: str) -> str:
    """The name errors start with: the console script's (``crepe-eval-ppl``), else the module's (``eval.ppl``)."""
    name = Path(sys.argv[0]).name
    return name if name.startswith(("crepe-", "pho-")) else module


def prune() -> None:
    reexec_with_hugepage_malloc()
    import torch

    from crepe.cli.prune import main

    torch.set_grad_enabled(False)
    run_cli(prog("crepe.prune"), main)


def ppl() -> None:
    reexec_with_hugepage_malloc()
    from crepe.cli.ppl import main

    run_cli(prog("eval.ppl"), main)


def zeroshot() -> None:
    from crepe.cli.zeroshot import main

    run_cli(prog("eval.zeroshot"), main)


def speed() -> None:
    from crepe.cli.speed import main

    run_cli(prog("eval.speed"), main)


def vit() -> None:
    from crepe.vit.__main__ import main

    run_cli(prog("crepe.vit"), main)
