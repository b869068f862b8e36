"""Fewer ADMM iterations for crepe's default, judged over calibration draws (issue 22, the cost target).

Each admm-grad iteration is one [out, in] x [in, in] product per linear, most of the default's cost
above SparseGPT's at wide layers. A per-linear screen (``benchmarks.convergence``) finds the error on
a held-out text flat from about 6 iterations on: extra iterations fit the calibration text. Whole
prunes disagree on one draw only at the noise level of one draw: a 70% cell moves by 8% or more with
the calibration seed (docs/quality.md, "Fewer iterations at the default's pace"). So here each
count prunes SmolLM2-135M (crepe's default, ``--update admm-grad``, through ``crepe.run.job.run``;
the headline's 16 x 512 wikivital calibration) with calibration seeds 0, 1 and 2, and is scored by
the PPL on the selection text (lm-eval's task cards, never a reported column) against the default's
count on the same draw.

The rule, fixed before these cells ran: a count matches the default's when, over every (setting,
seed) cell both have run, the geometric mean of its selection-PPL ratios to the default's is at most
1 + :data:`TOLERANCE`, and no setting's own geometric mean ratio is above 1 + :data:`SETTING_TOLERANCE`;
only settings with all seeds run count. The pick: the fewest iterations that matches.

    OMP_NUM_THREADS=1 python -m benchmarks.iteration_draws --settings 0.7   # missing cells of one setting
    OMP_NUM_THREADS=1 python -m benchmarks.iteration_draws --settings 0.5 --seeds 2   # one seed's
    python -m benchmarks.iteration_draws --table                            # only rebuild the table
"""

from __future__ import annotations

import argparse
from statistics import geometric_mean as geomean
from pathlib import Path

from benchmarks import common
from benchmarks.common import SELECTION_TEXT, Table
from crepe.config import PruneConfig
from crepe.methods.gradual import selecting_iterations
from crepe.run.options import RunOptions

SETTINGS = ("2:4", "0.7", "0.5")
SEEDS = (0, 1, 2)
COUNTS = ((15, 11), (10, 8), (8, 6), (6, 5))
"""(iterations, mask-choosing iterations); the first is the reference, the default when the first
cells ran (15 iterations, three quarters choosing). The rule picked 10/8 of the first two, which
PruneConfig shipped from 7f2c19d; 8/6 and 6/5 were added later (the per-linear screen,
``benchmarks.convergence``, finds the held-out error flat from 6 iterations), judged by the same rule
against the same reference: it picked 6/5, which PruneConfig has shipped since."""
TOLERANCE = 0.02
SETTING_TOLERANCE = 0.05
EVAL_WINDOWS = 16
OUT = common.RESULTS / "quality" / "iteration_draws"
TABLE = common.RESULTS / "quality" / "iteration_draws.md"
TABLES = [Table("results/quality/iteration_draws.md",
                tuple(f"python -m benchmarks.iteration_draws --settings {s}" for s in SETTINGS),
                covers=("results/quality/iteration_draws/*",))]

Count = tuple[int, int]


def cell_name(setting: str, seed: int, count: Count) -> str:
    return f"it{count[0]}_choose{count[1]}__seed{seed}__{common.setting_name(setting)}"


def cells(model: str, settings: tuple[str, ...], seeds: tuple[int, ...] = SEEDS) -> dict[str, RunOptions]:
    """Cell name -> its run options: every count at every setting and seed (the counts are explicit,
    so a record keeps its meaning when the default's count moves)."""
    out = {}
    for setting in settings:
        for seed in seeds:
            base = RunOptions(model=model, max_eval_windows=EVAL_WINDOWS, seed=seed)
            for count in COUNTS:
                out[cell_name(setting, seed, count)] = common.prune_options(
                    base, "crepe", setting, update="admm-grad", admm_grad_iterations=count[0],
                    admm_grad_select_iterations=count[1])
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = common.settings_parser(__doc__, SETTINGS, OUT)
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                    help="comma-separated calibration seeds to run (to split a setting between processes)")
    return ap


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    return common.planned_cells(build_parser(), cells, SETTINGS, argv)


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as stored, for the cells that exist."""
    return common.stored_cells(planned(argv))


def ratios(records: dict[str, dict], count: Count) -> dict[str, list[float]]:
    """Setting -> the selection-PPL ratios of ``count`` to the default's count on the same seed, for
    the settings where both have run every seed."""
    out = {}
    for setting in SETTINGS:
        pairs = [(records.get(cell_name(setting, s, count)), records.get(cell_name(setting, s, COUNTS[0]))) for s in SEEDS]
        if all(a and b for a, b in pairs):
            out[setting] = [a["ppl"][SELECTION_TEXT] / b["ppl"][SELECTION_TEXT] for a, b in pairs]
    return out


def matches(records: dict[str, dict], count: Count) -> bool | None:
    """Whether ``count`` matches the default's by the rule (module doc); None before a setting is complete."""
    by_setting = ratios(records, count)
    if not by_setting:
        return None
    overall = geomean([r for rs in by_setting.values() for r in rs])
    return overall <= 1 + TOLERANCE and all(geomean(rs) <= 1 + SETTING_TOLERANCE for rs in by_setting.values())


