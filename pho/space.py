"""The search space of CRePE's hyperparameters, shared by the proxy search and the hill climb.

Searched parameters (any non-empty subset):

- ``r``: int in [r_min, r_max]; the kernel is k = 2r + 1 (CMA-ES takes no categoricals, so the odd
  kernel is encoded through an int);
- ``alpha``, ``beta``, ``gamma``: log-scale floats. ``gamma`` at exactly its lower bound means
  "no neighbourhood term" (gamma = 0): a log-scale parameter cannot reach 0 and CMA-ES cannot take an
  on/off switch, so the bound doubles as the switch. CMA-ES clips to the bounds, so it does reach it;
- ``act_power``: a linear float (the activation exponent a of ``||X_j||^a``).

Unsearched parameters take their values from ``base`` (by default RIA: alpha = beta = 1, gamma = 0,
a = 0.5, no term scaling), so :meth:`SearchSpace.ria_point` maps exactly onto RIA's score.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from crepe.methods.params import CrepeParams

PARAMS = ("r", "alpha", "beta", "gamma", "act_power")
RIA_BASE = CrepeParams(alpha=1.0, beta=1.0, gamma=0.0, kernel=3, act_power=0.5, term_scale="none")


def _check_range(name: str, lo: float, hi: float, log: bool) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"search range of {name} must be finite, got [{lo}, {hi}]")
    if lo >= hi:
        raise ValueError(f"empty search space: range of {name} is [{lo}, {hi}] (need low < high)")
    if log and lo <= 0:
        raise ValueError(f"log-scale range of {name} must be positive, got [{lo}, {hi}]")


@dataclass(frozen=True)
class SearchSpace:
    """Which CRePE hyperparameters are searched, over which ranges, and the base for the others."""

    params: tuple[str, ...] = PARAMS
    r_range: tuple[int, int] = (1, 7)
    alpha_range: tuple[float, float] = (0.1, 10.0)
    beta_range: tuple[float, float] = (0.1, 10.0)
    gamma_range: tuple[float, float] = (1e-4, 1.0)
    act_power_range: tuple[float, float] = (0.0, 1.5)
    base: CrepeParams = field(default_factory=lambda: RIA_BASE)

    def __post_init__(self) -> None:
        if not self.params:
            raise ValueError(f"empty search space: choose at least one of {', '.join(PARAMS)}")
        unknown = [p for p in self.params if p not in PARAMS]
        if unknown or len(set(self.params)) != len(self.params):
            raise ValueError(f"search parameters must be distinct names from {', '.join(PARAMS)}, got {list(self.params)}")
        if int(self.r_range[0]) != self.r_range[0] or int(self.r_range[1]) != self.r_range[1] or self.r_range[0] < 0:
            raise ValueError(f"range of r must be non-negative ints (kernel = 2r+1), got {self.r_range}")
        _check_range("r", *self.r_range, log=False)
        for name in ("alpha", "beta", "gamma"):
            _check_range(name, *getattr(self, f"{name}_range"), log=True)
        _check_range("act_power", *self.act_power_range, log=False)
        if self.base.overrides:
            raise ValueError("the base config of a search cannot hold per-projection overrides")

    def distributions(self) -> dict[str, Any]:
        """Optuna distributions of the searched parameters, in ``params`` order."""
        from optuna.distributions import FloatDistribution, IntDistribution

        dists = {"r": IntDistribution(*self.r_range),
                 "alpha": FloatDistribution(*self.alpha_range, log=True),
                 "beta": FloatDistribution(*self.beta_range, log=True),
                 "gamma": FloatDistribution(*self.gamma_range, log=True),
                 "act_power": FloatDistribution(*self.act_power_range)}
        return {p: dists[p] for p in self.params}

    def to_crepe(self, values: dict[str, float]) -> CrepeParams:
        """CrepeParams for a point (searched names -> values); gamma at its lower bound means 0."""
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if name == "r":
                changes["kernel"] = 2 * int(value) + 1
            elif name == "gamma":
                changes["gamma"] = 0.0 if value <= self.gamma_range[0] * (1 + 1e-9) else float(value)
            else:
                changes[name] = float(value)
        return dataclasses.replace(self.base, **changes)

    def ria_point(self) -> dict[str, float]:
        """The point of this space closest to RIA (alpha = beta = 1, gamma off, a = 0.5, k = 3)."""
        ria = {"r": 1, "alpha": 1.0, "beta": 1.0, "gamma": self.gamma_range[0], "act_power": 0.5}
        return {p: self.clip(p, ria[p]) for p in self.params}

    def point_of(self, params: CrepeParams) -> dict[str, float]:
        """The point of this space nearest ``params`` (clipped to the ranges; gamma 0 -> its lower bound,
        which means off), e.g. a config found at another sparsity to warm-start a search from."""
        values = {"r": (params.kernel - 1) // 2, "alpha": params.alpha, "beta": params.beta,
                  "gamma": params.gamma if params.gamma > 0 else self.gamma_range[0], "act_power": params.act_power}
        return {p: self.clip(p, values[p]) for p in self.params}

    def bounds(self, name: str) -> tuple[float, float]:
        return getattr(self, f"{name}_range")

    def clip(self, name: str, value: float) -> float:
        lo, hi = self.bounds(name)
        clipped = min(max(value, lo), hi)
        return round(clipped) if name == "r" else float(clipped)

    def sample(self, generator: torch.Generator) -> dict[str, float]:
        """A uniform random point (log-uniform for log-scale parameters) from ``generator``."""
        point: dict[str, float] = {}
        for name in self.params:
            lo, hi = self.bounds(name)
            u = float(torch.rand((), generator=generator, dtype=torch.float64))
            if name == "r":
                point[name] = int(lo + min(int(u * (hi - lo + 1)), hi - lo))
            elif name in ("alpha", "beta", "gamma"):
                point[name] = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
            else:
                point[name] = lo + u * (hi - lo)
        return point

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description, stored in the study's user attrs to detect a changed space."""
        d = {"params": list(self.params), "base": dataclasses.asdict(self.base)}
        d.update({f"{p}_range": list(self.bounds(p)) for p in self.params})
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchSpace:
        kwargs: dict[str, Any] = {"params": tuple(d["params"]), "base": CrepeParams(**d["base"])}
        kwargs.update({f"{p}_range": tuple(d[f"{p}_range"]) for p in d["params"]})
        return cls(**kwargs)
