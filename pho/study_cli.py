"""The command-line pieces ``pho.search`` and ``pho.hillclimb`` share: the target and search-space
flags, the study/output flags, and the best-config record and outputs they both write."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

import optuna

from crepe.cli.fields import choices_of
from crepe.config import PruneConfig, read_params
from crepe.data.prepare import check_data
from crepe.io.files import check_output_file, write_json_atomic
from crepe.methods.params import NBR_FORMS, TERM_SCALES, Pattern
from crepe.methods.registry import get_method
from pho.objective import base_config
from pho.space import PARAMS, RIA_BASE, SearchSpace
from pho.study import check_storage, completed, trial_log, write_plots
from pho.workspace import add_setup_args

log = logging.getLogger("pho.study_cli")


def add_space_args(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("search space")
    g.add_argument("--params", default=None, help=f"searched parameters (default: those the pipeline reads of "
                   f"{','.join(PARAMS)}; a sweep update never reads act_power)")
    g.add_argument("--r-range", default="1,7", help="kernel half-width r (k = 2r+1), ints LOW,HIGH")
    for name, default in (("alpha", "0.1,10"), ("beta", "0.1,10"), ("gamma", "1e-4,1")):
        g.add_argument(f"--{name}-range", default=default, help=f"{name} LOW,HIGH (log scale)")
    g.add_argument("--act-power-range", default="0,1.5", help="activation exponent LOW,HIGH (linear)")
    g.add_argument("--term-scale", choices=TERM_SCALES, default="none", help="fixed for the search (none = RIA-compatible)")
    g.add_argument("--nbr-form", choices=NBR_FORMS, default="relative")


def _pair(text: str, kind: type) -> tuple:
    try:
        lo, hi = (kind(float(v)) if kind is int else kind(v) for v in text.split(","))
    except ValueError as exc:
        raise ValueError(f"a range must be LOW,HIGH, got {text!r}") from exc
    return lo, hi


# each searched parameter as the CrepeParams field it sets and two values of it to compare
_PROBES = {"r": ("kernel", 3, 5), "alpha": ("alpha", 0.5, 2.0), "beta": ("beta", 0.5, 2.0),
           "gamma": ("gamma", 0.1, 0.2), "act_power": ("act_power", 0.25, 1.25)}


SEARCH_UPDATE = "none"
"""PHO's default weight update: the mask-only score. crepe's default update (admm-grad) re-chooses the mask
from the weights inside ADMM and reads no CRePE coefficient, so a search under it would be a no-op."""


def unread_params(target: PruneConfig) -> tuple[str, ...]:
    """The searched parameters ``target``'s prune never reads, whatever the others are: two values of
    one give equal :func:`pho.space.read_params` (the neighbourhood on, so only the pipeline
    decides). A sweep update without permutation never reads act_power."""
    base = dataclasses.replace(RIA_BASE, gamma=0.1)

    def read(field: str, value: float):
        return read_params(dataclasses.replace(target, crepe=dataclasses.replace(base, **{field: value})))

    return tuple(p for p, (field, a, b) in _PROBES.items() if read(field, a) == read(field, b))


def read_space_params(target: PruneConfig | None, asked: str | None) -> tuple[str, ...]:
    """The searched parameters: ``asked`` (comma-separated; default all of PARAMS) less
    :func:`unread_params`, each dropped with a warning: a trial would spend its prune on a no-op.
    A target that reads none of them (admm-grad chooses its mask from the weights) is refused."""
    unread = unread_params(target) if target is not None else ()
    params = PARAMS if asked is None else tuple(p for p in asked.split(",") if p.strip())
    kept = tuple(p for p in params if p not in unread)
    if not kept and unread:
        raise ValueError(f"the {target.resolved_update} update reads none of the searched CRePE parameters "
                         f"({','.join(params)}): every trial would prune alike; search with --update none "
                         "(the mask score), obs, admm, sweep or sweep-admm")
    ignored = [p for p in params if p in unread]
    if ignored and asked is not None:
        log.warning("not searching %s: the %s update never reads it (the sweep weighs columns by the OBS diagonal); "
                    "--update none searches the mask-only score", ",".join(ignored), target.resolved_update)
    return kept


def space_from_args(args: argparse.Namespace, target: PruneConfig | None = None) -> SearchSpace:
    """The search space of the flags; ``target`` (the pruning target) decides the default parameters."""
    base = dataclasses.replace(RIA_BASE, term_scale=args.term_scale, nbr_form=args.nbr_form)
    params = read_space_params(target, args.params)
    return SearchSpace(params=params, r_range=_pair(args.r_range, int), alpha_range=_pair(args.alpha_range, float),
                       beta_range=_pair(args.beta_range, float), gamma_range=_pair(args.gamma_range, float),
                       act_power_range=_pair(args.act_power_range, float), base=base)


def target_from_args(args: argparse.Namespace) -> PruneConfig:
    pattern = Pattern.parse(args.pattern) if args.pattern else Pattern()
    asked = 0.5 if args.sparsity is None else args.sparsity
    if pattern.structured and args.sparsity is not None and args.sparsity != pattern.sparsity_or(asked):
        raise ValueError(f"--pattern {pattern} fixes the sparsity at {pattern.sparsity_or(asked):g}; drop --sparsity")
    return base_config(pattern.sparsity_or(asked), pattern, args.update)


def study_parser(prog: str, doc: str | None, n_trials: int) -> argparse.ArgumentParser:
    """The flags ``pho.search`` and ``pho.hillclimb`` share: target, study, budget, outputs, space, setup."""
    ap = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sparsity", type=float, default=None, help="unstructured sparsity (default 0.5)")
    ap.add_argument("--pattern", default=None, help="N:M pattern instead (2:4, 4:8)")
    ap.add_argument("--update", choices=choices_of(PruneConfig, "update"), default=SEARCH_UPDATE,
                    help="weight update every trial's prune runs, as crepe.prune --update (default none: the mask "
                         f"score whose coefficients PHO fits; crepe's own, {get_method('crepe').default_update}, "
                         "chooses its mask from the weights and reads none of them)")
    ap.add_argument("--storage", required=True, help="Optuna storage URL, e.g. sqlite:///pho.db")
    ap.add_argument("--study-name", required=True)
    ap.add_argument("--n-trials", type=int, default=n_trials, help="complete trials the study should hold (resume target)")
    ap.add_argument("--timeout", type=float, default=None, help="stop this invocation after SEC seconds")
    ap.add_argument("--best-config", required=True, help="write the best config JSON here")
    ap.add_argument("--trial-log", default=None, help="trial log JSON (default: <best-config stem>_trials.json)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--log-level", default="INFO")
    add_space_args(ap)
    add_setup_args(ap)
    return ap


def best_config_record(study: optuna.Study, target: PruneConfig, source: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON written to --best-config: a ``crepe`` entry for ``crepe.prune --config`` plus provenance."""
    best = study.best_trial
    return {"crepe": best.user_attrs["crepe"], "method": "crepe", "sparsity": target.sparsity,
            "pattern": str(target.pattern), "source": source, "study": study.study_name, "trial": best.number,
            "value": best.value, "params": best.params, "realised_sparsity": best.user_attrs.get("realised_sparsity"),
            "complete_trials": len(completed(study)), **extra}


