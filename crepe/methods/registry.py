"""The registry: every pruning method and every weight update by name, the single source that the
config, the per-linear path, the model loop, the CLIs and the benchmarks read. Importing this module
imports the modules that declare the built-in methods and updates (:mod:`crepe.methods.declare`), so
the tables are complete.
"""

from __future__ import annotations

import torch

# importing these declares the built-in methods and updates, in this order
from crepe.methods import scorers, sparsegpt  # noqa: F401

# isort: split
from crepe.methods import gradual  # noqa: F401

# isort: split
from crepe.methods import alps, sweep  # noqa: F401  (sweep imports obs and admm: none, obs, admm, sweep, sweep-admm)
from crepe.methods.declare import _METHODS, _UPDATES, Method, Update
from crepe.methods.params import CrepeParams
from crepe.methods.scorers import InputStats


def _entry(table: dict, what: str, name: str):
    """``table[name]``; an unknown name raises ValueError listing the choices."""
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; choose from {', '.join(table)}")
    return table[name]


def methods() -> dict[str, Method]:
    """Every registered method by name, in registration order."""
    return dict(_METHODS)


def updates() -> dict[str, Update]:
    """Every registered weight update by name, in registration order (declared in :mod:`crepe.methods.obs`, ``admm``, ``sweep``)."""
    return dict(_UPDATES)


def method_names() -> tuple[str, ...]:
    return tuple(_METHODS)


def update_names() -> tuple[str, ...]:
    return tuple(_UPDATES)


def get_method(name: str) -> Method:
    """The entry of the method ``name``; an unknown name raises ValueError listing the choices."""
    return _entry(_METHODS, "method", name)


def get_update(name: str) -> Update:
    """The entry of the update ``name``; an unknown name raises ValueError listing the choices."""
    return _entry(_UPDATES, "update", name)


def score(method: str, w: torch.Tensor, stats: InputStats, params: CrepeParams | None = None) -> torch.Tensor:
    """Score ``w`` [out, in] with the named method's score function, in float32."""
    entry = get_method(method)
    if entry.score is None:
        raise ValueError(f"method {method!r} has no score function (it selects its own mask)")
    return entry.score(w.float(), stats, params or CrepeParams())
