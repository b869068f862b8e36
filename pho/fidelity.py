"""Multi-fidelity trials of the end-to-end proxies: the budget is the number of calibration windows.

A trial evaluates its proxy on the first 1, eta, eta^2, ..., n windows (its rungs, :func:`rungs`) and
reports each value to Optuna (``trial.report(value, step=windows)``); the pruner (successive halving or
Hyperband with min_resource 1, :func:`make_pruner`) stops most trials after the first rung. A trial that
reaches n windows completes with its value at the full budget, so complete trials are compared at one
fidelity, and that value equals the plain proxy's on the same n windows.

- ``e2e`` (one-shot): the model is pruned once with the cached norms; the NLL of each new window is
  added as the rungs go up, so reaching rung k costs k window forwards in all.
- ``e2e_seq``: each rung prunes again with the sequential engine on its k windows (pruning statistics
  and evaluation both from those windows); a complete trial costs the sum of its rungs.

On a streamed model (``streamed``) every rung is one pass of :func:`pho.streamed.streamed_trial` (prune
and evaluate layer by layer): ``e2e`` over the rung's new windows only, ``e2e_seq`` over its k windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
import torch
from torch import nn

from crepe.config import PruneConfig
from crepe.evaluation.perplexity import perplexity
from pho.objective import PplObjective, ProxyResult
from pho.proxies import LayerData
from pho.streamed import streamed_trial

PRUNERS = ("none", "sha", "hyperband")
Report = Callable[[int, float], None]
"""(windows evaluated, proxy value on them) -> None; raises optuna.TrialPruned to stop the trial."""


def rungs(windows: int, reduction_factor: int) -> list[int]:
    """Window counts a trial is evaluated at: 1, eta, eta^2, ... below ``windows``, then ``windows``."""
    if windows < 1 or reduction_factor < 2:
        raise ValueError(f"need >= 1 window and a reduction factor >= 2, got {windows} and {reduction_factor}")
    out, k = [], 1
    while k < windows:
        out.append(k)
        k *= reduction_factor
    return out + [windows]


def make_pruner(name: str, windows: int, reduction_factor: int = 3) -> optuna.pruners.BasePruner:
    """Optuna's pruner for a budget of 1..``windows`` windows: ``sha`` (successive halving), ``hyperband``,
    or ``none`` (every trial runs the full budget)."""
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=reduction_factor)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=windows, reduction_factor=reduction_factor)
    raise ValueError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")


class FidelityProxy:
    """The ``e2e`` / ``e2e_seq`` proxy (mean next-token NLL on calibration ``windows`` [n, seq]),
    evaluated rung by rung with :data:`Report` calls in between. Weights are restored after every call."""

    def __init__(self, model: nn.Module, data: dict[str, LayerData], windows: torch.Tensor, sequential: bool,
                 reduction_factor: int = 3, batch_size: int = 4, streamed: bool = False):
        if windows.ndim != 2 or windows.shape[0] < 1:
            raise ValueError(f"the e2e proxy needs calibration windows [n >= 1, seq], got {tuple(windows.shape)}")
        self.name = "e2e_seq" if sequential else "e2e"
        self.windows, self.sequential, self.batch_size = windows, sequential, batch_size
        self.rungs = rungs(windows.shape[0], reduction_factor)
        self.model, self.data, self.streamed = model, data, streamed
        self._pruned = None if streamed else PplObjective(model, data, windows, calib=windows, faithful=sequential,
                                                          batch_size=batch_size)

    def _nll(self, windows: torch.Tensor) -> float:
        """Mean next-token NLL over ``windows`` (equal lengths: the mean of per-window means)."""
        return math.log(perplexity(self._pruned.model, windows, self.batch_size, progress=False))

    def _streamed(self, cfg: PruneConfig, report: Report) -> ProxyResult:
        value, done, realised = 0.0, 0, 0.0
        for k in self.rungs:
            part = self.windows[:k] if self.sequential else self.windows[done:k]
            nll, realised = streamed_trial(self.model, self.data, cfg, part, self.sequential, self.batch_size)
            value = nll if self.sequential else (value * done + nll * (k - done)) / k
            done = k
            report(k, value)
        return ProxyResult({self.name: value}, realised)

    @torch.no_grad()
    def __call__(self, cfg: PruneConfig, report: Report) -> ProxyResult:
        if self.streamed:
            return self._streamed(cfg, report)
        value, done, realised = 0.0, 0, 0.0
        try:
            if not self.sequential:
                realised = self._pruned.prune(cfg)
            for k in self.rungs:
                if self.sequential:  # a fresh prune on the rung's own k windows
                    self._pruned.restore()
                    realised = self._pruned.prune(cfg, self.windows[:k])
                    value = self._nll(self.windows[:k])
                else:  # one prune: add the new windows' NLL
                    value = (value * done + self._nll(self.windows[done:k]) * (k - done)) / k
                done = k
                report(k, value)
        finally:
            self._pruned.restore()
        return ProxyResult({self.name: value}, realised)
