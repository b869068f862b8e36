"""The method registry: every pruning method by name, the single source that the config, the
per-linear path, the model loop, the CLIs and the benchmarks read. Importing this module imports the
modules that declare the built-in methods (:mod:`crepe.methods.declare`), so the table is complete.
"""

from __future__ import annotations

import torch

from crepe.methods import scorers, sparsegpt  # noqa: F401  (their import declares the built-in methods)
from crepe.methods.declare import _METHODS, Method
from crepe.methods.params import CrepeParams
from crepe.methods.scorers import InputStats


def methods() -> dict[str, Method]:
    """Every registered method by name, in registration order."""
    return dict(_METHODS)


def method_names() -> tuple[str, ...]:
    return tuple(methods())


def get_method(name: str) -> Method:
    """The entry of ``name``; an unknown name raises ValueError listing the choices."""
    known = methods()
    if name not in known:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(known)}")
    return known[name]


def score(method: str, w: torch.Tensor, stats: InputStats, params: CrepeParams | None = None) -> torch.Tensor:
    """Score ``w`` [out, in] with the named method's score function, in float32."""
    entry = get_method(method)
    if entry.score is None:
        raise ValueError(f"method {method!r} has no score function (it selects its own mask)")
    return entry.score(w.float(), stats, params or CrepeParams())
