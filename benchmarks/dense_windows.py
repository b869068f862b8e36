"""The dense stream on at most 16 calibration windows (``--dense-windows``), judged at 128 windows.

crepe's default carries the dense model's hidden states next to the pruned ones for its dense
target: one more layer forward and one more Xᵀ X_dense product per layer, over every calibration
window. At 16 windows that is a third of the prune (docs/quality.md); at 128 windows the forwards
dominate a prune, and the dense stream roughly doubles what SparseGPT pays for them. The shift it
measures is a sum over tokens, scaled up from the windows that carried it, so a cap of 16 windows
gives a 128-window prune the shift a 16-window prune has always used, with the 128 windows' Hessian.

Here the default (6 iterations, 5 choosing) prunes SmolLM2-135M with 128 x 512 wikivital calibration
(seed 0) with the dense stream on the first 16 windows, at 2:4, 70% and 50%, and is scored on the
selection text (lm-eval's task cards, never a reported column) against the same prune with the dense
stream on every window: the 6/5 cells of ``results/quality/iteration_draws_c128`` (the same config
apart from the cap, run at f042ee1; not run again here, for time).

The rule, fixed before these cells ran (the iteration count's tolerances): the cap matches when the
geometric mean of its selection-PPL ratios to the uncapped prune over the three settings is at most
1 + :data:`TOLERANCE` and no setting's ratio is above 1 + :data:`SETTING_TOLERANCE`. It ships when it
matches; otherwise PruneConfig carries the dense stream on every window.

    OMP_NUM_THREADS=1 python -m benchmarks.dense_windows --settings 2:4   # missing cells of one setting
    python -m benchmarks.dense_windows --table                             # only rebuild the table
"""

from __future__ import annotations

import argparse
from pathlib import Path
from statistics import geometric_mean as geomean

from benchmarks import common
from benchmarks import iteration_draws as it
from benchmarks.common import SELECTION_TEXT, Table
from crepe.config import PruneConfig
from crepe.run.options import RunOptions

SETTINGS = it.SETTINGS
CAP = 16
NSAMPLES = 128
TOLERANCE = it.TOLERANCE
SETTING_TOLERANCE = it.SETTING_TOLERANCE
REFERENCE = it.STUDIES[NSAMPLES]
REFERENCE_COUNT = (6, 5)
OUT = common.RESULTS / "quality" / "dense_windows_c128"
TABLE_PATH = common.RESULTS / "quality" / "dense_windows_c128.md"
TABLES = [Table("results/quality/dense_windows_c128.md",
                tuple(f"python -m benchmarks.dense_windows --settings {s}" for s in SETTINGS),
                covers=("results/quality/dense_windows_c128/*",))]


def cell_name(setting: str) -> str:
    return f"cap{CAP}__seed0__{common.setting_name(setting)}"


def reference_name(setting: str) -> str:
    """The uncapped prune's record in the 128-window iteration study."""
    return it.cell_name(setting, 0, REFERENCE_COUNT)


def cells(model: str, settings: tuple[str, ...]) -> dict[str, RunOptions]:
    """Cell name -> its options: the reference's prune with the dense stream capped at :data:`CAP`
    windows (the count and the cap explicit, so a record keeps its meaning when a default moves)."""
    base = RunOptions(model=model, max_eval_windows=it.EVAL_WINDOWS, seed=0, nsamples=NSAMPLES)
    return {cell_name(s): common.prune_options(base, "crepe", s, update="admm-grad",
                                               admm_grad_iterations=REFERENCE_COUNT[0],
                                               admm_grad_select_iterations=REFERENCE_COUNT[1], dense_windows=CAP)
            for s in settings}


