"""The headline tables as markdown and a figure, from the committed records alone: PPL per text and
setting, zero-shot accuracy and the CPU-time ratio to SparseGPT's (:func:`table`), each method's PPL over
SparseGPT's (:func:`relative_ppl`, drawn by ``benchmarks.headline_plot``) and the calibration draws
(:func:`seeds_table`)."""

from __future__ import annotations

import re
from pathlib import Path
from statistics import geometric_mean

from benchmarks import common, headline_plot
from benchmarks.headline_cells import (
    CELLS,
    DEFAULT_ROW,
    FLOAT32_ROW,
    LABELS,
    MASK_SEED_ROWS,
    SECOND_MODEL_SEED_ROWS,
    SECOND_MODEL_SEEDS,
    SEED_ROWS,
    SEEDS,
    SETTINGS,
    cell_name,
    cpu_dir,
    result_dir,
    unseen_mean,
)
from crepe.run.options import RunOptions

SEED_NAMES = {DEFAULT_ROW: "default", FLOAT32_ROW: "default in float32", "crepe mask-only (--update none)": "crepe mask-only"}
"""Row label -> its short name in the seeds tables (a baseline keeps its label)."""


def _ratio(rep: dict, ref: dict | None, timed: dict | None = None, label: str = "") -> str:
    """The CPU-time ratio to SparseGPT's: from the setting's ``--cpu-time`` record ``timed`` where it
    timed ``label``; else from the cells' own records (``rep`` over SparseGPT's ``ref``), "–" without
    one or where the two name different machines (:func:`benchmarks.common.same_machine`)."""
    if timed is not None and label in timed["seconds"]:
        return f"{timed['seconds'][label] / timed['seconds']['SparseGPT']:.2f}"
    if ref is None or not common.same_machine(rep, ref):
        return "–"
    return f"{rep['prune_cpu_seconds'] / ref['prune_cpu_seconds']:.2f}"


def _cpu_note(timing: dict[str, dict], where: Path, untimed: list[str]) -> str:
    """What the CPU column divides: the ``--cpu-time`` records ``timing`` (in ``where``), and for the
    ``untimed`` settings the cells' own records."""
    note = ""
    if timing:
        where = where.resolve()
        shown = where.relative_to(common.RESULTS.parent) if where.is_relative_to(common.RESULTS.parent) else where
        note = ((f"Where the setting has a `--cpu-time` record (`{shown}`: " if untimed
                 else f"It divides the `--cpu-time` records (`{shown}`: ")
                + ", ".join(f"{LABELS[r['provenance']['config']['setting']]} at {r['provenance']['commit']}"
                            for r in timing.values())
                + (") it divides that record's times" if untimed else ")")
                + ": every row pruned once in one process, SparseGPT first, no evaluation. ")
    if untimed:
        note += ((f"At {', '.join(LABELS[s] for s in untimed)} it" if timing else "It")
                 + " divides the cells' own records, which may come from other processes and loads, and reads – "
                   "where the two name different machines. ")
    return note + ("One prune moves by up to a fifth with the machine's load: the cost target reads "
                   "results/cost_ratio.md (SparseGPT and the default pruned alternately).")


def table(out: Path) -> str:
    """The headline table: PPL per text and setting, and the CPU-time ratio to SparseGPT's."""
    records = common.read_records(out, "*__*.json")
    if not records:
        return "no results yet"
    dense = common.read_records(out, "dense.json").get("dense", {"ppl": {}})
    first = next(iter(records.values()))
    texts = list(first["ppl"])
    tasks = list(first.get("zeroshot", {}))
    settings = [s for s in SETTINGS if any(cell_name(label, s) in records for label in CELLS)]
    header = ["method", *texts, "unseen mean", *(f"0-shot {t.split('/')[1]}" for t in tasks), "CPU ×SparseGPT"]
    lines = [common.stamp(records.values(), out), "",
             f"{common.model_name(first)}; calibration {first['calibration']}; PPL on "
             + "; ".join(f"{t}: {p}" for t, p in first["eval"].items()) + "; dense "
             + ", ".join(f"{t} {v:.2f}" for t, v in dense["ppl"].items())
             + "".join(f", 0-shot {t} {v:.3f}" for t, v in dense.get("zeroshot", {}).items()) + ". "
             "unseen mean: the geometric mean of the PPL on the texts other than the calibration's (wikivital). "
             + ("0-shot: lm-eval accuracy (acc, acc_norm) on the shipped local task wikivital_describe, every item "
                "(400). " if tasks else "No zero-shot task (not run for this model). ")
             + "CPU ×SparseGPT: process CPU time of the prune over SparseGPT's at the same setting. "]
    timing = common.read_records(cpu_dir(out)) if cpu_dir(out).is_dir() else {}
    lines[-1] += _cpu_note(timing, cpu_dir(out), [s for s in settings if common.setting_name(s) not in timing])
    for s in settings:
        rows, absent = [], []
        timed = timing.get(common.setting_name(s))
        for label in CELLS:
            rep, ref = records.get(cell_name(label, s)), records.get(cell_name("SparseGPT", s))
            if rep is None:
                absent.append(label)
                continue
            rows.append([label, *(f"{rep['ppl'][t]:.2f}" for t in texts), f"{unseen_mean(rep):.2f}",
                         *(f"{rep.get('zeroshot', {}).get(t, float('nan')):.3f}" for t in tasks), _ratio(rep, ref, timed, label)])
        lines += ["", f"**{LABELS[s]}**", "", *common.markdown_table(header, rows)]
        if absent:
            lines += ["", f"Not run at {LABELS[s]} with this calibration: {', '.join(absent)}."]
    return "\n".join(lines)


