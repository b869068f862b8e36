"""The precision of the dense stream's layer forward, judged on a held-out text (issue 22, the cost target).

crepe's default update carries the dense model's hidden states beside the pruned model's (``--dense-target
0.3``): one more layer forward per layer, about a quarter of a 128 x 512 prune and the part of its cost
above 1.5x SparseGPT's (``results/cost_ratio_c128.md``). On hardware that multiplies bfloat16 natively
that forward runs about 40% faster under bfloat16 autocast, with the hidden states it carries and every
statistic still float32 (``--dense-precision bfloat16``). A trial that also took the X^T (X_dense - X)
products in bfloat16 lost 2-9% at 70% on every text, and was dropped before this study.

Each cell prunes SmolLM2-135M with crepe's default (admm-grad update, bfloat16 products, the default's
damping, target and iterations) on the headline's 16 x 512 wikivital calibration (seed 0) through
``crepe.run.job.run``, with the dense forward in float32 and in bfloat16; it is scored by PPL on
lm-eval's task cards (the selection text, never a reported column); wikivital is shown, never used.

The rule, fixed before the cells ran (the mask selection's own rounding noise is about 2%,
``benchmarks.default_choice``): bfloat16 is the default (``auto`` where native) if its geometric mean
selection PPL over the settings is within 2% of float32's, else float32 stays.

    OMP_NUM_THREADS=1 python -m benchmarks.dense_precision --settings 2:4   # missing cells of one setting
    python -m benchmarks.dense_precision --table                            # only rebuild the table
"""

from __future__ import annotations

import argparse
from pathlib import Path
from statistics import geometric_mean as geomean

from benchmarks import common
from benchmarks.common import SELECTION_TEXT, Table
from crepe.config import PruneConfig
from crepe.run.options import RunOptions

SETTINGS = ("0.5", "2:4", "0.7")
PRECISIONS = ("float32", "bfloat16")
PRODUCTS = "bfloat16"
"""The admm-grad products the cells hold fixed: the default's where bfloat16 is native, the only
hardware on which ``auto`` takes the bfloat16 dense forward."""
TOLERANCE = 0.02
EVAL_WINDOWS = 16
OUT = common.RESULTS / "quality" / "dense_precision"
TABLE = common.RESULTS / "quality" / "dense_precision.md"
TABLES = [Table("results/quality/dense_precision.md",
                tuple(f"python -m benchmarks.dense_precision --settings {s}" for s in SETTINGS),
                covers=("results/quality/dense_precision/*",))]


def cell_name(setting: str, precision: str) -> str:
    return f"dense_{precision}__{common.setting_name(setting)}"


def cells(model: str, settings: tuple[str, ...], precisions: tuple[str, ...] = PRECISIONS) -> dict[str, RunOptions]:
    """Cell name -> its run options: each precision at each setting, explicit in every field the
    comparison holds fixed (so a record keeps its meaning when a default moves)."""
    base = RunOptions(model=model, max_eval_windows=EVAL_WINDOWS, seed=0, nsamples=16)
    fixed = PruneConfig().at_calibration(16 * 512)
    return {cell_name(s, p): common.prune_options(
                base, "crepe", s, update="admm-grad", admm_grad_damp=fixed.admm_grad_damp,
                dense_target=fixed.dense_target, dense_share=fixed.dense_share,
                admm_grad_iterations=fixed.admm_grad_iterations, admm_grad_products=PRODUCTS, dense_precision=p)
            for s in settings for p in precisions}


def build_parser() -> argparse.ArgumentParser:
    ap = common.settings_parser(__doc__, SETTINGS, OUT)
    ap.add_argument("--precisions", default=",".join(PRECISIONS),
                    help=f"comma-separated, from {', '.join(PRECISIONS)} (to split between processes)")
    return ap


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    return common.planned_cells(build_parser(), cells, SETTINGS, argv)


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as stored, for the cells that exist."""
    return common.stored_cells(planned(argv))


def by_precision(out: Path) -> dict[str, dict[str, dict]]:
    """Precision -> setting -> record."""
    records = common.read_records(out, "*__*.json")
    return {p: {s: records[cell_name(s, p)] for s in SETTINGS if cell_name(s, p) in records} for p in PRECISIONS}


def geometric_mean(cells: dict[str, dict]) -> float | None:
    """The geometric mean selection PPL over :data:`SETTINGS`; None until every setting has run."""
    if set(cells) != set(SETTINGS):
        return None
    return geomean(cells[s]["ppl"][SELECTION_TEXT] for s in SETTINGS)


def chosen(table: dict[str, dict[str, dict]]) -> str | None:
    """The precision the rule picks (module doc); None until both have every setting."""
    means = {p: geometric_mean(c) for p, c in table.items()}
    if any(m is None for m in means.values()):
        return None
    return "bfloat16" if means["bfloat16"] <= means["float32"] * (1 + TOLERANCE) else "float32"


def shipped() -> str:
    """What crepe's default dense forward is where bfloat16 is native ("auto" takes bfloat16 there)."""
    default = PruneConfig().dense_precision
    return "bfloat16" if default == "auto" else default


def render(out: Path) -> str:
    table = by_precision(out)
    own = [r for cells in table.values() for r in cells.values()]
    if not own:
        return "no results yet"
    lines = common.selection_intro(own, out, f"SmolLM2-135M, crepe's default update (admm-grad, {PRODUCTS} products) "
                                   "with its dense stream's layer forward in each precision")
    rule = (f"Rule (fixed before the cells ran): bfloat16 if its geometric mean {SELECTION_TEXT} PPL over the settings "
            f"is within {TOLERANCE:.0%} of float32's, else float32.")
    pick = chosen(table)
    decision = [] if pick is None else [
        f"Chosen: **{pick}**; PruneConfig's dense precision runs {shipped()} where bfloat16 is native: "
        + ("the same." if pick == shipped() else "DIFFERENT: update crepe/config.py.")]
    return "\n".join(lines + [*common.selection_table("dense forward", table, SETTINGS, geometric_mean), "",
                               rule, *decision])


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    precisions = common.chosen(args.precisions, PRECISIONS, "--precisions")
    common.selection_main(parser, lambda model, settings: cells(model, settings, precisions), SETTINGS, render,
                          OUT, TABLE, args)


if __name__ == "__main__":
    main()