def trial_log_path(args: argparse.Namespace) -> Path:
    """--trial-log, or ``<best-config stem>_trials.json`` next to the best config."""
    best = Path(args.best_config)
    return Path(args.trial_log) if args.trial_log else best.with_name(best.stem + "_trials.json")


def check_outputs(args: argparse.Namespace, splits: tuple[str, ...] = ("calibration",)) -> None:
    """Fail before any work (no study is created) unless the study storage, the best config and the trial
    log can be written and the dataset's ``splits`` can be read."""
    check_storage(args.storage)
    check_output_file(args.best_config, "--best-config")
    check_output_file(trial_log_path(args), "--trial-log")
    for split in splits:
        check_data(args.dataset, split)


def write_outputs(study: optuna.Study, args: argparse.Namespace, record: dict[str, Any]) -> None:
    best, log_path = Path(args.best_config), trial_log_path(args)
    best.parent.mkdir(parents=True, exist_ok=True)
    if not args.no_plots:
        record["plots"] = write_plots(study, best.with_name(best.stem))
    write_json_atomic(best, record)
    write_json_atomic(log_path, {"study": study.study_name, "storage": args.storage, "attrs": study.user_attrs,
                                 "trials": trial_log(study)})
    print(f"best config (trial {record['trial']}, value {record['value']:.6g}) written to {best}; trial log {log_path}")
