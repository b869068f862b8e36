"""The baseline PHO replaces: coordinate-wise hill climbing of CRePE's hyperparameters on real PPL.

    python -m pho.hillclimb --model smollm2-135m --sparsity 0.5 --storage sqlite:///hc.db \\
        --study-name hc-50 --n-trials 60 --best-config hc_best.json [--faithful]

Every evaluated point is pruned (one-shot with the cached dense input norms, or with the faithful
sequential engine under ``--faithful``) and scored by perplexity on the VALIDATION split (the test
split is never read). The climb starts at RIA and moves one coordinate at a time in the unit cube
of the search space (log scale for alpha/beta/gamma): +step then -step, taking the first
improvement; after a pass with no improvement the step halves (``--refinements`` times); r moves
by +-1. Each evaluation is an Optuna trial (``enqueue_trial`` + ``ask``/``tell``) in the same kind
of study as ``pho.search``. The climb is deterministic given the PPLs, so re-running the command
replays the finished trials from the study for free and continues: nothing completed is lost.
``--n-trials`` is the number of complete evaluations the study should hold.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Hashable

import optuna

from crepe.cli.scripts import prog
from crepe.data.prepare import eval_set
from crepe.io.console import run_cli, setup_logging
from pho.objective import (
    PplObjective,
    config_key,
    update_attrs,
    update_needs,
    with_params,
)
from pho.space import SearchSpace
from pho.study import completed, open_study, trial_cost
from pho.study_cli import (
    best_config_record,
    check_outputs,
    space_from_args,
    study_parser,
    target_from_args,
    write_outputs,
)
from pho.workspace import open_workspace, setup_from_args

log = logging.getLogger("pho.hillclimb")
LOG_PARAMS = ("alpha", "beta", "gamma")


class BudgetSpent(Exception):
    """Raised by the evaluator when --n-trials or --timeout is reached."""


def to_unit(space: SearchSpace, name: str, value: float) -> float:
    lo, hi = space.bounds(name)
    if name in LOG_PARAMS:
        return (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (value - lo) / (hi - lo)


def from_unit(space: SearchSpace, name: str, u: float) -> float:
    lo, hi = space.bounds(name)
    if u <= 0.0 or u >= 1.0:
        return float(lo if u <= 0.0 else hi)  # exactly the bound: gamma's lower bound means "off"
    if name in LOG_PARAMS:
        return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    return lo + u * (hi - lo)


def move(space: SearchSpace, point: dict[str, float], name: str, sign: int, step: float) -> dict[str, float]:
    """``point`` with one coordinate moved by sign*step in unit coordinates (r: by sign*1), clipped."""
    new = dict(point)
    if name == "r":
        new["r"] = space.clip("r", point["r"] + sign)
    else:
        new[name] = from_unit(space, name, to_unit(space, name, point[name]) + sign * step)
    return new


def point_key(point: dict[str, float]) -> tuple:
    return tuple(sorted((k, float(f"{float(v):.10g}")) for k, v in point.items()))


def climb(space: SearchSpace, evaluate: Callable[[dict[str, float]], float], step: float = 0.125,
          refinements: int = 2) -> tuple[dict[str, float], float]:
    """Coordinate-wise first-improvement hill climb from RIA's point; (best point, best value).

    Ends when ``refinements`` step halvings bring no improvement, or when ``evaluate`` raises
    :class:`BudgetSpent` (then the best so far is returned).
    """
    point = space.ria_point()
    best = evaluate(point)
    try:
        for _ in range(refinements + 1):
            improved = True
            while improved:
                improved = False
                for name in space.params:
                    for sign in (1, -1):
                        cand = move(space, point, name, sign, step)
                        if point_key(cand) == point_key(point):
                            continue
                        value = evaluate(cand)
                        if value < best:
                            point, best, improved = cand, value, True
                            break
            step /= 2
    except BudgetSpent:
        pass
    return point, best


class StudyEvaluator:
    """Evaluates points as Optuna trials, answering already-finished points from the study."""

    def __init__(self, study: optuna.Study, space: SearchSpace, score: Callable[[dict[str, float]], tuple[float, dict]],
                 n_trials: int, timeout: float | None, key: Callable[[dict[str, float]], Hashable] = point_key):
        self.study, self.space, self.score, self.key = study, space, score, key
        self.n_trials, self.deadline = n_trials, (time.monotonic() + timeout) if timeout else None
        done = completed(study)
        self.memo = {key(t.params): t.value for t in done}
        self.complete, self.new = len(done), 0

    def __call__(self, point: dict[str, float]) -> float:
        """The value of ``point``: from the study when a finished trial has its key (the same point, or with
        ``key`` = the pruned config's read params, a point that prunes identically), else a new trial."""
        key = self.key(point)
        while key not in self.memo:
            if self.complete >= self.n_trials or (self.deadline and time.monotonic() > self.deadline):
                raise BudgetSpent
            if not self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
                self.study.enqueue_trial(point)
            trial = self.study.ask(self.space.distributions())
            params = dict(trial.params)  # a WAITING trial left by a killed run may come first
            try:
                value, attrs = self.score(params)
            except BaseException:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
            for name, attr in attrs.items():
                trial.set_user_attr(name, attr)
            self.study.tell(trial, value)
            self.memo[self.key(params)] = value
            self.complete, self.new = self.complete + 1, self.new + 1
            log.info("trial %d: %s -> %.4f", trial.number, params, value)
        return self.memo[key]


def fail_stale(study: optuna.Study) -> None:
    """Mark RUNNING trials left by a killed run as FAIL (the climb is single-process)."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        log.warning("trial %d was left running by a killed run: marked FAIL (its point is re-evaluated)", t.number)


def build_parser() -> argparse.ArgumentParser:
    ap = study_parser("python -m pho.hillclimb", __doc__, 60)
    ap.add_argument("--step", type=float, default=0.125, help="initial step, as a fraction of each range (unit cube)")
    ap.add_argument("--refinements", type=int, default=2, help="times the step is halved before stopping")
    ap.add_argument("--faithful", action="store_true", help="score each point with the sequential engine (slow)")
    ap.add_argument("--val-windows", type=int, default=8, help="validation windows per PPL; 0 = the whole validation "
                    "split (the paper's protocol)")
    ap.add_argument("--val-seqlen", type=int, default=512)
    return ap


def study_attrs(args: argparse.Namespace, space: SearchSpace, target, setup) -> dict:
    """What a climb's study records (space, climb, objective); reopening it with anything else is refused."""
    return {"kind": "pho.hillclimb", "space": space.to_dict(),
            "climb": {"step": args.step, "refinements": args.refinements},
            "objective": {"metric": "validation_ppl", "faithful": args.faithful, "val_windows": args.val_windows,
                          "val_seqlen": args.val_seqlen, "sparsity": target.sparsity, "pattern": str(target.pattern),
                          **update_attrs(target), **dataclasses.asdict(setup)}}


def main() -> int:
    args = build_parser().parse_args()
    setup_logging(args.log_level)
    setup, target = setup_from_args(args), target_from_args(args)
    space = space_from_args(args, target)
    if args.n_trials < 1 or not 0 < args.step <= 0.5 or args.refinements < 0 or args.val_windows < 0:
        raise ValueError("need --n-trials >= 1, 0 < --step <= 0.5, --refinements >= 0, --val-windows >= 0")
    if args.offload != "none":
        raise ValueError("pho.hillclimb prunes and evaluates the model in memory: use --offload none")
    check_outputs(args, ("calibration", "validation"))
    attrs = study_attrs(args, space, target, setup)
    study, created = open_study(args.storage, args.study_name, "minimize", attrs,
                                optuna.samplers.RandomSampler(seed=setup.seed), heartbeat=False)
    fail_stale(study)
    ws = open_workspace(setup, hessian=not args.faithful and "hessian" in update_needs(target))
    val, spec = eval_set(ws.tokenizer, setup.dataset, "validation", args.val_seqlen, args.val_windows or None,
                         ws.bos_per_window)
    ppl = PplObjective(ws.model, ws.data, val, ws.calib, args.faithful)
    log.info("hill climb on %s PPL [%s]; study %s %s with %d complete trials", "faithful" if args.faithful else "one-shot",
             spec.describe(), args.study_name, "created" if created else "resumed", len(completed(study)))

    def score(params: dict[str, float]) -> tuple[float, dict]:
        start, cpu = time.perf_counter(), time.process_time()
        crepe = space.to_crepe(params)
        value, realised = ppl(with_params(target, crepe))
        return value, {"crepe": dataclasses.asdict(crepe), "realised_sparsity": realised, **trial_cost(start, cpu)}

    evaluator = StudyEvaluator(study, space, score, args.n_trials, args.timeout,
                               key=lambda point: config_key(with_params(target, space.to_crepe(point))))
    start = time.perf_counter()
    point, value = climb(space, evaluator, args.step, args.refinements)
    record = best_config_record(study, target, "pho.hillclimb", {
        "climb_end_point": point, "climb_end_value": value, "new_trials_this_run": evaluator.new,
        "seconds_this_run": time.perf_counter() - start, "eval_protocol": spec.describe(),
        "faithful": args.faithful, "storage": args.storage, "update": target.resolved_update})
    write_outputs(study, args, record)
    return 0


def cli() -> None:
    """``python -m pho.hillclimb``, and the ``pho-hillclimb`` console script: :func:`main` with one-line errors."""
    run_cli(prog("pho.hillclimb"), main)


if __name__ == "__main__":
    cli()
