"""Frozen, validated configuration objects for pruning runs.

Every config validates itself at construction and raises ``ValueError`` with one clear line, so a
bad value never reaches the engine. ``to_dict``/``from_dict`` round-trip through JSON: the same
objects are saved next to every result and read back by ``--config``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crepe.files import read_json

GROUPS = ("layer", "row")
NBR_FORMS = ("relative", "smoothed", "product")
PADDINGS = ("zero", "count")
TERM_SCALES = ("none", "mean")
ROLES = ("q", "k", "v", "o", "gate", "up", "down", "qkv", "gate_up")  # the adapters' projection roles
ALLOCATIONS = ("uniform", "owl", "alpha", "file")
REPRUNINGS = ("dsnot",)
REPRUNE_SCOPES = ("attention", "all")
UPDATES = ("none", "obs", "admm", "sweep", "sweep-admm")  # weight reconstruction (crepe.reconstruct, docs/quality.md)
DEFAULT_UPDATE: dict[str, str] = {"crepe": "sweep-admm"}  # method -> its update when --update is not given
# (else "none"); crepe's default is the best pipeline measured (docs/quality.md), "none" is the paper's mask-only
REPRUNE_UPDATE = "admm"  # the default's stand-in when dsnot re-prunes: the sweep chooses its own mask


@dataclass(frozen=True)
class Pattern:
    """Sparsity pattern. ``n == m == 0`` means unstructured; otherwise prune ``n`` of every ``m``
    consecutive input weights of each row (so the sparsity is ``n/m``; 2:4 and 4:8 are 50%)."""

    n: int = 0
    m: int = 0

    def __post_init__(self) -> None:
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
    With alpha = beta = 1, gamma = 0 and act_power = 0.5 the score is exactly RIA's. The defaults
    were chosen on the validation split by scripts/sweep_crepe.py (results/sweep_crepe.md): on
    SmolLM2 the gain over RIA comes from act_power = 1; no neighbourhood weight helped once pruned
    with the sequential engine, so gamma defaults to 0 (kernel 7 is the best k when it is enabled).
    """

    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 0.0
    kernel: int = 7
    act_power: float = 1.0
    nbr_form: str = "relative"
    padding: str = "zero"
    term_scale: str = "none"
    overrides: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma", "act_power"):
            value = getattr(self, name)
            if not math.isfinite(value) or (name != "act_power" and value < 0):
                raise ValueError(f"crepe {name} must be a finite number >= 0, got {value}")
        if self.alpha == self.beta == self.gamma == 0:
            raise ValueError("crepe alpha, beta and gamma cannot all be 0")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"crepe kernel must be an odd integer >= 1, got {self.kernel}")
        _check_choice("crepe nbr_form", self.nbr_form, NBR_FORMS)
        _check_choice("crepe padding", self.padding, PADDINGS)
        _check_choice("crepe term_scale", self.term_scale, TERM_SCALES)
        for proj, values in self.overrides.items():
            _check_choice("crepe override projection role", proj, ROLES)
            dataclasses.replace(self, overrides={}, **values)  # validates the overridden values

    def for_projection(self, role: str | None) -> "CrepeParams":
        """The parameters that apply to one projection role (overrides resolved; None: no role)."""
        values = self.overrides.get(role) if role else None
        return dataclasses.replace(self, overrides={}, **values) if values else self


@dataclass(frozen=True)
class PermuteConfig:
    """Input-channel permutation before N:M selection (crepe.compose.permutation).

    block_groups: fast mode, the linear assignment runs on independent blocks of this many groups of
    M columns (0 = one block, the exact per-position assignment); iterations: assignment sweeps over
    the M positions; physical: permute coupled producers (MLP gate/up rows feeding down) in place so
    the stored consumer weight is N:M valid, instead of only recording the permutation.
    """

    block_groups: int = 256
    iterations: int = 1
    physical: bool = True

    def __post_init__(self) -> None:
        if self.block_groups < 0 or self.iterations < 1:
            raise ValueError(f"permute block_groups must be >= 0 and iterations >= 1, got "
                             f"{self.block_groups} and {self.iterations}")


