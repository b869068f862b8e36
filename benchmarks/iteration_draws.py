"""Fewer ADMM iterations for crepe's default, judged over calibration draws (issue 22, the cost target).

Each admm-grad iteration is one [out, in] x [in, in] product per linear, most of the default's cost
above SparseGPT's at wide layers. A per-linear screen (``benchmarks.convergence``) finds the error on
a held-out text flat from about 6 iterations on: extra iterations fit the calibration text. Whole
prunes disagree on one draw only at the noise level of one draw: a 70% cell moves by 8% or more with
the calibration seed (docs/quality.md, "How each default was chosen"). So here each
count prunes SmolLM2-135M (crepe's default, ``--update admm-grad``, through ``crepe.run.job.run``;
the headline's 16 x 512 wikivital calibration) with calibration seeds 0, 1 and 2, and is scored by
the PPL on the selection text (lm-eval's task cards, never a reported column) against the default's
count on the same draw.

The rule, fixed before these cells ran: a count matches the default's when, over every (setting,
seed) cell both have run, the geometric mean of its selection-PPL ratios to the default's is at most
1 + :data:`TOLERANCE`, and no setting's own geometric mean ratio is above 1 + :data:`SETTING_TOLERANCE`;
only settings with all seeds run count. The pick: the fewest iterations that matches.

The same rule at 128 calibration windows (``--nsamples 128``, ``results/quality/iteration_draws_c128``):
eight times the tokens estimate each Hessian better, so the count that stops short of fitting the
calibration text at 16 windows may stop short of fitting the layer at 128. One draw per setting there
(each is eight times larger, and a cell costs eight times the forwards), counts 15/11, 10/8 and 6/5.

    OMP_NUM_THREADS=1 python -m benchmarks.iteration_draws --settings 0.7   # missing cells of one setting
    OMP_NUM_THREADS=1 python -m benchmarks.iteration_draws --settings 0.5 --seeds 2   # one seed's
    OMP_NUM_THREADS=1 python -m benchmarks.iteration_draws --nsamples 128 --counts 6/5   # one count at 128 windows
    python -m benchmarks.iteration_draws --table                            # only rebuild the table
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
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
DAMP = 0.5
"""The admm-grad damping every cell ran with (the 16-window choice, ``benchmarks.default_choice``); at 128
windows the default has since moved (``benchmarks.damping_c128``), and the cells keep the value they ran at."""
TOLERANCE = 0.02
SETTING_TOLERANCE = 0.05
EVAL_WINDOWS = 16
OUT = common.RESULTS / "quality" / "iteration_draws"
TABLE = common.RESULTS / "quality" / "iteration_draws.md"

Count = tuple[int, int]


@dataclass(frozen=True)
class Study:
    """One calibration size's draws: its windows of 512 tokens, seeds, counts (the first is the
    reference) and where its records and table live."""

    nsamples: int
    seeds: tuple[int, ...]
    counts: tuple[Count, ...]
    out: Path
    table: Path


STUDIES = {16: Study(16, SEEDS, COUNTS, OUT, TABLE),
           128: Study(128, (0,), ((15, 11), (10, 8), (6, 5)), common.RESULTS / "quality" / "iteration_draws_c128",
                      common.RESULTS / "quality" / "iteration_draws_c128.md")}
BASE = STUDIES[16]
TABLES = [Table("results/quality/iteration_draws.md",
                tuple(f"python -m benchmarks.iteration_draws --settings {s}" for s in SETTINGS),
                covers=("results/quality/iteration_draws/*",)),
          Table("results/quality/iteration_draws_c128.md",
                tuple(f"python -m benchmarks.iteration_draws --nsamples 128 --settings {s} --counts 15/11,6/5"
                      for s in SETTINGS),
                covers=("results/quality/iteration_draws_c128/*",))]
"""The 128-window table's commands name the counts that ran: its fewest, 6/5, matched, so 10/8 did not
need to (:func:`chosen`)."""


def cell_name(setting: str, seed: int, count: Count) -> str:
    return f"it{count[0]}_choose{count[1]}__seed{seed}__{common.setting_name(setting)}"


def cells(model: str, settings: tuple[str, ...], seeds: tuple[int, ...] | None = None,
          study: Study = BASE, counts: tuple[Count, ...] | None = None) -> dict[str, RunOptions]:
    """Cell name -> its run options: every count (of ``counts``, default the study's) at every
    setting and seed (the counts are explicit, so a record keeps its meaning when the default's
    count moves)."""
    out = {}
    for setting in settings:
        for seed in study.seeds if seeds is None else seeds:
            base = RunOptions(model=model, max_eval_windows=EVAL_WINDOWS, seed=seed, nsamples=study.nsamples)
            for count in study.counts if counts is None else counts:
                out[cell_name(setting, seed, count)] = common.prune_options(
                    base, "crepe", setting, update="admm-grad", admm_grad_damp=DAMP, admm_grad_iterations=count[0],
                    admm_grad_select_iterations=count[1], admm_grad_products=common.STUDY_PRODUCTS,
                    dense_precision=common.STUDY_DENSE_PRECISION)
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = common.settings_parser(__doc__, SETTINGS, OUT)
    ap.add_argument("--nsamples", type=int, choices=sorted(STUDIES), default=16,
                    help="calibration windows of 512 tokens (each size is its own study and table)")
    ap.add_argument("--seeds", default=None,
                    help="comma-separated calibration seeds to run (default: the study's; to split a setting between processes)")
    ap.add_argument("--counts", default=None,
                    help="comma-separated iterations/choosing counts to run (default: the study's), e.g. 6/5")
    return ap


def parsed(argv: list[str] | None = None) -> tuple[argparse.Namespace, Study, tuple[int, ...], tuple[Count, ...]]:
    """The arguments, their study, and the seeds and counts to run (a count or seed outside the study: one line)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    study = STUDIES[args.nsamples]
    if args.nsamples != 16 and args.out_dir == OUT:
        args.out_dir = study.out
    names = {f"{i}/{k}": (i, k) for i, k in study.counts}
    seeds = tuple(map(int, common.chosen(args.seeds or ",".join(map(str, study.seeds)), map(str, study.seeds), "--seeds")))
    counts = tuple(names[c] for c in common.chosen(args.counts or ",".join(names), names, "--counts"))
    return args, study, seeds, counts


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    args, study, seeds, counts = parsed(argv)
    return {str(args.out_dir / f"{name}.json"): {"command": None, "config": common.cell_config(opts, cell=name)}
            for name, opts in cells(args.model, common.chosen_settings(args.settings, SETTINGS), seeds, study,
                                    counts).items()}


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as stored, for the cells that exist."""
    return common.stored_cells(planned(argv))


def ratios(records: dict[str, dict], count: Count, study: Study = BASE) -> dict[str, list[float]]:
    """Setting -> the selection-PPL ratios of ``count`` to the reference count on the same seed, for
    the settings where both have run every seed."""
    out = {}
    for setting in SETTINGS:
        pairs = [(records.get(cell_name(setting, s, count)), records.get(cell_name(setting, s, study.counts[0])))
                 for s in study.seeds]
        if all(a and b for a, b in pairs):
            out[setting] = [a["ppl"][SELECTION_TEXT] / b["ppl"][SELECTION_TEXT] for a, b in pairs]
    return out


def matches(records: dict[str, dict], count: Count, study: Study = BASE) -> bool | None:
    """Whether ``count`` matches the reference's by the rule (module doc); None before a setting is complete."""
    by_setting = ratios(records, count, study)
    if not by_setting:
        return None
    overall = geomean([r for rs in by_setting.values() for r in rs])
    return overall <= 1 + TOLERANCE and all(geomean(rs) <= 1 + SETTING_TOLERANCE for rs in by_setting.values())


def chosen(records: dict[str, dict], study: Study = BASE) -> Count | None:
    """The fewest iterations that matches the reference's (the reference itself when none does),
    judged from the fewest up; None while the count to judge next lacks a cell of any setting.
    (When the fewest matches, the counts between it and the reference need not run.)"""
    for count in sorted(study.counts[1:], key=lambda c: c[0]):
        if set(ratios(records, count, study)) != set(SETTINGS):
            return None
        if matches(records, count, study):
            return count
    return study.counts[0]


def ships_choice(records: dict[str, dict], study: Study = BASE) -> bool:
    """Whether PruneConfig ships the rule's pick."""
    return chosen(records, study) == shipped(study.nsamples)


def verdict(pick: Count, default: Count) -> str:
    """Whether PruneConfig ships the rule's pick."""
    return "the same" if pick == default else "DIFFERENT: update crepe/config.py"


def shipped(nsamples: int = 16) -> Count:
    """PruneConfig's (iterations, choosing) for a calibration of ``nsamples`` windows of 512 tokens."""
    given = PruneConfig.admm_grad_select_iterations
    return PruneConfig.admm_grad_iterations, selecting_iterations(PruneConfig.admm_grad_iterations) if given is None else given


def table(out: Path, study: Study = BASE) -> str:
    records = common.read_records(out, "*__*.json")
    counts, seeds = study.counts, study.seeds
    if not records:
        return "no results yet"
    first = next(iter(records.values()))
    lines = [common.stamp(records.values(), out), "",
             f"SmolLM2-135M, crepe's default (admm-grad update) at each (iterations / mask-choosing iterations); "
             f"calibration {first['calibration']} with seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}; PPL on "
             + "; ".join(f"{t}: {p}" for t, p in first["eval"].items()) + ". "
             f"{SELECTION_TEXT} is the selection text; wikivital, the calibration's domain, is shown, never used. "
             f"Ratio: the count's {SELECTION_TEXT} PPL over {counts[0][0]}/{counts[0][1]}'s on the same draw. "
             "CPU: process CPU seconds of the prune (two or three processes side by side; a rough guide).", ""]
    header = ["setting", "seed", *(f"{i}/{k} {SELECTION_TEXT}" for i, k in counts),
              *(f"{i}/{k} wikivital" for i, k in counts), *(f"{i}/{k} ratio" for i, k in counts[1:]),
              *(f"{i}/{k} CPU s" for i, k in counts)]
    rows = []
    for setting in SETTINGS:
        for seed in seeds:
            recs = [records.get(cell_name(setting, seed, c)) for c in counts]
            if not any(recs):
                continue
            ref = recs[0]
            rows.append([setting, str(seed), *(f"{r['ppl'][SELECTION_TEXT]:.2f}" if r else "–" for r in recs),
                         *(f"{r['ppl']['wikivital']:.2f}" if r else "–" for r in recs),
                         *(f"{r['ppl'][SELECTION_TEXT] / ref['ppl'][SELECTION_TEXT]:.3f}" if r and ref else "–"
                           for r in recs[1:]),
                         *(f"{r['prune_cpu_seconds']:.0f}" if r else "–" for r in recs)])
    summary = []
    for count in counts[1:]:
        by_setting = ratios(records, count, study)
        if by_setting:
            summary.append(f"- {count[0]}/{count[1]}: geometric mean ratio "
                           + ", ".join(f"{s} {geomean(rs):.3f}" for s, rs in by_setting.items())
                           + f"; over all {sum(map(len, by_setting.values()))} cells "
                           f"{geomean([r for rs in by_setting.values() for r in rs]):.3f}: "
                           + ("matches" if matches(records, count, study) else "does not match") + " the default's.")
        else:
            summary.append(f"- {count[0]}/{count[1]}: not run"
                           + (" (a count with fewer iterations matched first)." if chosen(records, study) else "."))
    pick = chosen(records, study)
    default = shipped(study.nsamples)
    decision = ("" if pick is None else f"Chosen: **{pick[0]}/{pick[1]}**; PruneConfig ships {default[0]}/{default[1]}: "
                f"{verdict(pick, default)}.")
    rule = (f"Rule (fixed before the cells ran): a count matches when the geometric mean of its ratios over every "
            f"complete setting's cells is at most {1 + TOLERANCE:g} and no setting's is above {1 + SETTING_TOLERANCE:g}; "
            "the fewest iterations that matches is chosen.")
    return "\n".join(lines + [*common.markdown_table(header, rows), "", rule, *summary, *([decision] if decision else [])])


def main() -> None:
    args, study, seeds, counts = parsed()
    common.selection_main(build_parser(), lambda model, settings: cells(model, settings, seeds, study, counts),
                          SETTINGS, lambda out: table(out, study), study.out, study.table, args)


if __name__ == "__main__":
    main()
