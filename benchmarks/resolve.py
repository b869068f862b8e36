"""Resolve a command line to its config through the CURRENT parsers and config objects.

Nothing here loads a model or prunes: a command is only parsed. The benchmarks stamp their records
with these configs, and the results test group (tests/test_results.py, through each module's
``planned``/``recorded``) compares every committed record's stored config with what its command
gives today, so a changed default or flag meaning fails that group, never silently.

    resolve(["python", "-m", "crepe.prune", "--method", "ria", "--sparsity", "0.5"])
"""

from __future__ import annotations

import dataclasses
from typing import Any

from crepe.output.recipe import ADMM_GRAD_BEFORE_OPTIONS
from crepe.run.options import RUN_KEYS as RECIPE_KEYS

# record keys that only say where a cache lives: never part of a result
IGNORED_KEYS = frozenset({"cache_dir"})
# crepe.prune options besides the PruneConfig that a result depends on: the model and the recipe's run options
RUN_KEYS = ("model", *RECIPE_KEYS)


def split_program(argv: list[str]) -> tuple[str, list[str]]:
    """(``crepe.prune``, the flags) from ``python -m crepe.prune ...`` (environment assignments such as
    OMP_NUM_THREADS=1 are skipped)."""
    argv = [a for a in argv if not ("=" in a.split(" ")[0] and a.split("=")[0].isupper())]
    if argv and argv[0].split("/")[-1].startswith("python"):
        argv = argv[1:]
    if argv[:1] == ["-m"]:
        return argv[1], argv[2:]
    return argv[0], argv[1:]


def run_args(options: dict[str, Any]) -> dict[str, Any]:
    """The :data:`RUN_KEYS` of parsed flags or of a report's stored options."""
    return {k: options[k] for k in RUN_KEYS if k in options}


def effective(config: dict[str, Any]) -> dict[str, Any]:
    """A PruneConfig dict without the hyperparameters its method never reads (CRePE's for the other
    scorers, SparseGPT's for the others), so a baseline is not stale when CRePE's defaults move."""
    drop = ({"crepe"} if config.get("method") != "crepe" else set()) | (
        {"sparsegpt_blocksize", "sparsegpt_damp"} if config.get("method") != "sparsegpt" else set())
    return {k: v for k, v in config.items() if k not in drop}


def prune_command(flags: list[str]) -> dict[str, Any]:
    """``python -m crepe.prune FLAGS`` -> {"config": PruneConfig.to_dict() (see :func:`effective`), "run":
    the other flags}."""
    from crepe.cli.prune import build_parser, config_from_args

    args = build_parser().parse_args(flags)
    return {"config": effective(config_from_args(args).to_dict()), "run": run_args(vars(args))}


def _study_parts(module, flags: list[str]):
    from pho.search import space_from_args, target_from_args
    from pho.workspace import setup_from_args

    args = module.build_parser().parse_args(flags)
    target = target_from_args(args)
    return args, setup_from_args(args), space_from_args(args, target), target


def search_command(flags: list[str]) -> dict[str, Any]:
    """``python -m pho.search FLAGS`` -> the study attributes it records (space, sampler, objective)."""
    import pho.search as search
    from pho.proxies import get_proxy, resolve_proxy

    args, setup, space, target = _study_parts(search, flags)
    args.proxy = resolve_proxy(args.proxy, target.pattern.structured)  # as pho.search.main does
    args.e2e_windows = args.e2e_windows or get_proxy(args.proxy).windows or None
    return {**search.study_attrs(args, space, target, setup), "n_trials": args.n_trials}


def hillclimb_command(flags: list[str]) -> dict[str, Any]:
    """``python -m pho.hillclimb FLAGS`` -> the study attributes it records (space, step, objective)."""
    import pho.hillclimb as hillclimb

    args, setup, space, target = _study_parts(hillclimb, flags)
    return {**hillclimb.study_attrs(args, space, target, setup), "n_trials": args.n_trials}


def vit_command(flags: list[str]) -> dict[str, Any]:
    """``python -m crepe.vit FLAGS`` -> {"config": ViTPruneConfig.to_dict()}."""
    from crepe.vit.__main__ import config_from_args, parse_args

    return {"config": config_from_args(parse_args(flags)).to_dict()}


