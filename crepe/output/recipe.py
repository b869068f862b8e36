"""Recipes: the resolved configuration of a run as YAML (or JSON), reusable across models.

A recipe holds the pruning config (``prune``: :meth:`crepe.config.PruneConfig.to_dict`) and the run
options a result depends on (``run``: calibration and evaluation settings, dtype). It does not
name the model or where outputs go. ``crepe.prune --recipe FILE`` and ``crepe.oneshot(recipe=...)``
accept one; every saved folder carries its own as ``recipe.yaml``, so
``python -m crepe.prune --model OTHER --recipe runs/x/recipe.yaml`` repeats a run on another model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

import yaml

from crepe.config import PruneConfig
from crepe.io.files import write_atomic

RECIPE_NAME = "recipe.yaml"
RECIPE_VERSION = 1
def run_keys(options: Any) -> tuple[str, ...]:
    """The run options a result depends on: the fields of ``options`` (a :class:`crepe.run.options.RunOptions`
    or its class) whose metadata says ``recipe``; output paths, the device, logging and the model are not
    recipe. ``crepe.run.options.RUN_KEYS`` holds them."""
    return tuple(f.name for f in dataclasses.fields(options) if f.metadata.get("recipe"))


def recipe_from_options(opts: Any) -> dict[str, Any]:
    """The recipe of a :class:`crepe.run.options.RunOptions`."""
    return {"crepe_recipe": RECIPE_VERSION, "prune": opts.prune.to_dict(),
            "run": {key: getattr(opts, key) for key in run_keys(opts)}}


def read_recipe(recipe: str | Path | dict[str, Any], keys: Iterable[str] | None = None) -> dict[str, Any]:
    """A recipe from a dict, a YAML/JSON file, or YAML/JSON text; malformed input raises ValueError.
    ``keys``: the run keys it may hold (:func:`run_keys`; None: not checked)."""
    if isinstance(recipe, dict):
        data = recipe
    else:
        text = str(recipe)
        path = Path(text).expanduser()
        if "\n" not in text and not text.lstrip().startswith("{"):
            path = path / RECIPE_NAME if path.is_dir() else path
            if not path.is_file():
                raise ValueError(f"recipe file not found: {text}")
            text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)  # YAML is a superset of JSON
        except yaml.YAMLError as exc:
            raise ValueError(f"recipe is not valid YAML/JSON: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("prune"), dict):
        raise ValueError("a recipe needs a 'prune' mapping (and optionally 'run'); see crepe/output/recipe.py")
    unknown = set(data) - {"crepe_recipe", "prune", "run"}
    unknown_run = set(data.get("run") or {}) - set(keys) if keys is not None else set()
    if unknown or unknown_run:
        raise ValueError(f"unknown recipe keys: {sorted(unknown | {f'run.{k}' for k in unknown_run})}")
    return data


def apply_recipe(opts: Any, recipe: str | Path | dict[str, Any]) -> Any:
    """``opts`` with the recipe's pruning config and run options (the recipe wins for what it holds)."""
    data = read_recipe(recipe, run_keys(opts))
    return dataclasses.replace(opts, prune=PruneConfig.from_dict(data["prune"]), **(data.get("run") or {}))


def with_recipe(opts: Any, defaults: Any, recipe: str | Path | dict[str, Any]) -> Any:
    """Apply ``recipe`` to ``opts``, refusing settings in ``opts`` that differ from ``defaults`` (the
    same options built with nothing chosen) where the recipe would silently replace them."""
    chosen, base = _flat(recipe_from_options(opts)), _flat(recipe_from_options(defaults))
    conflicts = sorted(k for k in chosen if chosen[k] != base.get(k))
    if conflicts:
        raise ValueError(f"the recipe sets the pruning config and run options; do not also change {', '.join(conflicts)}")
    return apply_recipe(opts, recipe)


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def write_recipe(path: str | Path, recipe: dict[str, Any]) -> Path:
    """Write ``recipe`` as YAML atomically; returns the path."""
    text = "# crepe recipe: python -m crepe.prune --model MODEL --recipe recipe.yaml\n" + yaml.safe_dump(recipe, sort_keys=False)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return Path(path)
