"""Frozen, validated configuration objects for pruning runs.

Every config validates itself at construction and raises ``ValueError`` with one clear line, so a
bad value never reaches the engine. ``to_dict``/``from_dict`` round-trip through JSON: the same
objects are saved next to every result and read back by ``--config``. A field's ``help`` metadata makes
it a ``python -m crepe.prune`` flag (the other keys: :mod:`crepe.cli.fields`); its default is the only one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crepe.io.files import read_json
from crepe.methods.declare import Method, Update
from crepe.methods.gradual import (
    ADMM_GRAD_DAMP_BY_TOKENS,
    PRODUCT_CHOICES,
    admm_grad_damp_for,
)
from crepe.methods.params import (
    GROUPS,
    NEIGHBOURHOOD_FIELDS,
    CrepeParams,
    Pattern,
    check_choice,
    check_types,
    crepe_params_from_dict,
)
from crepe.methods.registry import (
    get_method,
    get_update,
    method_names,
    update_names,
    updates,
)

ALLOCATIONS = ("uniform", "owl", "alpha", "file")
REPRUNINGS = ("dsnot",)
REPRUNE_SCOPES = ("attention", "all")


@dataclass(frozen=True)
class PermuteConfig:
    """Input-channel permutation before N:M selection (crepe.compose.permutation).

    block_groups: fast mode, the linear assignment runs on independent blocks of this many groups of
    M columns (0 = one block, the exact per-position assignment); iterations: assignment sweeps over
    the M positions; physical: permute coupled producers (MLP gate/up rows feeding down) in place so
    the stored consumer weight is N:M valid, instead of only recording the permutation.
    """

    block_groups: int = field(default=256, metadata={
        "help": "fast mode: assignment over blocks of this many M-groups (0 = exact)"})
    iterations: int = field(default=1, metadata={"help": "assignment sweeps over the M positions"})
    physical: bool = field(default=True, metadata={
        "help": "permute coupled producers (MLP gate/up rows) in place so the stored weight is N:M valid"})

    def __post_init__(self) -> None:
        check_types(self, "permute")
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
    owl_m: float = field(default=5.0, metadata={"flag": "--owl-m", "help": "OWL outlier threshold (x mean)"})
    owl_lambda: float = field(default=0.08, metadata={"flag": "--owl-lambda", "help": "OWL sparsity spread"})
    alpha_epsilon: float = field(default=0.3, metadata={"flag": "--alpha-epsilon", "help": "AlphaPruning spread"})
    min_sparsity: float = field(default=0.0, metadata={"help": "lowest sparsity of any layer"})
    max_sparsity: float = field(default=0.99, metadata={"help": "highest sparsity of any layer"})

    def __post_init__(self) -> None:
        check_types(self, "allocation")
        check_choice("allocation", self.method, ALLOCATIONS)
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

    method: str = field(default="dsnot", metadata={
        "flag": "--repruning", "names": REPRUNINGS, "help": "training-free mask refinement after the initial mask"})
    scope: str = field(default="attention", metadata={"names": REPRUNE_SCOPES, "help": "the linears DSnoT refines"})
    max_cycles: int = field(default=50, metadata={"help": "swaps per row at most"})
    update_threshold: float = field(default=0.1, metadata={"help": "swap while |estimated error| exceeds this"})
    var_power: float = field(default=1.0, metadata={"help": "regrowth divides by the input variance to this power"})

    def __post_init__(self) -> None:
        check_types(self, "repruning")
        check_choice("repruning", self.method, REPRUNINGS)
        check_choice("repruning scope", self.scope, REPRUNE_SCOPES)
        if self.max_cycles < 1 or not (self.update_threshold >= 0) or not math.isfinite(self.var_power):
            raise ValueError("repruning needs max_cycles >= 1, update_threshold >= 0 and a finite var_power")


@dataclass(frozen=True)
class PruneConfig:
    """What to prune and how. ``group`` None picks the method's default comparison group."""

    method: str = field(default="crepe", metadata={"names": method_names, "help": "pruning method"})
    sparsity: float = field(default=0.5, metadata={
        "unset": True, "help": "fraction to prune, in [0, 1); with an N:M pattern, N/M"})
    pattern: Pattern = field(default_factory=Pattern, metadata={
        "parse": Pattern.parse, "help": "unstructured or N:M = prune N of every M (2:4, 4:8)"})
    group: str | None = field(default=None, metadata={
        "choices": GROUPS, "help": "comparison group for unstructured selection (default: the method's own)"})
    crepe: CrepeParams = field(default_factory=CrepeParams, metadata={
        "flag": "--config", "parse": lambda path: load_crepe_params(path), "prefix": "", "group": "crepe",
        "help": "JSON with CRePE hyperparameters (e.g. a PHO best config); the flags below override it"})
    sparsegpt_blocksize: int = field(default=128, metadata={"help": "SparseGPT: columns pruned per block"})
    sparsegpt_damp: float = field(default=0.01, metadata={
        "help": "SparseGPT: Hessian dampening, a fraction of its mean diagonal"})
    # chosen on a text the calibration never saw (lm-eval's task cards) by python -m benchmarks.damping
    alps_damp: float = field(default=0.2, metadata={
        "help": "the alps update: Hessian dampening, a fraction of its mean diagonal (chosen on held-out text; "
                "the published ALPS uses 0.01)"})
    # chosen per calibration size on whole prunes scored on a text the calibration never saw (lm-eval's task
    # cards): ADMM_GRAD_DAMP_BY_TOKENS
    admm_grad_damp: float | None = field(default=None, metadata={
        "help": "the admm-grad update: Hessian dampening on its unit-diagonal scale, a pull toward the dense weights; "
                "default: by the calibration's size, " + " or ".join(
                    f"{d:g}" + (f" from {t:,} tokens" if t else "") for t, d in ADMM_GRAD_DAMP_BY_TOKENS)
                + " (each chosen on held-out text; the published ADMM-Grad, --method admm-grad, uses 0.1)"})
    admm_grad_iterations: int = field(default=6, metadata={
        "help": "the admm-grad update: ADMM iterations, the mask re-chosen during the first three quarters, rounded "
                "half up (6, 5 of them choosing: chosen on held-out text over three calibration draws; the published "
                "ADMM-Grad, --method admm-grad, runs 20, 15 of them choosing)"})
    admm_grad_select_iterations: int | None = field(default=None, metadata={
        "help": "the admm-grad update: how many of the first iterations re-choose the mask (the pace of its "
                "choice), the rest converge on it; default: three quarters of --admm-grad-iterations, rounded half up"})
    admm_grad_relaxation: float = field(default=1.0, metadata={
        "help": "the admm-grad update: over-relaxation a in (0, 2) of each ADMM step (1: plain ADMM; 1.5-1.8 "
                "usually converges in fewer iterations)"})
    admm_grad_products: str = field(default="auto", metadata={
        "choices": PRODUCT_CHOICES, "help": "the admm-grad update: the precision of each iteration's matrix "
        "product; auto (the default) is bfloat16 where the hardware multiplies it natively (CUDA GPUs from Ampere "
        "on, CPUs with AVX512-BF16 or AMX: about 40% off the solve at a 7B shape, the same held-out error) and "
        "float32 elsewhere, where bfloat16 would be emulated and slower (docs/quality.md, bfloat16 products)"})
    dense_target: float = field(default=0.3, metadata={
        "help": "the admm-grad update: how far its target moves from the dense weights on the pruned model's inputs "
                "(0, the usual layer-wise target) toward the dense model's own outputs (1); above 0 the engine "
                "carries the dense model's hidden states too (one more layer forward, twice the activations)"})
    dense_precision: str = field(default="auto", metadata={
        "choices": PRODUCT_CHOICES, "help": "the admm-grad update: the precision of the dense stream's layer forward "
        "(--dense-target above 0); auto (the default) runs it under bfloat16 autocast where the hardware multiplies "
        "bfloat16 natively (as --admm-grad-products auto) and float32 elsewhere; the hidden states it carries and "
        "every statistic stay float32 (docs/quality.md, the dense stream's forward in bfloat16)"})
    dense_share: float = field(default=1.0, metadata={
        "help": "the share of the calibration batches (at least one) that carry the dense model's hidden states "
                "for --dense-target; the shift they measure is scaled up to every token (below 1 it over-corrects "
                "what those batches hold more of than their share, and loses: docs/quality.md)"})
    permute: PermuteConfig | None = field(default=None, metadata={
        "switch": True, "group": "composition", "help": "N:M channel permutation before selection (needs --pattern)"})
    allocation: AllocationConfig = field(default_factory=AllocationConfig, metadata={
        "parse": AllocationConfig.parse, "group": "composition",
        "help": "uniform (the default), owl, alpha or PATH.json (per-layer plan)"})
    repruning: RepruneConfig | None = field(default=None, metadata={"switch": "method", "group": "composition"})
    update: str | None = field(default=None, metadata={
        "choices": update_names, "group": "composition",
        "help": "weight reconstruction (docs/quality.md): obs/admm after the mask, sweep = CRePE's score inside the "
                "OBS update (crepe only), sweep-admm = the sweep then ADMM, admm-grad = Boza's gradual ADMM, alps = ALPS "
                "from the method's mask with --alps-damp; default: the method's own (crepe: admm-grad, admm with "
                "--repruning dsnot; none = mask-only; others: none)"})

    def __post_init__(self) -> None:
        check_types(self, "prune config")
        for name, kind in (("pattern", Pattern), ("crepe", CrepeParams), ("allocation", AllocationConfig),
                           ("permute", PermuteConfig | None), ("repruning", RepruneConfig | None)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"prune config key '{name}' must be a {name} mapping, got {getattr(self, name)!r}")
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
            check_choice("group", self.group, GROUPS)
            if method.default_group not in GROUPS:
                raise ValueError(f"{self.method} selects its mask per {method.default_group}; --group does not apply")
        if self.sparsegpt_blocksize < 1 or not (0 <= self.sparsegpt_damp < 1):
            raise ValueError("sparsegpt blocksize must be >= 1 and damp in [0, 1)")
        if not (isinstance(self.alps_damp, (int, float)) and 0 <= self.alps_damp < 10):
            raise ValueError(f"alps damp must be in [0, 10), got {self.alps_damp}")
        if self.admm_grad_damp is not None and not 0 <= self.admm_grad_damp < 10:
            raise ValueError(f"admm-grad damp must be in [0, 10), got {self.admm_grad_damp}")
        if not (isinstance(self.dense_target, (int, float)) and 0 <= self.dense_target <= 1):
            raise ValueError(f"dense target must be in [0, 1], got {self.dense_target}")
        if not (isinstance(self.admm_grad_iterations, int) and self.admm_grad_iterations >= 2):
            raise ValueError(f"admm-grad iterations must be an integer >= 2, got {self.admm_grad_iterations}")
        select = self.admm_grad_select_iterations
        if select is not None and not (isinstance(select, int) and 1 <= select <= self.admm_grad_iterations):
            raise ValueError(f"admm-grad select iterations must be an integer in [1, admm-grad iterations = "
                             f"{self.admm_grad_iterations}], got {select}")
        if not (isinstance(self.admm_grad_relaxation, (int, float)) and 0 < self.admm_grad_relaxation < 2):
            raise ValueError(f"admm-grad relaxation must be in (0, 2), got {self.admm_grad_relaxation}")
        check_choice("admm-grad products", self.admm_grad_products, PRODUCT_CHOICES)
        check_choice("dense precision", self.dense_precision, PRODUCT_CHOICES)
        if not (isinstance(self.dense_share, (int, float)) and 0 < self.dense_share <= 1):
            raise ValueError(f"dense share must be in (0, 1], got {self.dense_share}")

    def at_calibration(self, tokens: int) -> PruneConfig:
        """This config with the admm-grad damping resolved for a calibration of ``tokens`` tokens
        (unchanged where it was given)."""
        if self.admm_grad_damp is not None:
            return self
        return dataclasses.replace(self, admm_grad_damp=admm_grad_damp_for(tokens))

    @property
    def method_entry(self) -> Method:
        """The method's registry entry (:class:`crepe.methods.registry.Method`); unknown names raise ValueError."""
        return get_method(self.method)

    def _check_update(self, method: Method) -> None:
        update = self.update_entry
        if method.updates_weights and update.kind != "none":
            raise ValueError(f"{self.method} already updates the kept weights (SparseGPT is the obs sweep with "
                             f"its own mask); --update applies to scoring methods")
        if update.methods is not None and self.method not in update.methods:
            how = "reads" if update.keeps_mask else "chooses the mask inside the update with"
            fixed = "/".join(n for n, u in updates().items() if u.kind == "fixed-mask" and u.methods is None)
            raise ValueError(f"the {update.name} update {how} {'/'.join(update.methods)}'s score: use --method "
                             f"{update.methods[0]}, or --update {fixed} to reconstruct another scorer's mask")
        if not update.keeps_mask and self.repruning is not None:
            raise ValueError(f"dsnot refines a fixed mask; the {update.name} update chooses its mask while it updates")

    @property
    def resolved_update(self) -> str:
        """The weight update that runs: ``update``, else the method's ``default_update`` (with dsnot
        re-pruning, a default that chooses its own mask gives way to its fixed-mask ``reprune_stand_in``)."""
        if self.update is not None:
            return get_update(self.update).name
        default = get_update(self.method_entry.default_update)
        return default.reprune_stand_in if self.repruning is not None and default.reprune_stand_in else default.name

    @property
    def update_entry(self) -> Update:
        """The registry entry of :attr:`resolved_update` (:class:`crepe.methods.declare.Update`)."""
        return get_update(self.resolved_update)

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
            d["pattern"] = _pattern_from(d["pattern"])
        if isinstance(d.get("crepe"), dict):
            d["crepe"] = crepe_params_from_dict(d["crepe"])
        for key, kind in (("permute", PermuteConfig), ("allocation", AllocationConfig), ("repruning", RepruneConfig)):
            if isinstance(d.get(key), dict):
                d[key] = _from_fields(kind, d[key], key)
        return cls(**d)


