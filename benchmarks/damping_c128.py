"""The admm-grad damping at 128 calibration windows, judged on a held-out text (issue 22).

crepe's default damping (``--admm-grad-damp`` 0.5 on the unit-diagonal scale: a ridge toward the
dense weights) and dense target (0.3) were chosen on whole prunes with the 16 x 512 calibration
(``benchmarks.default_choice``), where the Hessians come from 8,192 tokens. With 128 x 512 (65,536
tokens) each Hessian is estimated from eight times the tokens, so a ridge sized for the small
sample may pull too hard: at 128 windows more iterations already help the held-out text a little
(``results/quality/iteration_draws_c128.md``), which is what a weaker ridge would do too.

Each cell prunes SmolLM2-135M with crepe's default update (``--update admm-grad``, 6 iterations, 5
choosing, dense target 0.3) on the 128 x 512 wikivital calibration (seed 0) through
``crepe.run.job.run``, at damping 0.3 and 0.15 (0.15 is about 0.5 / sqrt(8), the ridge scaled to
the tokens' standard error). The reference, 0.5, is the 6/5 cell of
``results/quality/iteration_draws_c128`` (the same explicit config; no code that moves the default's
weights has changed since it ran). Cells are scored by PPL on lm-eval's task cards (the selection
text, never a reported column); wikivital, the calibration's domain, is shown, never used.

The rule, fixed before these cells ran (the 16-window grid's, ``benchmarks.default_choice``): among
the dampings whose geometric mean selection PPL over the three settings is within 2% of the lowest,
the cheapest (they cost the same), then the lowest mean. PruneConfig must ship the pick for a
calibration of 128 windows.

    OMP_NUM_THREADS=1 python -m benchmarks.damping_c128 --settings 2:4   # missing cells of one setting
    python -m benchmarks.damping_c128 --table                            # only rebuild the table
"""

from __future__ import annotations

import argparse
from pathlib import Path
from statistics import geometric_mean as geomean

from benchmarks import common, iteration_draws
from benchmarks.common import SELECTION_TEXT, Table
from crepe.config import PruneConfig
from crepe.run.options import RunOptions

SETTINGS = ("2:4", "0.7", "0.5")
NSAMPLES = 128
REFERENCE = 0.5
"""The damping the reference cells ran with (the 16-window choice)."""
DAMPS = (0.3, 0.15)
"""The dampings this benchmark runs; the reference's cells come from ``iteration_draws``."""
COUNT = (6, 5)
DENSE_TARGET = 0.3
TOLERANCE = 0.02
EVAL_WINDOWS = 16
OUT = common.RESULTS / "quality" / "damping_c128"
TABLE = common.RESULTS / "quality" / "damping_c128.md"
REFERENCE_DIR = iteration_draws.STUDIES[NSAMPLES].out
TABLES = [Table("results/quality/damping_c128.md",
                tuple(f"python -m benchmarks.damping_c128 --settings {s}" for s in SETTINGS),
                covers=("results/quality/damping_c128/*",))]


def cell_name(setting: str, damp: float) -> str:
    return f"damp{damp:g}__{common.setting_name(setting)}"


def cells(model: str, settings: tuple[str, ...], damps: tuple[float, ...] = DAMPS) -> dict[str, RunOptions]:
    """Cell name -> its run options: every damping of ``damps`` at every setting, explicit in
    every field the comparison holds fixed (so a record keeps its meaning when a default moves)."""
    base = RunOptions(model=model, max_eval_windows=EVAL_WINDOWS, seed=0, nsamples=NSAMPLES)
    return {cell_name(s, d): common.prune_options(
                base, "crepe", s, update="admm-grad", admm_grad_damp=d, dense_target=DENSE_TARGET,
                admm_grad_iterations=COUNT[0], admm_grad_select_iterations=COUNT[1], admm_grad_products=common.STUDY_PRODUCTS,
                dense_precision=common.STUDY_DENSE_PRECISION)
            for s in settings for d in damps}


