"""How a pruning method and a weight update are declared: the :class:`Method` record with
:func:`register` / :func:`scoring_method`, and the :class:`Update` record with :func:`register_update` /
:func:`weight_update`, which add one to the tables that :mod:`crepe.methods.registry` reads.

A scoring method declares itself where its score is written, with :func:`scoring_method` on the
score function in :mod:`crepe.methods.scorers`. A method that chooses its own mask and updates the
weights (SparseGPT) registers a :class:`Method` with a ``prune`` hook from its own module. A weight
update declares itself with :func:`weight_update` on its function (:mod:`crepe.methods.obs`, ``admm``, ``sweep``).
:mod:`crepe.methods.registry` imports those modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch

from crepe.methods.params import CrepeParams

Scorer = Callable[..., torch.Tensor]
"""(W [out, in] float32, InputStats, CrepeParams) -> importance S [out, in]; higher = keep."""
PruneHook = Callable[..., tuple[torch.Tensor, torch.Tensor, Any]]
"""(W [out, in], InputStats, sparsity, Pattern, PruneConfig, order) -> (new W [out, in] with the
pruned entries 0, prune mask [out, in], column permutation [in] or None); ``order`` is the
permutation step (:data:`crepe.prune.linear.OrderFn`) or None."""

FixedMaskFn = Callable[..., torch.Tensor]
"""(unpruned W [out, in], final prune mask [out, in], InputStats, PruneConfig) -> new W [out, in] float32,
exactly 0 where the mask is (the mask is kept)."""
SelectingFn = Callable[..., tuple[torch.Tensor, torch.Tensor, Any]]
"""(W [out, in], InputStats, sparsity, Pattern, PruneConfig, order, role) -> (new W [out, in], prune mask
[out, in], column permutation [in] or None): chooses the mask while it updates, in place of score -> select."""

STATISTICS = ("sq_sum", "hessian", "sum", "dense_shift")
"""Input statistics the engine can collect (:class:`crepe.methods.scorers.InputStats`); "dense_shift" =
sum (Y_dense - Y)^T X, per linear (the dense stream)."""
_METHODS: dict[str, Method] = {}
_UPDATES: dict[str, Update] = {}


@dataclass(frozen=True)
class Method:
    """name: as on the command line; score: importance function (None for a method that selects
    its own mask); needs: input statistics the engine must collect (subset of STATISTICS);
    default_group: comparison group of unstructured selection, "layer" or "row" (anything else,
    e.g. "block", means the method fixes its own and ``--group`` does not apply); updates_weights:
    the kept weights change (so mask-only refinement such as DSnoT does not apply); prune: for
    such methods, the hook that selects and updates in one go (:data:`PruneHook`); default_update:
    the weight update (an :class:`Update` name) that runs when the config names none."""

    name: str
    score: Scorer | None = None
    needs: frozenset[str] = frozenset()
    default_group: str = "layer"
    updates_weights: bool = False
    prune: PruneHook | None = None
    default_update: str = "none"

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


def scoring_method(needs: tuple[str, ...] = (), group: str = "layer", name: str | None = None,
                   default_update: str = "none") -> Callable[[Scorer], Scorer]:
    """Decorator: register the decorated score function as a method (named after it by default)."""
    def wrap(fn: Scorer) -> Scorer:
        register(Method(name or fn.__name__, score=fn, needs=frozenset(needs), default_group=group,
                        default_update=default_update))
        return fn
    return wrap


@dataclass(frozen=True)
class Update:
    """A weight update, as ``--update`` names it. Its kind follows from its hook: ``apply``, a
    fixed-mask update (:data:`FixedMaskFn`) run on the final mask; ``select``, an update that chooses
    the mask while it updates (:data:`SelectingFn`) in place of score -> select; neither: no update.
    needs: input statistics it reads (subset of STATISTICS); methods: the scoring methods it applies
    to (None: every one); reprune_stand_in: for a mask-choosing update, the fixed-mask update that
    runs instead when it is a method's default and DSnoT re-prunes (DSnoT refines a fixed mask);
    unread: CrepeParams fields it never reads (unless N:M channel permutation orders the columns by
    the mask score), so a search may treat configs that differ only there as equal."""

    name: str
    apply: FixedMaskFn | None = None
    select: SelectingFn | None = None
    needs: frozenset[str] = frozenset()
    methods: tuple[str, ...] | None = None
    reprune_stand_in: str | None = None
    unread: tuple[str, ...] = ()
    reads_score: bool = True  # False: a selecting update that reads the method's score only to permute columns

    def __post_init__(self) -> None:
        if self.apply is not None and self.select is not None:
            raise ValueError(f"update {self.name!r} either keeps the mask or chooses it, not both")
        if not set(self.needs) <= set(STATISTICS):
            raise ValueError(f"update {self.name!r} needs unknown statistics {sorted(set(self.needs) - set(STATISTICS))}")
        unknown = set(self.unread) - {f.name for f in fields(CrepeParams)}
        if unknown:
            raise ValueError(f"update {self.name!r} leaves unknown CrepeParams fields unread: {sorted(unknown)}")
        if self.reprune_stand_in is not None and self.keeps_mask:
            raise ValueError(f"update {self.name!r} keeps the mask: DSnoT composes with it, it needs no stand-in")

    @property
    def kind(self) -> str:
        """"none", "fixed-mask" (``apply``) or "selects-mask" (``select``)."""
        return "selects-mask" if self.select is not None else "fixed-mask" if self.apply is not None else "none"

    @property
    def keeps_mask(self) -> bool:
        """The mask chosen before it stays, so mask refinement (DSnoT) composes with it."""
        return self.select is None


def register_update(update: Update) -> Update:
    """Add ``update`` to the registry (a second entry with the same name is an error)."""
    if update.name in _UPDATES and _UPDATES[update.name] != update:
        raise ValueError(f"update {update.name!r} is registered twice")
    _UPDATES[update.name] = update
    return update


def weight_update(name: str, *, selects_mask: bool = False, needs: tuple[str, ...] = (),
                  methods: tuple[str, ...] | None = None, reprune_stand_in: str | None = None,
                  unread: tuple[str, ...] = (), reads_score: bool = True) -> Callable[[Callable], Callable]:
    """Decorator: register the decorated function as the update ``name``: a fixed-mask update
    (:data:`FixedMaskFn`), or with ``selects_mask`` one that chooses its mask (:data:`SelectingFn`);
    ``reads_score=False``: a selecting update that reads the method's score only under ``--permute``
    (then the method's own statistics are not collected without it)."""
    def wrap(fn: Callable) -> Callable:
        hook = {"select": fn} if selects_mask else {"apply": fn}
        register_update(Update(name, needs=frozenset(needs), methods=methods, reprune_stand_in=reprune_stand_in,
                               unread=unread, reads_score=reads_score, **hook))
        return fn
    return wrap
