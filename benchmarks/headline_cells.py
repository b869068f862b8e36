"""The headline table's cells: its rows (method and options), settings, record names and run options.

``benchmarks.headline`` runs them, ``benchmarks.headline_table`` renders their records, and the cost
benchmarks (``cost_ratio``, ``cost_7b``) and ``benchmarks.targets`` read the same declarations.
"""

from __future__ import annotations

from pathlib import Path
from statistics import geometric_mean
from typing import Any

from benchmarks import common
from crepe.run.options import RunOptions

SETTINGS = ("0.5", "0.6", "0.7", "2:4", "4:8")
LABELS = {"0.5": "50%", "0.6": "60%", "0.7": "70%", "2:4": "2:4", "4:8": "4:8"}
CELLS: dict[str, tuple[str, dict[str, Any]]] = {  # row label -> (method, other PruneConfig fields)
    "SparseGPT": ("sparsegpt", {}),
    "ADMM-Grad": ("admm-grad", {}),
    "ALPS": ("alps", {}),
    "RIA (mask only)": ("ria", {}),
    "crepe mask-only (--update none)": ("crepe", {"update": "none"}),
    "crepe + alps (--update alps)": ("crepe", {"update": "alps"}),
    "crepe default (--update admm-grad)": ("crepe", {}),
    "crepe default in float32 (--admm-grad-products float32 --dense-precision float32)": (
        "crepe", {"admm_grad_products": "float32", "dense_precision": "float32"}),
}
DEFAULT_ROW = "crepe default (--update admm-grad)"
FLOAT32_ROW = "crepe default in float32 (--admm-grad-products float32 --dense-precision float32)"  # the default where bfloat16 is not native
NAMED_FIELDS = ("update", "admm_grad_products")  # the PruneConfig fields a cell's record name carries
ZEROSHOT = ("wikivital_describe",)  # the shipped local lm-eval task (crepe/evaluation/tasks)
OUT = common.RESULTS / "headline"
TABLE = common.RESULTS / "headline.md"
EVAL_WINDOWS = 16  # per text
SEED_ROWS = ("ADMM-Grad", DEFAULT_ROW)
MASK_SEED_ROWS = ("RIA (mask only)", "crepe mask-only (--update none)")
"""The mask-only draws: crepe's mask-only score against RIA's, every setting (the issue: mask-only crepe
still beats RIA), beside :data:`SEED_ROWS`' draws."""
SEEDS = (1, 2)
SEEDS_TABLE = common.RESULTS / "headline_seeds.md"
SECOND_MODEL = "gemma-3-270m"  # a second architecture (Gemma 3), offline from the package registry
SECOND_MODEL_SETTINGS = ("0.5", "2:4")
SECOND_MODEL_ROWS = ("SparseGPT", "ADMM-Grad", "ALPS", "RIA (mask only)", "crepe mask-only (--update none)",
                     DEFAULT_ROW, FLOAT32_ROW)  # float32: its rounding spread beside the default
SECOND_MODEL_SEED_ROWS = ("ALPS", DEFAULT_ROW, FLOAT32_ROW)
"""The second model's draws: ALPS, the closest baseline on its calibration text, against the default
and the default in float32 (that text's margins are inside the spread of float rounding)."""
SECOND_MODEL_SEEDS = (1, 2, 3, 4)
SECOND_MODEL_SEEDS_TABLE = common.RESULTS / f"headline_{SECOND_MODEL}_seeds.md"
SECOND_MODEL_EVAL_WINDOWS = 8  # half the windows: a 262k-token vocabulary doubles the evaluation work per token
ISSUE_ROWS = ("SparseGPT", "ADMM-Grad", "ALPS", "RIA (mask only)", "crepe mask-only (--update none)",
              DEFAULT_ROW)  # the issue's five rows, and RIA for mask-only crepe to beat


def cell_name(label: str, setting: str) -> str:
    """``<method>[_<update>][_<products>]__<setting>``: crepe_none__2-4, crepe_float32__0.7."""
    method, prune = CELLS[label]
    return method + "".join(f"_{prune[k]}" for k in NAMED_FIELDS if k in prune) + f"__{common.setting_name(setting)}"


def base_options(model: str, nsamples: int = 16, seed: int = 0, eval_windows: int = EVAL_WINDOWS) -> RunOptions:
    return RunOptions(model=model, max_eval_windows=eval_windows, nsamples=nsamples, seed=seed)


def cells(model: str, settings: tuple[str, ...] = SETTINGS, nsamples: int = 16, seed: int = 0,
          rows: tuple[str, ...] = tuple(CELLS), eval_windows: int = EVAL_WINDOWS) -> dict[str, RunOptions]:
    """Cell name -> its options, SparseGPT first in every setting (the ratio's reference)."""
    base = base_options(model, nsamples, seed, eval_windows)
    return {cell_name(label, s): common.prune_options(base, method, s, **prune)
            for s in settings for label, (method, prune) in CELLS.items() if label in rows}


def result_dir(model: str, nsamples: int = 16, seed: int = 0) -> Path:
    """results/headline, or headline_<model> / _c<nsamples> / _s<seed> for another model and calibrations."""
    suffix = ((f"_{model}" if model != RunOptions.model else "") + (f"_c{nsamples}" if nsamples != 16 else "")
              + (f"_s{seed}" if seed else ""))
    return common.RESULTS / f"headline{suffix}" if suffix else OUT


def cpu_dir(out: Path) -> Path:
    """The folder of the CPU-time records of the table whose cells are in ``out``: ``<out>_cpu``."""
    return out.with_name(out.name + "_cpu")


def timed_rows(rows: tuple[str, ...]) -> tuple[str, ...]:
    """``rows`` in table order with SparseGPT first (always timed: every ratio's reference)."""
    return tuple(label for label in CELLS if label in rows or label == "SparseGPT")


def timing_plan(model: str, setting: str, nsamples: int, seed: int, rows: tuple[str, ...],
                eval_windows: int = EVAL_WINDOWS) -> dict[str, RunOptions]:
    """Each of :func:`timed_rows` -> its cell's options at ``setting``, SparseGPT first."""
    plan = cells(model, (setting,), nsamples, seed, timed_rows(rows), eval_windows)
    return {label: plan[cell_name(label, setting)] for label in timed_rows(rows)}


def timing_config(model: str, setting: str, nsamples: int, seed: int, rows: tuple[str, ...],
                  eval_windows: int = EVAL_WINDOWS) -> dict[str, Any]:
    """The explicit config of one ``--cpu-time`` record: each timed row's cell config at ``setting``."""
    return timing_config_of(setting, timing_plan(model, setting, nsamples, seed, rows, eval_windows))


def timing_config_of(setting: str, plan: dict[str, RunOptions]) -> dict[str, Any]:
    """The explicit config of one ``--cpu-time`` record from its :func:`timing_plan`."""
    return {"setting": setting, "rows": {label: common.cell_config(opts) for label, opts in plan.items()}}


def unseen_mean(rep: dict) -> float:
    """The geometric mean of a cell's PPL on the texts after the first (the calibration's), NaN without any."""
    unseen = list(rep["ppl"].values())[1:]
    return geometric_mean(unseen) if unseen else float("nan")