PLOT_ROWS = ("ADMM-Grad", "ALPS", "RIA (mask only)", "crepe mask-only (--update none)", DEFAULT_ROW)
"""The rows the headline figure draws against SparseGPT (the issue's rows and RIA)."""


def relative_ppl(out: Path) -> headline_plot.Ratios:
    """Row label (:data:`PLOT_ROWS`) -> setting label -> (calibration-text PPL, unseen mean) over
    SparseGPT's at that setting, for the settings where both ran; empty without SparseGPT."""
    records = common.read_records(out, "*__*.json")
    ratios: headline_plot.Ratios = {}
    for label in PLOT_ROWS:
        for s in SETTINGS:
            rep, ref = records.get(cell_name(label, s)), records.get(cell_name("SparseGPT", s))
            if rep is None or ref is None:
                continue
            calibration_text = next(iter(ref["ppl"]))
            ratios.setdefault(label, {})[LABELS[s]] = (rep["ppl"][calibration_text] / ref["ppl"][calibration_text],
                                                       unseen_mean(rep) / unseen_mean(ref))
    return ratios


def plot(out: Path, path: Path) -> bool:
    """Draw :func:`relative_ppl` of ``out`` to ``path`` (:func:`headline_plot.draw`); False where there
    is nothing to draw (no SparseGPT cells)."""
    ratios = relative_ppl(out)
    if not ratios:
        return False
    first = next(iter(common.read_records(out, "*__*.json").values()))
    windows = re.search(r"windows=(\d+)", first["calibration"])
    title = (f"{common.model_name(first)}, {windows.group(1) if windows else '?'} x 512 wikivital calibration: "
             "one-shot PPL against SparseGPT's")
    settings = [LABELS[s] for s in SETTINGS if any(LABELS[s] in r for r in ratios.values())]
    headline_plot.draw(ratios, settings, title, path, highlight=DEFAULT_ROW)
    return True


def seed_groups(model: str = RunOptions.model) -> tuple[tuple[str, ...], ...]:
    """The model's groups of seed rows, each compared against its first: SmolLM2's default against
    ADMM-Grad (:data:`SEED_ROWS`) and mask-only crepe against RIA (:data:`MASK_SEED_ROWS`); the second
    model's :data:`SECOND_MODEL_SEED_ROWS`."""
    return (SEED_ROWS, MASK_SEED_ROWS) if model == RunOptions.model else (SECOND_MODEL_SEED_ROWS,)


def seeds_table(model: str = RunOptions.model) -> str:
    """Each group of the model's seed rows (:func:`seed_groups`) over calibration draws (seed 0: its
    headline directory; others: ..._sN): the unseen geometric mean and wikivital PPL per seed and each
    row's change against the group's first on the same draw; with more than one draw of a setting, a
    mean line (geometric means over the draws). A group with no complete draw is left out."""
    groups, seeds = seed_groups(model), (SEEDS if model == RunOptions.model else SECOND_MODEL_SEEDS)
    dirs = {seed: result_dir(model, seed=seed) for seed in (0, *seeds)}
    used = {cell_name(label, s).split("__")[0] for labels in groups for label in labels for s in SETTINGS}
    found = {seed: {k: r for k, r in common.read_records(d, "*__*.json").items() if k.split("__")[0] in used}
             for seed, d in dirs.items() if d.is_dir()}
    if not any(found.values()):
        return "no results yet"
    every = [r for recs in found.values() for r in recs.values()]
    lines = [common.stamp(every, common.RESULTS),
             "", (f"{common.model_name(every[0])}, 16 x 512 wikivital calibration drawn with each seed; PPL as in "
             f"results/{dirs[0].name}.md. unseen: geometric mean of python-reference and python-docstrings. "
             "change: against the first row of its table, same seed.")]
    for labels in groups:
        rows = _seed_rows(found, labels)
        if rows:
            lines += ["", _seed_header_line(labels), "", *common.markdown_table(_seed_header(labels), rows)]
    return "\n".join(lines)


def _names(labels: tuple[str, ...]) -> tuple[str, list[str]]:
    return labels[0], [SEED_NAMES.get(label, label) for label in labels[1:]]


def _seed_header_line(labels: tuple[str, ...]) -> str:
    base, others = _names(labels)
    return f"**{', '.join(others)} against {base}**"


def _seed_header(labels: tuple[str, ...]) -> list[str]:
    base, others = _names(labels)
    header = ["setting", "seed"]
    for column in ("unseen", "wikivital"):
        header.append(f"{base} {column}")
        for name in others:
            header += [f"{name} {column}", "change"]
    return header


def _seed_rows(found: dict[int, dict[str, dict]], labels: tuple[str, ...]) -> list[list[str]]:
    """The table rows of one group: each complete draw of each setting, then the mean of several."""
    def cells_of(values: list[float]) -> list[str]:
        return [f"{values[0]:.2f}", *(c for v in values[1:] for c in (f"{v:.2f}", f"{v / values[0] - 1:+.1%}"))]

    rows = []
    for s in SETTINGS:
        draws = []
        for seed, recs in found.items():
            got = [recs.get(cell_name(label, s)) for label in labels]
            if any(rec is None for rec in got):
                continue
            draws.append(([unseen_mean(r) for r in got], [r["ppl"]["wikivital"] for r in got]))
            rows.append([LABELS[s], str(seed), *cells_of(draws[-1][0]), *cells_of(draws[-1][1])])
        if len(draws) > 1:
            mean = [[geometric_mean(d[k][i] for d in draws) for i in range(len(labels))] for k in (0, 1)]
            rows.append([LABELS[s], f"mean of {len(draws)}", *cells_of(mean[0]), *cells_of(mean[1])])
    return rows
