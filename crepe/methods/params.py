"""The parameters a pruning method reads: the sparsity :class:`Pattern` and CRePE's score
hyperparameters :class:`CrepeParams`, with the choices their fields take. Frozen and validated at
construction (one clear ``ValueError`` line for a bad value). A field's ``help`` metadata makes it a
``python -m crepe.prune`` flag (:mod:`crepe.cli.fields`)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

GROUPS = ("layer", "row")
NBR_FORMS = ("relative", "smoothed", "product")
PADDINGS = ("zero", "count")
TERM_SCALES = ("none", "mean")
ROLES = ("q", "k", "v", "o", "gate", "up", "down", "qkv", "gate_up")  # the adapters' projection roles
NEIGHBOURHOOD_FIELDS = ("kernel", "nbr_form", "padding")  # read only when gamma > 0


@dataclass(frozen=True)
class Pattern:
    """Sparsity pattern. ``n == m == 0`` means unstructured; otherwise prune ``n`` of every ``m``
    consecutive input weights of each row (so the sparsity is ``n/m``; 2:4 and 4:8 are 50%)."""

    n: int = 0
    m: int = 0

    def __post_init__(self) -> None:
        check_types(self, "pattern")
        if (self.n, self.m) != (0, 0) and not (0 < self.n < self.m):
            raise ValueError(f"invalid N:M pattern {self.n}:{self.m}: need 0 < N < M")

    @property
    def structured(self) -> bool:
        return self.m > 0

    def sparsity_or(self, default: float) -> float:
        """The sparsity this pattern fixes, N/M, or ``default`` when unstructured."""
        return self.n / self.m if self.structured else default

    @classmethod
    def parse(cls, text: str) -> "Pattern":
        """Parse ``"unstructured"`` or ``"N:M"`` (e.g. ``"2:4"``)."""
        if text in ("unstructured", "", None):
            return cls()
        if not isinstance(text, str):
            raise ValueError(f"pattern must be 'unstructured' or 'N:M' text such as '2:4', got {text!r}")
        try:
            n, m = (int(v) for v in text.split(":"))
        except ValueError as exc:
            raise ValueError(f"invalid pattern {text!r}: use 'unstructured' or 'N:M' such as 2:4") from exc
        return cls(n, m)

    def __str__(self) -> str:
        return f"{self.n}:{self.m}" if self.structured else "unstructured"


@dataclass(frozen=True)
class CrepeParams:
    """CRePE hyperparameters: ``S = (alpha*row + beta*col + gamma*nbr) * ||X_j||^act_power``.

    ``kernel`` is the odd side k of the k x k neighbourhood. ``overrides`` maps a projection role
    (q, k, v, o, gate, up, down, qkv, gate_up: the model's adapter assigns them) to a dict of
    alpha/beta/gamma/kernel for that role only; a role the model lacks is refused when pruning.
    With alpha = beta = 1, gamma = 0 and act_power = 0.5 the score is exactly RIA's. act_power 0.75
    and gamma 0 are the held-out choice of ``python -m benchmarks.mask_choice`` (the mask-only prune's
    PPL on a text the calibration and the reported tables never use, results/quality/mask_choice.md);
    no neighbourhood weight helped once pruned with the sequential engine (kernel 7 is the best k of
    ``benchmarks.sweep_crepe`` when it is enabled, docs/crepe.md).
    """

    alpha: float = field(default=1.0, metadata={"help": "weight of the row-relative term"})
    beta: float = field(default=1.0, metadata={"help": "weight of the column-relative term"})
    gamma: float = field(default=0.0, metadata={"help": "weight of the neighbourhood term (0: off)"})
    kernel: int = field(default=7, metadata={"help": "odd side k of the k x k neighbourhood"})
    act_power: float = field(default=0.75, metadata={"help": "exponent of the input activation norm ||X_j||"})
    nbr_form: str = field(default="relative", metadata={"choices": NBR_FORMS, "help": "neighbourhood term form"})
    padding: str = field(default="zero", metadata={"choices": PADDINGS, "help": "neighbourhood padding at the edges"})
    term_scale: str = field(default="none", metadata={"choices": TERM_SCALES, "help": "scale of each term"})
    overrides: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self, "crepe")
        for name in ("alpha", "beta", "gamma", "act_power"):
            value = getattr(self, name)
            if not math.isfinite(value) or (name != "act_power" and value < 0):
                raise ValueError(f"crepe {name} must be a finite number >= 0, got {value}")
        if self.alpha == self.beta == self.gamma == 0:
            raise ValueError("crepe alpha, beta and gamma cannot all be 0")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"crepe kernel must be an odd integer >= 1, got {self.kernel}")
        check_choice("crepe nbr_form", self.nbr_form, NBR_FORMS)
        check_choice("crepe padding", self.padding, PADDINGS)
        check_choice("crepe term_scale", self.term_scale, TERM_SCALES)
        for proj, values in self.overrides.items():
            check_choice("crepe override projection role", proj, ROLES)
            if not isinstance(values, dict):
                raise ValueError(f"crepe overrides.{proj} must be a mapping of alpha/beta/gamma/kernel, got {values!r}")
            dataclasses.replace(self, overrides={}, **values)  # validates the overridden values

    def for_projection(self, role: str | None) -> "CrepeParams":
        """The parameters that apply to one projection role (overrides resolved; None: no role)."""
        values = self.overrides.get(role) if role else None
        return dataclasses.replace(self, overrides={}, **values) if values else self


SCORE_FIELDS = tuple(f.name for f in dataclasses.fields(CrepeParams) if f.name != "overrides")
"""Every CrepeParams field the score reads: what an update that chooses its mask from the weights alone
(admm-grad without channel permutation) leaves unread."""


def crepe_params_from_dict(d: dict[str, Any]) -> CrepeParams:
    """Build CrepeParams from a dict, rejecting unknown keys with a clear message."""
    unknown = set(d) - {f.name for f in dataclasses.fields(CrepeParams)}
    if unknown:
        raise ValueError(f"unknown crepe parameters: {sorted(unknown)}")
    return CrepeParams(**d)


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping"}


@lru_cache(maxsize=None)
def _field_kinds(kind: type) -> tuple[tuple[str, tuple[type, ...], bool], ...]:
    """(name, accepted plain types, None allowed) of each field of dataclass ``kind`` whose hint is a plain
    int/float/str/bool/dict (or ``X | None``); other fields (nested configs, tuples) are checked by their owners."""
    out = []
    for name, hint in typing.get_type_hints(kind).items():
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
        plain = [a for a in typing.get_args(hint) if a is not type(None)] if optional else [hint]
        plain = [typing.get_origin(a) or a for a in plain]
        if len(plain) == 1 and plain[0] in _KINDS:
            out.append((name, plain[0], optional))
    return tuple(out)


def type_error(value: Any, expected: type) -> bool:
    """Whether ``value`` is not of the plain type ``expected`` (a bool is no number; an int is a float)."""
    if expected is float:
        return isinstance(value, bool) or not isinstance(value, (int, float))
    if expected is int:
        return isinstance(value, bool) or not isinstance(value, int)
    return not isinstance(value, expected)


def check_types(obj: Any, what: str) -> None:
    """Raise one ValueError line naming ``what.field`` when a field of dataclass ``obj`` has the wrong type
    (a string where a number belongs, a float where an integer does): configs read from files and the
    Python API reach here with whatever the user wrote."""
    for name, expected, optional in _field_kinds(type(obj)):
        value = getattr(obj, name)
        if (value is None and optional) or not type_error(value, expected):
            continue
        raise ValueError(f"{what} key '{name}' must be {_KINDS[expected]}{' or null' if optional else ''}, "
                         f"got {value!r} ({type(value).__name__})")


def check_at_least(low: int, what: str = "", **values: int | None) -> None:
    """One ValueError line for the first of ``values`` (name -> number; None: not given) below ``low``."""
    for name, value in values.items():
        if value is not None and value < low:
            raise ValueError(f"{what}{name} must be >= {low}, got {value}")
