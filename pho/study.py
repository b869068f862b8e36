"""Optuna study plumbing shared by ``pho.search`` and ``pho.hillclimb``.

A study is identified by (storage, name). Its user attrs hold the search space and the objective
it was created with; reopening it with a different space or objective raises ValueError before
anything is written, so an existing study is never altered by a mistaken command. Bad storage
paths and unknown samplers fail the same way, before any work.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

log = logging.getLogger(__name__)

SAMPLERS = ("cmaes", "tpe")


def check_storage(url: str) -> str:
    """Validate a storage URL; for ``sqlite:///PATH`` the file (or its folder) must be writable."""
    if not url or "://" not in url:
        raise ValueError(f"storage must be a URL such as sqlite:///pho.db, got {url!r}")
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):]).expanduser()
        if path.is_dir():
            raise ValueError(f"storage path {path} is a folder, not a database file")
        folder = path.parent if str(path.parent) else Path(".")
        if path.exists() and not os.access(path, os.W_OK):
            raise ValueError(f"storage file {path} is not writable")
        if not path.exists() and not (folder.is_dir() and os.access(folder, os.W_OK)):
            raise ValueError(f"storage path {path} is not writable (folder {folder} missing or read-only)")
    return url


def make_sampler(name: str, seed: int, n_params: int = 2) -> optuna.samplers.BaseSampler:
    """A seeded sampler: ``cmaes`` (default; needs the ``cmaes`` package) or ``tpe``."""
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401  (optuna imports it lazily and fails late otherwise)
        except ImportError as exc:
            raise ValueError("sampler cmaes needs the 'cmaes' package: pip install cmaes") from exc
        if n_params < 2:
            log.warning("CMA-ES needs >= 2 parameters; with one it samples independently (random)")
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _rdb_storage(url: str, heartbeat: bool = True) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats: a trial left RUNNING by a killed process is re-queued (same
    params) by the next ``optimize`` once its heartbeat is older than the grace period (30 s).
    Without ``heartbeat`` (ask/tell users such as the hill climb) the caller handles stale trials."""
    if not heartbeat:
        return optuna.storages.RDBStorage(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # optuna >= 4.9
            retry = {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)}
        else:
            retry = {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=2)}
        return optuna.storages.RDBStorage(url, heartbeat_interval=10, grace_period=30, **retry)


def open_study(storage: str, name: str, direction: str, attrs: dict[str, Any],
               sampler: optuna.samplers.BaseSampler | None = None, heartbeat: bool = True,
               pruner: optuna.pruners.BasePruner | None = None) -> tuple[optuna.Study, bool]:
    """(study, created). An existing study must carry the same ``attrs`` (space, objective, ...):
    otherwise ValueError names the first differing entry and the study is left untouched."""
    if not name:
        raise ValueError("a study name is required (--study-name)")
    rdb = _rdb_storage(check_storage(storage), heartbeat)
    attrs = _normalise(attrs)
    if name in optuna.study.get_all_study_names(rdb):
        study = optuna.load_study(study_name=name, storage=rdb, sampler=sampler, pruner=pruner)
        stored = study.user_attrs
        for key, value in attrs.items():
            if key in stored and stored[key] != value:
                raise ValueError(f"study {name!r} in {storage} was created with a different {key}: "
                                 f"{stored[key]} (now {value}); use another --study-name")
        if study.direction.name.lower() != direction:
            raise ValueError(f"study {name!r} optimises in direction {study.direction.name.lower()}, not {direction}")
        for key, value in attrs.items():
            if key not in stored:  # a study killed right after creation: adopt it
                study.set_user_attr(key, value)
        return study, False
    study = optuna.create_study(storage=rdb, study_name=name, direction=direction, sampler=sampler, pruner=pruner,
                                load_if_exists=True)
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    return study, True


def trial_cost(wall_start: float, cpu_start: float) -> dict[str, float]:
    """A trial's cost as user attrs: wall and process-CPU seconds since ``time.perf_counter()`` /
    ``time.process_time()`` were ``wall_start`` / ``cpu_start``, and the process CPU time so far
    (model loading and statistics pass included), from which the trial log gives CPU-time-to-best."""
    cpu = time.process_time()
    return {"seconds": time.perf_counter() - wall_start, "cpu_seconds": cpu - cpu_start, "process_cpu_seconds": cpu}


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that ran to an end: COMPLETE, or PRUNED by a multi-fidelity pruner."""
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def trial_log(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial as a JSON-safe dict (number, state, value, params, user attrs, seconds)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
                     "user_attrs": t.user_attrs, "seconds": seconds,
                     "start": t.datetime_start.isoformat() if t.datetime_start else None})
    return rows


def write_plots(study: optuna.Study, prefix: str | Path) -> dict[str, str]:
    """Optuna's matplotlib history and importance plots as ``<prefix>_history.png`` and
    ``<prefix>_importance.png``; a plot that cannot be made is logged and skipped.

    Returns plot name -> path or the reason it was skipped.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    out: dict[str, str] = {}
    makers = {"history": ovm.plot_optimization_history, "importance": ovm.plot_param_importances}
    for kind, maker in makers.items():
        path = Path(f"{prefix}_{kind}.png")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ax = maker(study)
            ax.figure.set_size_inches(7, 4.5)
            ax.figure.tight_layout()
            ax.figure.savefig(path, dpi=110)
            out[kind] = str(path)
        except Exception as exc:  # noqa: BLE001 (importance needs >= 2 params and enough trials)
            out[kind] = f"skipped: {type(exc).__name__}: {exc}"
            log.warning("%s plot skipped: %s", kind, exc)
        finally:
            plt.close("all")
    return out
