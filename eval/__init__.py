"""``python -m eval.ppl``, ``eval.zeroshot`` and ``eval.speed`` from the repository root: thin shims over
:mod:`crepe.cli.scripts`, kept for the design card's commands. Not installed (``eval`` is a generic
top-level name, taken on PyPI): installed, the commands are ``crepe-eval-ppl``, ``crepe-eval-zeroshot``
and ``crepe-eval-speed``; the code is ``crepe.cli.ppl``, ``crepe.cli.zeroshot`` and ``crepe.cli.speed``."""