def read_params(cfg: PruneConfig) -> CrepeParams:
    """``cfg.crepe`` with every field ``cfg``'s prune never reads reset to CrepeParams()'s, so that two
    configs with equal ``read_params`` prune identically (a search answers the second from the first;
    a result is not stale when only unread fields moved).

    Unread: the neighbourhood's :data:`~crepe.methods.params.NEIGHBOURHOOD_FIELDS` when gamma = 0, and the
    weight update's ``unread`` fields (its registry row: the sweep's two, every field for admm-grad,
    which chooses its mask from the weights) without channel permutation. Another method reads none:
    CrepeParams(). Per-projection overrides (a role may turn the neighbourhood on): returned unchanged.
    """
    params = cfg.crepe
    if cfg.method != "crepe":
        return CrepeParams()
    if params.overrides:
        return params
    unread = NEIGHBOURHOOD_FIELDS if params.gamma == 0 else ()
    if cfg.permute is None:
        unread += cfg.update_entry.unread
    default = CrepeParams()
    return dataclasses.replace(params, **{name: getattr(default, name) for name in unread})


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


def _pattern_from(value: Any) -> Pattern:
    """The ``pattern`` entry of a config file: 'unstructured', 'N:M' text or an {n, m} mapping. YAML reads
    an unquoted 2:4 as the base-60 integer 124, so a number is refused with the fix."""
    if isinstance(value, str):
        return Pattern.parse(value)
    if isinstance(value, dict) and set(value) <= {"n", "m"}:
        return Pattern(**value)
    raise ValueError(f"prune config key 'pattern' must be 'unstructured' or 'N:M' text (quote it in YAML: '2:4'), "
                     f"got {value!r}")


def _from_fields(kind: type, d: dict[str, Any], what: str) -> Any:
    unknown = set(d) - {f.name for f in dataclasses.fields(kind)}
    if unknown:
        raise ValueError(f"unknown {what} config keys: {sorted(unknown)}")
    return kind(**d)