def build_parser() -> argparse.ArgumentParser:
    return common.settings_parser(__doc__, SETTINGS, OUT)


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    args = build_parser().parse_args(argv)
    return {str(args.out_dir / f"{name}.json"): {"command": None, "config": common.cell_config(opts, cell=name)}
            for name, opts in cells(args.model, common.chosen_settings(args.settings, SETTINGS)).items()}


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as stored, for the cells that exist."""
    return common.stored_cells(planned(argv))


def ratios(capped: dict[str, dict], reference: dict[str, dict]) -> dict[str, float]:
    """Setting -> the capped prune's selection PPL over the uncapped one's, where both ran."""
    out = {}
    for setting in SETTINGS:
        a, b = capped.get(cell_name(setting)), reference.get(reference_name(setting))
        if a and b:
            out[setting] = a["ppl"][SELECTION_TEXT] / b["ppl"][SELECTION_TEXT]
    return out


def matches(capped: dict[str, dict], reference: dict[str, dict]) -> bool | None:
    """Whether the cap matches the uncapped prune by the rule (module doc); None until every setting ran."""
    by_setting = ratios(capped, reference)
    if set(by_setting) != set(SETTINGS):
        return None
    return (geomean(list(by_setting.values())) <= 1 + TOLERANCE
            and all(r <= 1 + SETTING_TOLERANCE for r in by_setting.values()))


def ships_choice(capped: dict[str, dict], reference: dict[str, dict]) -> bool:
    """Whether PruneConfig's ``dense_windows`` is the rule's pick (the cap, or None when it lost)."""
    verdict = matches(capped, reference)
    return verdict is not None and PruneConfig.dense_windows == (CAP if verdict else None)


def table(out: Path, reference_out: Path = REFERENCE.out) -> str:
    capped, reference = common.read_records(out, "*__*.json"), common.read_records(reference_out, "*__*.json")
    if not capped:
        return "no results yet"
    first = next(iter(capped.values()))
    lines = [common.stamp(capped.values(), out), "",
             f"SmolLM2-135M, crepe's default (admm-grad update, {REFERENCE_COUNT[0]} iterations, {REFERENCE_COUNT[1]} "
             f"choosing); calibration {first['calibration']} with seed 0; PPL on "
             + "; ".join(f"{t}: {p}" for t, p in first["eval"].items()) + ". "
             f"Capped: the dense stream on the first {CAP} windows (`--dense-windows {CAP}`); every window: the "
             f"same prune uncapped, the {REFERENCE_COUNT[0]}/{REFERENCE_COUNT[1]} cells of "
             f"`{reference_out.relative_to(common.RESULTS.parent)}`. {SELECTION_TEXT} is the selection text; wikivital, "
             "the calibration's domain, is shown, never used. CPU: process CPU seconds of the prune (each with "
             "another benchmark process beside it; a rough guide: results/cost_ratio_c128.md times the cost).", ""]
    header = ["setting", f"every window {SELECTION_TEXT}", f"capped {SELECTION_TEXT}", "ratio",
              "every window wikivital", "capped wikivital", "every window CPU s", "capped CPU s"]
    rows = []
    for setting in SETTINGS:
        a, b = capped.get(cell_name(setting)), reference.get(reference_name(setting))
        if not a:
            continue
        rows.append([setting, f"{b['ppl'][SELECTION_TEXT]:.2f}" if b else "–", f"{a['ppl'][SELECTION_TEXT]:.2f}",
                     f"{a['ppl'][SELECTION_TEXT] / b['ppl'][SELECTION_TEXT]:.3f}" if b else "–",
                     f"{b['ppl']['wikivital']:.2f}" if b else "–", f"{a['ppl']['wikivital']:.2f}",
                     f"{b['prune_cpu_seconds']:.0f}" if b else "–", f"{a['prune_cpu_seconds']:.0f}"])
    rule = (f"Rule (fixed before the cells ran): the cap matches when the geometric mean of its ratios over the three "
            f"settings is at most {1 + TOLERANCE:g} and no setting's is above {1 + SETTING_TOLERANCE:g}; it ships when it matches.")
    by_setting, verdict = ratios(capped, reference), matches(capped, reference)
    if verdict is None:
        summary = f"Not decided: {len(by_setting)} of {len(SETTINGS)} settings ran."
    else:
        pick = CAP if verdict else None
        summary = (f"Geometric mean ratio {geomean(list(by_setting.values())):.3f}: the cap "
                   f"{'matches' if verdict else 'does not match'}. Chosen: **dense windows {pick}**; PruneConfig ships "
                   f"{PruneConfig.dense_windows}: {'the same' if ships_choice(capped, reference) else 'DIFFERENT: update crepe/config.py'}.")
    return "\n".join(lines + [*common.markdown_table(header, rows), "", rule, summary])


def main() -> None:
    common.selection_main(build_parser(), cells, SETTINGS, table, OUT, TABLE_PATH)


if __name__ == "__main__":
    main()
