"""How a pruning method is declared: the :class:`Method` record and :func:`register` /
:func:`scoring_method`, which add one to the table that :mod:`crepe.methods.registry` reads.

A scoring method declares itself where its score is written, with :func:`scoring_method` on the
score function in :mod:`crepe.methods.scorers`. A method that chooses its own mask and updates the
weights (SparseGPT) registers a :class:`Method` with a ``prune`` hook from its own module, which
:mod:`crepe.methods.registry` imports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Scorer = Callable[..., torch.Tensor]
"""(W [out, in] float32, InputStats, CrepeParams) -> importance S [out, in]; higher = keep."""
PruneHook = Callable[..., tuple[torch.Tensor, torch.Tensor, Any]]
"""(W [out, in], InputStats, sparsity, Pattern, PruneConfig, order) -> (new W [out, in] with the
pruned entries 0, prune mask [out, in], column permutation [in] or None); ``order`` is the
permutation step (:data:`crepe.prune.linear.OrderFn`) or None."""

STATISTICS = ("sq_sum", "hessian", "sum")
_METHODS: dict[str, Method] = {}


@dataclass(frozen=True)
class Method:
    """name: as on the command line; score: importance function (None for a method that selects
    its own mask); needs: input statistics the engine must collect (subset of STATISTICS);
    default_group: comparison group of unstructured selection, "layer" or "row" (anything else,
    e.g. "block", means the method fixes its own and ``--group`` does not apply); updates_weights:
    the kept weights change (so mask-only refinement such as DSnoT does not apply); prune: for
    such methods, the hook that selects and updates in one go (:data:`PruneHook`)."""

    name: str
    score: Scorer | None = None
    needs: frozenset[str] = frozenset()
    default_group: str = "layer"
    updates_weights: bool = False
    prune: PruneHook | None = None

    def __post_init__(self) -> None:
        if (self.score is None) == (self.prune is None):
            raise ValueError(f"method {self.name!r} needs exactly one of a score function and a prune hook")
        if not set(self.needs) <= set(STATISTICS):
            raise ValueError(f"method {self.name!r} needs unknown statistics {sorted(set(self.needs) - set(STATISTICS))}")


def register(method: Method) -> Method:
    """Add ``method`` to the registry (a second entry with the same name is an error)."""
    if method.name in _METHODS and _METHODS[method.name] != method:
        raise ValueError(f"method {method.name!r} is registered twice")
    _METHODS[method.name] = method
    return method


def scoring_method(needs: tuple[str, ...] = (), group: str = "layer", name: str | None = None
                   ) -> Callable[[Scorer], Scorer]:
    """Decorator: register the decorated score function as a method (named after it by default)."""
    def wrap(fn: Scorer) -> Scorer:
        register(Method(name or fn.__name__, score=fn, needs=frozenset(needs), default_group=group))
        return fn
    return wrap