MODULES = {"crepe.prune": prune_command, "pho.search": search_command, "pho.hillclimb": hillclimb_command,
           "crepe.vit": vit_command}


def resolve(argv: list[str]) -> dict[str, Any]:
    """The resolved config of one command of a library entry point (see MODULES)."""
    program, flags = split_program(argv)
    if program not in MODULES:
        raise ValueError(f"no resolver for {program!r}; known: {', '.join(MODULES)}")
    return MODULES[program](flags)


def unread_options(config: dict[str, Any]) -> frozenset[str]:
    """The admm-grad update's options (:data:`crepe.output.recipe.ADMM_GRAD_BEFORE_OPTIONS`) when
    ``config`` is a PruneConfig dict whose prune ran another update (``resolved_update``): it never read
    them, so a moved default of theirs leaves its record current. Empty for any other dict."""
    if "method" in config and config.get("resolved_update") not in (None, "admm-grad"):
        return frozenset(ADMM_GRAD_BEFORE_OPTIONS)
    return frozenset()


def read_crepe(config: dict[str, Any]) -> dict[str, Any]:
    """A PruneConfig dict (``to_dict``) with its ``crepe`` entry as :func:`crepe.config.read_params`
    gives it: the fields its prune never reads at today's defaults, so a record is not stale when only
    those moved (the default admm-grad update and the other methods read none). Any other dict, or
    one today's config refuses, comes back unchanged."""
    from crepe.config import PruneConfig, read_params

    if not ({"method", "crepe", "resolved_update"} <= set(config) and isinstance(config["crepe"], dict)):
        return config
    try:
        read = read_params(PruneConfig.from_dict(config))
    except (ValueError, TypeError):
        return config
    return {**config, "crepe": {k: v for k, v in dataclasses.asdict(read).items() if k in config["crepe"]}}


def differences(recorded: Any, resolved: Any, path: str = "") -> list[str]:
    """Where ``resolved`` disagrees with ``recorded``, one ``key: recorded -> now`` line each. Only the
    keys the record holds are compared: an option added since (at a default) is not a difference,
    unless it is an admm-grad option whose default now differs from what the update ran before it
    existed (:data:`crepe.output.recipe.ADMM_GRAD_BEFORE_OPTIONS`). CRePE parameters a prune config
    never reads are not compared (:func:`read_crepe`), nor the admm-grad update's options where another
    update ran (:func:`unread_options`)."""
    if isinstance(recorded, dict) and isinstance(resolved, dict):
        recorded, resolved = read_crepe(recorded), read_crepe(resolved)
        out, unread = [], unread_options(recorded)
        if recorded.get("resolved_update") == "admm-grad":
            for key, before in ADMM_GRAD_BEFORE_OPTIONS.items():
                if key not in recorded and key in resolved and resolved[key] != before:
                    out.append(f"{path}.{key}: {before!r} (before the option) -> {resolved[key]!r}")
        for key, value in recorded.items():
            if key in IGNORED_KEYS or key in unread:
                continue
            sub = f"{path}.{key}" if path else str(key)
            out += [f"{sub}: missing now"] if key not in resolved else differences(value, resolved[key], sub)
        return out
    if isinstance(recorded, (list, tuple)) and isinstance(resolved, (list, tuple)):
        recorded, resolved = list(recorded), list(resolved)
    return [] if recorded == resolved else [f"{path}: {recorded!r} -> {resolved!r}"]


def prune_report(path) -> dict[str, Any] | None:
    """What a ``crepe.prune --report`` file records, in :func:`prune_command`'s shape, with the
    command from its provenance (None for reports written before provenance existed)."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        return None
    rep = json.loads(path.read_text())
    command = rep.get("provenance", {}).get("argv")
    run = run_args(rep["options"])
    return {"command": command, "config": {"config": effective(rep["config"]), "run": run}}


def planned_prune(command: list[str]) -> dict[str, Any]:
    """A planned ``crepe.prune`` run: its command and the config that command resolves to now."""
    return {"command": command, "config": resolve(command)}
