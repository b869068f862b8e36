"""crepe: post-training pruning of LLMs (CRePE, RIA, Wanda, SparseGPT, ...) and ViTs (ToaSt).

Importing this package has no side effects: no global RNG draws, no logging handlers, no
heavy imports. Entry points: ``crepe-prune`` (``python -m crepe.prune``), ``crepe-eval-ppl``,
``pho-search``, ``crepe-vit`` and the others of :mod:`crepe.cli.scripts`; from Python,
``crepe.oneshot(...)`` and ``crepe.save(...)``.
"""

from crepe.io.environment import VERSION as __version__  # noqa: F401  (stdlib imports only)


def __getattr__(name: str):
    """``crepe.oneshot`` and ``crepe.save`` (the Python API, :mod:`crepe.run.api`), imported on first use."""
    if name in ("oneshot", "save"):
        from crepe.run import api

        return getattr(api, name)
    raise AttributeError(f"module 'crepe' has no attribute {name!r}")
