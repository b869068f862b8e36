"""PHO: search CRePE's hyperparameters with Optuna on a cheap proxy objective (no validation PPL, no full prune).

    python -m pho.search --model smollm2-135m --sparsity 0.5 --storage sqlite:///pho.db \\
        --study-name smollm2-50 --n-trials 100 --best-config best.json
    python -m crepe.prune --model smollm2-135m --sparsity 0.5 --config best.json

One dense calibration pass fills the statistics cache (reused by later searches); every trial then
scores and masks all decoder linears and evaluates the proxy: a per-linear proxy needs no forward
pass, ``e2e`` runs the one-shot-pruned model over ``--e2e-windows`` calibration windows. Trial 0 is RIA,
after the ``--warm-start`` configs when given. ``--pruner sha|hyperband`` makes the end-to-end proxies
multi-fidelity (pho/fidelity.py): the budget is the number of windows, and most trials stop after one.
Re-running the same command resumes the study: ``--n-trials`` is the number of finished (complete or
pruned) trials the study should hold, so a killed search continues where it stopped and loses none. Outputs: the best
config (``--best-config``, read by ``crepe.prune --config``), the trial log and Optuna's
history/importance plots next to it. ``optuna-dashboard sqlite:///pho.db`` shows the same study.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import optuna

from crepe.cli.scripts import prog
from crepe.config import PruneConfig
from crepe.io.console import run_cli, setup_logging
from crepe.io.environment import versions
from crepe.methods.params import CrepeParams
from pho.fidelity import PRUNERS, FidelityProxy, make_pruner, rungs
from pho.objective import (
    EndToEndProxy,
    ProxyResult,
    config_key,
    proxy_values,
    update_attrs,
    update_needs,
    with_params,
)
from pho.proxies import AUTO, PROXIES, get_proxy, resolve_proxy
from pho.space import SearchSpace
from pho.streamed import StreamedProxy
from pho.study import (
    SAMPLERS,
    completed,
    finished,
    make_sampler,
    open_study,
    trial_cost,
)
from pho.study_cli import (  # noqa: F401  (space_from_args, target_from_args: also read from here by scripts)
    best_config_record,
    check_outputs,
    space_from_args,
    study_parser,
    target_from_args,
    write_outputs,
)
from pho.workspace import Workspace, open_workspace, setup_from_args

log = logging.getLogger("pho.search")


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, float]:
    """Draw the searched parameters of ``space`` from ``trial``."""
    values: dict[str, float] = {}
    for name, dist in space.distributions().items():
        if isinstance(dist, optuna.distributions.IntDistribution):
            values[name] = trial.suggest_int(name, dist.low, dist.high)
        else:
            values[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return values


def build_parser() -> argparse.ArgumentParser:
    ap = study_parser("python -m pho.search", __doc__, 100)
    ap.add_argument("--sampler", default="cmaes", help=f"one of {', '.join(SAMPLERS)} (default cmaes)")
    ap.add_argument("--proxy", default=AUTO, help=f"{AUTO} (default: e2e for unstructured, e2e_seq for N:M, the "
                    f"best-supported per pattern) or one of {', '.join(PROXIES)}")
    ap.add_argument("--layer-stride", type=int, default=1, help="evaluate a per-linear proxy on every K-th linear only")
    ap.add_argument("--e2e-windows", type=int, default=None, help="calibration windows an e2e proxy runs the pruned "
                    f"model on (default {', '.join(f'{p.name} {p.windows}' for p in PROXIES.values() if p.windows)})")
    ap.add_argument("--pruner", default="none", help=f"one of {', '.join(PRUNERS)}: multi-fidelity e2e/e2e_seq trials "
                    "with the windows as the budget (default none: every trial on all --e2e-windows)")
    ap.add_argument("--reduction-factor", type=int, default=3, help="the pruner's eta: rungs at 1, eta, eta^2.. windows")
    ap.add_argument("--warm-start", default="", help="config JSON files (a 'crepe' entry, as --best-config writes; "
                    "'default' = crepe's shipped config) enqueued first, e.g. a config found at another sparsity")
    return ap


def warm_points(spec: str, space: SearchSpace) -> list[tuple[str, dict[str, float]]]:
    """(label, point) of each ``--warm-start`` entry: a JSON file with a ``crepe`` entry, or ``default``."""
    from crepe.io.files import read_json

    out = []
    for item in (s for s in spec.split(",") if s):
        if item == "default":
            params = CrepeParams()
        else:
            try:
                params = CrepeParams(**read_json(item)["crepe"])
            except (OSError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"--warm-start {item}: not a config JSON with a 'crepe' entry ({exc})") from exc
        out.append((f"warm:{Path(item).stem}", space.point_of(params)))
    return out


def distinct_starts(starts: list[tuple[str, dict[str, float]]], key: Callable[[dict[str, float]], Hashable]
                    ) -> list[tuple[str, dict[str, float]]]:
    """(label, point) starts, one per ``key`` (the pruned config's read params), the first label kept: under the
    sweep, crepe's shipped config and RIA's point differ only in what it never reads, so one trial serves both."""
    seen: set = set()
    out = []
    for label, point in starts:
        if key(point) not in seen:
            seen.add(key(point))
            out.append((label, point))
    return out


def study_attrs(args: argparse.Namespace, space: SearchSpace, target: PruneConfig, setup) -> dict[str, Any]:
    objective = {"proxy": args.proxy, "sparsity": target.sparsity, "pattern": str(target.pattern),
                 "layer_stride": args.layer_stride, **dataclasses.asdict(setup)}
    if get_proxy(args.proxy).scope == "model":  # only then, so studies of the other proxies keep their attrs
        objective["e2e_windows"] = args.e2e_windows
    objective.update(update_attrs(target))
    if args.pruner != "none":
        objective["fidelity"] = {"pruner": args.pruner, "rungs": rungs(args.e2e_windows, args.reduction_factor)}
    extra = {"warm_start": [p for _, p in warm_points(args.warm_start, space)]} if args.warm_start else {}
    return {**extra, "kind": "pho.search", "space": space.to_dict(), "sampler": {"name": args.sampler, "seed": setup.seed},
            "objective": objective}


def trial_evaluator(ws: Workspace, proxy: str, stride: int = 1, e2e_windows: int | None = None,
                    reduction_factor: int | None = None) -> Callable[..., ProxyResult]:
    """What one trial computes for a config: a per-linear proxy on the cached statistics, or ``e2e`` on
    the first ``e2e_windows`` calibration windows (``e2e``, ``e2e_seq``); with ``reduction_factor``,
    the multi-fidelity form (:class:`pho.fidelity.FidelityProxy`, called with a report function)."""
    if reduction_factor is not None and get_proxy(proxy).scope == "linear":
        raise ValueError(f"--pruner needs an end-to-end proxy (e2e, e2e_seq), not {proxy!r}")
    if get_proxy(proxy).scope == "linear":
        if ws.streamed:
            raise ValueError(f"per-linear proxies read every weight at once; a streamed model (--offload disk) "
                             f"searches with e2e or e2e_seq, not {proxy!r}")
        return lambda cfg: proxy_values(ws.linears, ws.data, cfg, [proxy], stride)
    if stride != 1:
        raise ValueError(f"--layer-stride applies to per-linear proxies, not {proxy!r}")
    e2e_windows = e2e_windows or get_proxy(proxy).windows
    if not 1 <= e2e_windows <= ws.calib.shape[0]:
        raise ValueError(f"--e2e-windows must be in [1, {ws.calib.shape[0]}] (the calibration windows), got {e2e_windows}")
    sequential, windows = get_proxy(proxy).sequential, ws.calib[:e2e_windows]
    if reduction_factor is not None:
        return FidelityProxy(ws.model, ws.data, windows, sequential, reduction_factor, streamed=ws.streamed)
    if ws.streamed:
        return StreamedProxy(ws.model, ws.data, windows, sequential)
    return EndToEndProxy(ws.model, ws.data, windows, sequential=sequential)


def make_objective(ws: Workspace, space: SearchSpace, target: PruneConfig, proxy: str, stride: int,
                   e2e_windows: int | None = None, reduction_factor: int | None = None):
    """The Optuna objective; with ``reduction_factor`` (a pruner) each rung is reported and may stop the trial."""
    evaluate = trial_evaluator(ws, proxy, stride, e2e_windows, reduction_factor)

    def objective(trial: optuna.Trial) -> float:
        start, cpu = time.perf_counter(), time.process_time()
        params = space.to_crepe(suggest(trial, space))
        trial.set_user_attr("crepe", dataclasses.asdict(params))
        cfg = with_params(target, params)

        def report(windows: int, value: float) -> None:
            trial.report(value, windows)
            if trial.should_prune():
                for name, attr in {"windows": windows, **trial_cost(start, cpu)}.items():
                    trial.set_user_attr(name, attr)
                raise optuna.TrialPruned(f"stopped after {windows} windows")

        result = evaluate(cfg) if reduction_factor is None else evaluate(cfg, report)
        trial.set_user_attr("realised_sparsity", result.realised_sparsity)
        for name, attr in trial_cost(start, cpu).items():
            trial.set_user_attr(name, attr)
        return result.values[proxy]
    return objective


def main() -> int:
    args = build_parser().parse_args()
    setup_logging(args.log_level)
    setup, target = setup_from_args(args), target_from_args(args)
    space = space_from_args(args, target)
    args.proxy = resolve_proxy(args.proxy, target.pattern.structured)
    if args.n_trials < 1 or args.layer_stride < 1 or (args.timeout is not None and args.timeout <= 0):
        raise ValueError("--n-trials and --layer-stride must be >= 1 and --timeout > 0")
    if get_proxy(args.proxy).scope == "model" and args.layer_stride != 1:
        raise ValueError(f"--layer-stride applies to per-linear proxies, not {args.proxy!r}")
    args.e2e_windows = args.e2e_windows or get_proxy(args.proxy).windows or None
    if args.e2e_windows is not None and not 1 <= args.e2e_windows <= setup.nsamples:
        raise ValueError(f"--e2e-windows must be in [1, --nsamples={setup.nsamples}], got {args.e2e_windows}")
    if args.pruner not in PRUNERS:
        raise ValueError(f"unknown pruner {args.pruner!r}; choose from {', '.join(PRUNERS)}")
    if args.pruner != "none" and get_proxy(args.proxy).scope != "model":
        raise ValueError(f"--pruner needs an end-to-end proxy (e2e, e2e_seq), not {args.proxy!r}")
    if args.offload == "disk" and get_proxy(args.proxy).scope == "linear":
        raise ValueError(f"per-linear proxies read every weight at once; a streamed model (--offload disk) searches "
                         f"with e2e or e2e_seq, not {args.proxy!r}")
    if target.resolved_update != "none" and get_proxy(args.proxy).scope == "linear" and get_proxy(args.proxy).after is None:
        raise ValueError(f"{args.proxy} scores masks, not --update {target.resolved_update}: use out_error, e2e or "
                         "e2e_seq, or --update none for the mask-only pipeline")
    check_outputs(args)
    sampler = make_sampler(args.sampler, setup.seed, len(space.params))
    study, created = open_study(args.storage, args.study_name, get_proxy(args.proxy).direction,
                                study_attrs(args, space, target, setup), sampler,
                                pruner=make_pruner(args.pruner, args.e2e_windows or 1, args.reduction_factor))
    proxy = get_proxy(args.proxy)
    hessian = proxy.needs_hessian or (not proxy.sequential and "hessian" in update_needs(target))
    ws = open_workspace(setup, hessian=hessian, offload=args.offload)
    if not study.get_trials(deepcopy=False):
        starts = [*warm_points(args.warm_start, space), ("ria", space.ria_point())]
        for label, point in distinct_starts(starts, lambda p: config_key(with_params(target, space.to_crepe(p)))):
            study.enqueue_trial(point, user_attrs={"label": label}, skip_if_exists=True)
    remaining = args.n_trials - len(finished(study))
    log.info("study %s: %s, %d finished trials, %d to go (proxy %s, %s, pruner %s)", args.study_name,
             "created" if created else "resumed", len(finished(study)), max(remaining, 0), args.proxy, args.sampler,
             args.pruner)
    start = time.perf_counter()
    if remaining > 0:
        study.optimize(make_objective(ws, space, target, args.proxy, args.layer_stride, args.e2e_windows,
                                      None if args.pruner == "none" else args.reduction_factor),
                       n_trials=remaining, timeout=args.timeout, show_progress_bar=True)
    seconds = time.perf_counter() - start
    if not completed(study):
        raise ValueError(f"study {args.study_name!r} has no complete trial yet (timeout too short?)")
    record = best_config_record(study, target, "pho.search", {
        "proxy": args.proxy, "direction": get_proxy(args.proxy).direction, "storage": args.storage,
        "search_seconds_this_run": seconds, "statistics_cache_hit": ws.cache_hit, "versions": versions()})
    write_outputs(study, args, record)
    return 0


def cli() -> None:
    """``python -m pho.search``, and the ``pho-search`` console script: :func:`main` with one-line errors."""
    run_cli(prog("pho.search"), main)


if __name__ == "__main__":
    cli()