@dataclass(frozen=True)
class AllocationConfig:
    """Per-layer sparsity allocation (crepe.compose.allocation): uniform, OWL (outlier ratio per
    block, threshold ``owl_m`` x mean, spread ``owl_lambda``), AlphaPruning (heavy-tail exponent,
    spread ``alpha_epsilon``) or a JSON plan at ``path``; every layer stays in [min, max]."""

    method: str = "uniform"
    path: str | None = None
    owl_m: float = 5.0
    owl_lambda: float = 0.08
    alpha_epsilon: float = 0.3
    min_sparsity: float = 0.0
    max_sparsity: float = 0.99

    def __post_init__(self) -> None:
        _check_choice("allocation", self.method, ALLOCATIONS)
        if (self.method == "file") != bool(self.path):
            raise ValueError("allocation 'file' needs a path (and only it takes one)")
        if not (self.owl_m > 0 and 0 <= self.owl_lambda < 0.5 and 0 <= self.alpha_epsilon < 1):
            raise ValueError("allocation needs owl_m > 0, owl_lambda in [0, 0.5), alpha_epsilon in [0, 1)")
        if not (0 <= self.min_sparsity <= self.max_sparsity < 1):
            raise ValueError(f"allocation bounds need 0 <= min <= max < 1, got [{self.min_sparsity}, {self.max_sparsity}]")

    @classmethod
    def parse(cls, text: str) -> "AllocationConfig":
        """``uniform``, ``owl``, ``alpha`` or the path of a per-layer JSON plan."""
        if text in ("uniform", "owl", "alpha"):
            return cls(method=text)
        if text.endswith(".json"):
            return cls(method="file", path=text)
        raise ValueError(f"unknown allocation {text!r}; choose from uniform, owl, alpha or PATH.json")


@dataclass(frozen=True)
class RepruneConfig:
    """Training-free mask refinement after the initial mask (DSnoT, crepe.compose.dsnot).

    scope: refine attention linears only (the reference default) or all; at most ``max_cycles``
    swaps per row while |estimated error| > ``update_threshold``; the regrowth criterion divides by
    the input variance to the power ``var_power``.
    """

    method: str = "dsnot"
    scope: str = "attention"
    max_cycles: int = 50
    update_threshold: float = 0.1
    var_power: float = 1.0

    def __post_init__(self) -> None:
        _check_choice("repruning", self.method, REPRUNINGS)
        _check_choice("repruning scope", self.scope, REPRUNE_SCOPES)
        if self.max_cycles < 1 or not (self.update_threshold >= 0) or not math.isfinite(self.var_power):
            raise ValueError("repruning needs max_cycles >= 1, update_threshold >= 0 and a finite var_power")