def build_parser() -> argparse.ArgumentParser:
    ap = common.settings_parser(__doc__, SETTINGS, OUT)
    ap.add_argument("--damps", default=None,
                    help=f"comma-separated dampings to run, from {', '.join(map(str, DAMPS))} (to split between processes)")
    return ap


def chosen_damps(arg: str | None) -> tuple[float, ...]:
    names = {f"{d:g}": d for d in DAMPS}
    return tuple(names[d] for d in common.chosen(arg or ",".join(names), names, "--damps"))


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    return common.planned_cells(build_parser(), cells, SETTINGS, argv)


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as stored, for the cells that exist."""
    return common.stored_cells(planned(argv))


def reference_cells() -> dict[str, dict]:
    """Setting -> the reference damping's record (``iteration_draws``' 128-window 6/5 cell), where it exists."""
    found = common.read_records(REFERENCE_DIR, "*__*.json")
    return {s: found[name] for s in SETTINGS
            if (name := iteration_draws.cell_name(s, 0, COUNT)) in found}


def by_damping(out: Path) -> dict[float, dict[str, dict]]:
    """Damping -> setting -> record, the reference's included."""
    records = common.read_records(out, "*__*.json")
    table = {REFERENCE: reference_cells()}
    for d in DAMPS:
        table[d] = {s: records[cell_name(s, d)] for s in SETTINGS if cell_name(s, d) in records}
    return table


def geometric_mean(cells: dict[str, dict]) -> float | None:
    """The geometric mean selection PPL over :data:`SETTINGS`; None until every setting has run."""
    if set(cells) != set(SETTINGS):
        return None
    return geomean(cells[s]["ppl"][SELECTION_TEXT] for s in SETTINGS)


def chosen(table: dict[float, dict[str, dict]]) -> float | None:
    """The damping the rule picks (module doc); None until every damping has every setting."""
    means = {d: geometric_mean(c) for d, c in table.items()}
    if any(m is None for m in means.values()):
        return None
    best = min(means.values())
    return min((d for d, m in means.items() if m <= best * (1 + TOLERANCE)), key=lambda d: means[d])


def shipped() -> float:
    """The damping crepe ships for a calibration of 128 windows of 512 tokens."""
    return PruneConfig().at_calibration(NSAMPLES * 512).admm_grad_damp


def render(out: Path) -> str:
    table = by_damping(out)
    own = [r for d, cells in table.items() if d != REFERENCE for r in cells.values()]
    if not own:
        return "no results yet"
    lines = common.selection_intro(
        own, out, f"SmolLM2-135M, crepe's default update (admm-grad, {COUNT[0]} iterations, {COUNT[1]} choosing, "
        f"dense target {DENSE_TARGET:g}) at each damping",
        f"The {REFERENCE:g} row is the {COUNT[0]}/{COUNT[1]} cells of {REFERENCE_DIR.relative_to(common.RESULTS.parent)} "
        "(the same config). ")
    rule = (f"Rule (fixed before the cells ran): among the dampings within {TOLERANCE:.0%} of the lowest geometric mean "
            f"{SELECTION_TEXT} PPL over the settings, the cheapest (all cost the same), then the lowest mean.")
    pick = chosen(table)
    decision = [] if pick is None else [
        f"Chosen: **{pick:g}**; PruneConfig ships {shipped():g} at {NSAMPLES} windows: "
        + ("the same." if pick == shipped() else "DIFFERENT: update crepe/config.py.")]
    labelled = {f"{d:g}": cells for d, cells in table.items()}
    return "\n".join(lines + [*common.selection_table("damping", labelled, SETTINGS, geometric_mean), "",
                               rule, *decision])


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    damps = chosen_damps(args.damps)
    common.selection_main(parser, lambda model, settings: cells(model, settings, damps), SETTINGS, render,
                          OUT, TABLE, args)


if __name__ == "__main__":
    main()