def chosen(records: dict[str, dict]) -> Count | None:
    """The fewest iterations that matches the default's (the default's own count when none does);
    None until every count has a setting with all seeds run."""
    if not all(ratios(records, c) for c in COUNTS):
        return None
    return min((c for c in COUNTS if c == COUNTS[0] or matches(records, c)), key=lambda c: c[0])


def ships_choice(records: dict[str, dict]) -> bool:
    """Whether PruneConfig ships the rule's pick."""
    return chosen(records) == shipped()


def verdict(pick: Count, default: Count) -> str:
    """Whether PruneConfig ships the rule's pick."""
    return "the same" if pick == default else "DIFFERENT: update crepe/config.py"


def shipped() -> Count:
    """PruneConfig's (iterations, choosing)."""
    given = PruneConfig.admm_grad_select_iterations
    return PruneConfig.admm_grad_iterations, selecting_iterations(PruneConfig.admm_grad_iterations) if given is None else given


def table(out: Path) -> str:
    records = common.read_records(out, "*__*.json")
    if not records:
        return "no results yet"
    first = next(iter(records.values()))
    lines = [common.stamp(records.values(), out), "",
             f"SmolLM2-135M, crepe's default (admm-grad update) at each (iterations / mask-choosing iterations); "
             f"calibration {first['calibration']} with seeds {', '.join(map(str, SEEDS))}; PPL on "
             + "; ".join(f"{t}: {p}" for t, p in first["eval"].items()) + ". "
             f"{SELECTION_TEXT} is the selection text; wikivital, the calibration's domain, is shown, never used. "
             f"Ratio: the count's {SELECTION_TEXT} PPL over {COUNTS[0][0]}/{COUNTS[0][1]}'s on the same draw. "
             "CPU: process CPU seconds of the prune (two or three processes side by side; a rough guide).", ""]
    header = ["setting", "seed", *(f"{i}/{k} {SELECTION_TEXT}" for i, k in COUNTS),
              *(f"{i}/{k} wikivital" for i, k in COUNTS), *(f"{i}/{k} ratio" for i, k in COUNTS[1:]),
              *(f"{i}/{k} CPU s" for i, k in COUNTS)]
    rows = []
    for setting in SETTINGS:
        for seed in SEEDS:
            recs = [records.get(cell_name(setting, seed, c)) for c in COUNTS]
            if not any(recs):
                continue
            ref = recs[0]
            rows.append([setting, str(seed), *(f"{r['ppl'][SELECTION_TEXT]:.2f}" if r else "–" for r in recs),
                         *(f"{r['ppl']['wikivital']:.2f}" if r else "–" for r in recs),
                         *(f"{r['ppl'][SELECTION_TEXT] / ref['ppl'][SELECTION_TEXT]:.3f}" if r and ref else "–"
                           for r in recs[1:]),
                         *(f"{r['prune_cpu_seconds']:.0f}" if r else "–" for r in recs)])
    summary = []
    for count in COUNTS[1:]:
        by_setting = ratios(records, count)
        if by_setting:
            summary.append(f"- {count[0]}/{count[1]}: geometric mean ratio "
                           + ", ".join(f"{s} {geomean(rs):.3f}" for s, rs in by_setting.items())
                           + f"; over all {sum(map(len, by_setting.values()))} cells "
                           f"{geomean([r for rs in by_setting.values() for r in rs]):.3f}: "
                           + ("matches" if matches(records, count) else "does not match") + " the default's.")
    pick = chosen(records)
    default = shipped()
    decision = ("" if pick is None else f"Chosen: **{pick[0]}/{pick[1]}**; PruneConfig ships {default[0]}/{default[1]}: "
                f"{verdict(pick, default)}.")
    rule = (f"Rule (fixed before the cells ran): a count matches when the geometric mean of its ratios over every "
            f"complete setting's cells is at most {1 + TOLERANCE:g} and no setting's is above {1 + SETTING_TOLERANCE:g}; "
            "the fewest iterations that matches is chosen.")
    return "\n".join(lines + [*common.markdown_table(header, rows), "", rule, *summary, *([decision] if decision else [])])


def main() -> None:
    seeds = tuple(map(int, common.chosen(build_parser().parse_args().seeds, map(str, SEEDS), "--seeds")))
    common.selection_main(build_parser(), lambda model, settings: cells(model, settings, seeds), SETTINGS, table, OUT, TABLE)


if __name__ == "__main__":
    main()