@dataclass(frozen=True)
class PruneConfig:
    """What to prune and how. ``group`` None picks the method's default comparison group."""

    method: str = "crepe"
    sparsity: float = 0.5
    pattern: Pattern = field(default_factory=Pattern)
    group: str | None = None
    crepe: CrepeParams = field(default_factory=CrepeParams)
    sparsegpt_blocksize: int = 128
    sparsegpt_damp: float = 0.01
    permute: PermuteConfig | None = None
    allocation: AllocationConfig = field(default_factory=AllocationConfig)
    repruning: RepruneConfig | None = None
    update: str | None = None

    def __post_init__(self) -> None:
        method = self.method_entry
        self._check_update(method)
        if self.permute is not None and not self.pattern.structured:
            raise ValueError("channel permutation only applies to N:M patterns (e.g. --pattern 2:4)")
        if self.repruning is not None and method.updates_weights:
            raise ValueError(f"dsnot re-pruning refines the mask of unchanged weights; {self.method} updates them")
        if not (isinstance(self.sparsity, (int, float)) and 0.0 <= self.sparsity < 1.0):
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.pattern.structured and not math.isclose(self.sparsity, self.pattern.sparsity_or(0)):
            raise ValueError(
                f"pattern {self.pattern} prunes {self.pattern.n}/{self.pattern.m} = "
                f"{self.pattern.sparsity_or(0):g} of the weights, but sparsity {self.sparsity:g} was asked"
            )
        if self.group is not None:
            _check_choice("group", self.group, GROUPS)
            if method.default_group not in GROUPS:
                raise ValueError(f"{self.method} selects its mask per {method.default_group}; --group does not apply")
        if self.sparsegpt_blocksize < 1 or not (0 <= self.sparsegpt_damp < 1):
            raise ValueError("sparsegpt blocksize must be >= 1 and damp in [0, 1)")

    @property
    def method_entry(self):
        """The method's registry entry (:class:`crepe.registry.Method`); unknown names raise ValueError."""
        from crepe.registry import get_method  # the registry imports the scorers, which import this module

        return get_method(self.method)

    def _check_update(self, method) -> None:
        if self.update is None:
            return
        _check_choice("update", self.update, UPDATES)
        if method.updates_weights and self.update != "none":
            raise ValueError(f"{self.method} already updates the kept weights (SparseGPT is the obs sweep with "
                             f"its own mask); --update applies to scoring methods")
        if self.update.startswith("sweep") and self.method != "crepe":
            raise ValueError("the sweep chooses the mask with CRePE's score inside the update: use --method crepe, "
                             "or --update obs/admm to reconstruct another scorer's mask")
        if self.update.startswith("sweep") and self.repruning is not None:
            raise ValueError("dsnot refines a fixed mask; the sweep chooses its mask while it updates")

    @property
    def resolved_update(self) -> str:
        """The weight update that runs: ``update``, else the method's default (``DEFAULT_UPDATE``; with
        dsnot re-pruning a default sweep becomes ``REPRUNE_UPDATE``, which keeps dsnot's fixed mask)."""
        if self.update is not None:
            return self.update
        default = DEFAULT_UPDATE.get(self.method, "none")
        return REPRUNE_UPDATE if default.startswith("sweep") and self.repruning is not None else default

    @property
    def resolved_group(self) -> str:
        """The comparison group selection uses: ``group``, else the method's default."""
        default = self.method_entry.default_group
        return default if default not in GROUPS else self.group or default

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["pattern"] = str(self.pattern)
        d["resolved_group"] = self.resolved_group
        d["resolved_update"] = self.resolved_update
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PruneConfig":
        d = dict(d)
        d.pop("resolved_group", None)
        d.pop("resolved_update", None)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown prune config keys: {sorted(unknown)}")
        if "pattern" in d:
            d["pattern"] = Pattern.parse(d["pattern"]) if isinstance(d["pattern"], str) else Pattern(**d["pattern"])
        if "crepe" in d:
            d["crepe"] = crepe_params_from_dict(d["crepe"])
        for key, kind in (("permute", PermuteConfig), ("allocation", AllocationConfig), ("repruning", RepruneConfig)):
            if isinstance(d.get(key), dict):
                d[key] = _from_fields(kind, d[key], key)
        return cls(**d)


def crepe_params_from_dict(d: dict[str, Any]) -> CrepeParams:
    """Build CrepeParams from a dict, rejecting unknown keys with a clear message."""
    unknown = set(d) - {f.name for f in dataclasses.fields(CrepeParams)}
    if unknown:
        raise ValueError(f"unknown crepe parameters: {sorted(unknown)}")
    return CrepeParams(**d)


def load_crepe_params(path: str | Path) -> CrepeParams:
    """Read CRePE hyperparameters from JSON: either the parameters themselves or a file with a
    ``"crepe"`` entry (a report, a PHO best-config file, or a saved PruneConfig)."""
    data = read_json(path, "config")
    if isinstance(data, dict) and "config" in data and isinstance(data["config"], dict):
        data = data["config"]
    if isinstance(data, dict) and "crepe" in data:
        data = data["crepe"]
    if not isinstance(data, dict):
        raise ValueError(f"config {path} holds no CRePE parameters")
    return crepe_params_from_dict(data)


def _from_fields(kind: type, d: dict[str, Any], what: str) -> Any:
    unknown = set(d) - {f.name for f in dataclasses.fields(kind)}
    if unknown:
        raise ValueError(f"unknown {what} config keys: {sorted(unknown)}")
    return kind(**d)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")
