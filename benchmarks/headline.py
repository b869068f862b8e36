"""The README's headline table: crepe's default against the strongest one-shot baselines on SmolLM2-135M.

SparseGPT, ADMM-Grad, ALPS, RIA, crepe mask-only (``--update none``) and crepe's default, each pruned
through ``crepe.run.job.run`` with the same wikivital calibration (16 x 512 by default; ``--nsamples
128`` writes ``results/headline_c128``); PPL on the wikivital test windows and on two texts the
calibration never saw (the CPython language reference and the standard library's docstrings);
zero-shot accuracy on the shipped local task (lm-eval); prune CPU time as a ratio to SparseGPT's,
measured in the same process. Settings run one process each, so two can run side by side.

    OMP_NUM_THREADS=1 python -m benchmarks.headline --settings 2:4   # run the missing cells of 2:4
    python -m benchmarks.headline --table                            # only rebuild results/headline.md
    python -m benchmarks.headline --table --readme README.md         # also fill README's headline block
    OMP_NUM_THREADS=1 python -m benchmarks.headline --cpu-time --settings 2:4   # the CPU column's timing

``--cpu-time`` prunes every row once in one process, SparseGPT first, with no evaluation, and keeps
each row's process CPU time in ``<table folder>_cpu/<setting>.json`` (results/headline_cpu): the
table's CPU column divides those, one machine and one process, where they exist.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from statistics import geometric_mean
from typing import Any

import torch

from benchmarks import common, headline_plot
from benchmarks.common import Table
from crepe.data.prepare import dataset_tokens
from crepe.run.options import RunOptions

log = logging.getLogger("headline")
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
C128_SETTINGS = ("2:4", "0.7", "0.5", "4:8", "0.6")  # 128 x 512 calibration (8x the calibration time)
C128_CPU_SETTINGS = ("2:4,0.5", "0.7,4:8")  # the 128 x 512 CPU column's two processes (60% not timed: about an hour a setting)
SEED_ROWS = ("ADMM-Grad", "crepe default (--update admm-grad)")
SEEDS = (1, 2)
SEEDS_TABLE = common.RESULTS / "headline_seeds.md"
SECOND_MODEL = "gemma-3-270m"  # a second architecture (Gemma 3), offline from the package registry
SECOND_MODEL_SETTINGS = ("0.5", "2:4")
SECOND_MODEL_ROWS = ("SparseGPT", "ADMM-Grad", "ALPS", "RIA (mask only)", "crepe mask-only (--update none)",
                     "crepe default (--update admm-grad)", FLOAT32_ROW)  # float32: its rounding spread beside the default
SECOND_MODEL_SEED_ROWS = ("ALPS", DEFAULT_ROW, FLOAT32_ROW)
"""The second model's draws: ALPS, the closest baseline on its calibration text, against the default
and the default in float32 (that text's margins are inside the spread of float rounding)."""
SECOND_MODEL_SEEDS = (1, 2, 3, 4)
SECOND_MODEL_SEEDS_TABLE = common.RESULTS / f"headline_{SECOND_MODEL}_seeds.md"
SECOND_MODEL_EVAL_WINDOWS = 8  # half the windows: a 262k-token vocabulary doubles the evaluation work per token
ISSUE_ROWS = ("SparseGPT", "ADMM-Grad", "ALPS", "RIA (mask only)", "crepe mask-only (--update none)",
              "crepe default (--update admm-grad)")  # the issue's five rows, and RIA for mask-only crepe to beat
TABLES = [Table("results/headline.md", tuple(f"python -m benchmarks.headline --settings {s}" for s in ("2:4", "0.7", "0.5"))
                + tuple(f"python -m benchmarks.headline --settings {s} --rows '{','.join(ISSUE_ROWS)}'" for s in ("4:8", "0.6"))
                + tuple(f"python -m benchmarks.headline --settings {s} --rows '{FLOAT32_ROW}'" for s in ("4:8", "0.6"))
                + ("python -m benchmarks.headline --cpu-time --settings 2:4,0.7,0.5",
                   f"python -m benchmarks.headline --cpu-time --settings 4:8,0.6 --rows '{','.join((*ISSUE_ROWS, FLOAT32_ROW))}'"),
                covers=("results/headline/*", "results/headline_cpu/*")),
          Table("results/headline_c128.md",
                tuple(f"python -m benchmarks.headline --nsamples 128 --settings {s} --rows '{','.join(ISSUE_ROWS)}'"
                      for s in C128_SETTINGS)
                + tuple(f"python -m benchmarks.headline --nsamples 128 --cpu-time --settings {s} --rows '{','.join(ISSUE_ROWS)}'"
                        for s in C128_CPU_SETTINGS),
                covers=("results/headline_c128/*", "results/headline_c128_cpu/*")),
          Table("results/headline_seeds.md",
                tuple(f"python -m benchmarks.headline --seed {seed} --settings {s} --rows '{','.join(SEED_ROWS)}'"
                      for seed in SEEDS for s in ("2:4", "0.7")),
                covers=tuple(f"results/headline_s{seed}*" for seed in SEEDS)),
          Table(f"results/headline_{SECOND_MODEL}.md",
                tuple(f"python -m benchmarks.headline --model {SECOND_MODEL} --settings {s} --rows '{','.join(SECOND_MODEL_ROWS)}' "
                      f"--eval-windows {SECOND_MODEL_EVAL_WINDOWS} --no-zeroshot" for s in SECOND_MODEL_SETTINGS)
                + (f"python -m benchmarks.headline --model {SECOND_MODEL} --cpu-time --settings {','.join(SECOND_MODEL_SETTINGS)} "
                   f"--rows '{','.join(SECOND_MODEL_ROWS)}' --eval-windows {SECOND_MODEL_EVAL_WINDOWS} --no-zeroshot",),
                covers=(f"results/headline_{SECOND_MODEL}/*", f"results/headline_{SECOND_MODEL}_cpu/*")),
          Table(f"results/headline_{SECOND_MODEL}_seeds.md",
                tuple(f"python -m benchmarks.headline --model {SECOND_MODEL} --seed {seed} --settings "
                      f"{','.join(SECOND_MODEL_SETTINGS)} --rows '{','.join(SECOND_MODEL_SEED_ROWS)}' "
                      f"--eval-windows {SECOND_MODEL_EVAL_WINDOWS} --no-zeroshot" for seed in SECOND_MODEL_SEEDS),
                covers=(f"results/headline_{SECOND_MODEL}_s*",))]


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


def planned(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, the explicit config it would store now}; no model is loaded."""
    args = build_parser().parse_args(argv)
    if args.cpu_time:
        return {str(cpu_dir(out_dir(args)) / f"{common.setting_name(s)}.json"):
                {"command": None, "config": timing_config(args.model, s, args.nsamples, args.seed, rows_of(args),
                                                          args.eval_windows)}
                for s in settings_of(args)}
    return {str(out_dir(args) / f"{name}.json"): {"command": None, "config": common.cell_config(opts, cell=name)}
            for name, opts in cells(args.model, settings_of(args), args.nsamples, args.seed, rows_of(args),
                                    args.eval_windows).items()}


def recorded(argv: list[str]) -> dict[str, dict]:
    """Record path -> {command, config} as stored, for the cells that exist."""
    return common.stored_cells(planned(argv))


def settings_of(args: argparse.Namespace) -> tuple[str, ...]:
    return common.chosen_settings(args.settings, SETTINGS)


def rows_of(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(CELLS) if args.rows is None else common.chosen(args.rows, CELLS, "--rows")


def out_dir(args: argparse.Namespace) -> Path:
    """results/headline, or headline_<model> / _c<nsamples> / _s<seed> for another model and calibrations."""
    return args.out_dir or result_dir(args.model, args.nsamples, args.seed)


def run_timing(args: argparse.Namespace, out: Path) -> None:
    """``--cpu-time``: one record per setting under :func:`cpu_dir` (:func:`time_rows`)."""
    base = base_options(args.model, args.nsamples, args.seed, args.eval_windows)
    bench = common.open_bench(base, second_text=False)
    dataset_tokens(bench.tokenizer, base.calib_dataset, "calibration")  # tokenised once, before any timing
    by_name = {common.setting_name(s): s for s in settings_of(args)}
    common.run_cells(by_name, cpu_dir(out), lambda name: time_rows(bench, args.model, by_name[name], args.nsamples,
                                                                   args.seed, rows_of(args), args.eval_windows))


def run(args: argparse.Namespace, out: Path) -> None:
    plan = cells(args.model, settings_of(args), args.nsamples, args.seed, rows_of(args), args.eval_windows)
    base = base_options(args.model, args.nsamples, args.seed, args.eval_windows)
    tasks = () if args.no_zeroshot else ZEROSHOT
    bench = common.open_bench(base, texts=common.UNSEEN_TEXTS)
    common.run_dense(bench, base, out, tasks)
    common.run_cells(plan, out, lambda name: common.prune_and_evaluate(bench, plan[name], tasks, cell=name))


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
    return _timing_config(setting, timing_plan(model, setting, nsamples, seed, rows, eval_windows))


def _timing_config(setting: str, plan: dict[str, RunOptions]) -> dict[str, Any]:
    return {"setting": setting, "rows": {label: common.cell_config(opts) for label, opts in plan.items()}}


def time_rows(bench: common.Bench, model: str, setting: str, nsamples: int, seed: int, rows: tuple[str, ...],
              eval_windows: int = EVAL_WINDOWS) -> dict[str, Any]:
    """Prune each of :func:`timed_rows` once at ``setting`` in this process, SparseGPT first, no
    evaluation: the record of each row's process CPU seconds."""
    plan = timing_plan(model, setting, nsamples, seed, rows, eval_windows)
    seconds = {}
    for label, opts in plan.items():
        seconds[label] = common.prune(bench, opts)["prune_cpu_seconds"]
        log.info("%s %s: %.1f s CPU", setting, label, seconds[label])
    base = base_options(model, nsamples, seed, eval_windows)
    return common.record(_timing_config(setting, plan), seconds=seconds, threads=torch.get_num_threads(),
                         calibration=f"{base.nsamples} x {base.seqlen} {base.calib_dataset}")


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


def unseen_mean(rep: dict) -> float:
    """The geometric mean of a cell's PPL on the texts after the first (the calibration's), NaN without any."""
    unseen = list(rep["ppl"].values())[1:]
    return geometric_mean(unseen) if unseen else float("nan")


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


SEED_NAMES = {DEFAULT_ROW: "default", FLOAT32_ROW: "default in float32"}
"""Row label -> its short name in the seeds tables (a baseline keeps its label)."""


def result_dir(model: str, nsamples: int = 16, seed: int = 0) -> Path:
    """results/headline, or headline_<model> / _c<nsamples> / _s<seed> for another model and calibrations."""
    suffix = ((f"_{model}" if model != RunOptions.model else "") + (f"_c{nsamples}" if nsamples != 16 else "")
              + (f"_s{seed}" if seed else ""))
    return common.RESULTS / f"headline{suffix}" if suffix else OUT


def seeds_table(model: str = RunOptions.model) -> str:
    """The first of the model's seed rows (:data:`SEED_ROWS`, :data:`SECOND_MODEL_SEED_ROWS`) against
    the others over calibration draws (seed 0: its headline directory; others: ..._sN): the unseen
    geometric mean and wikivital PPL per seed and each row's change against the first on the same
    draw; with more than one draw of a setting, a mean line (geometric means over the draws)."""
    labels, seeds = (SEED_ROWS, SEEDS) if model == RunOptions.model else (SECOND_MODEL_SEED_ROWS, SECOND_MODEL_SEEDS)
    dirs = {seed: result_dir(model, seed=seed) for seed in (0, *seeds)}
    used = {cell_name(label, s).split("__")[0] for label in labels for s in SETTINGS}
    found = {seed: {k: r for k, r in common.read_records(d, "*__*.json").items() if k.split("__")[0] in used}
             for seed, d in dirs.items() if d.is_dir()}
    if not any(found.values()):
        return "no results yet"
    every = [r for recs in found.values() for r in recs.values()]
    base, others = labels[0], [SEED_NAMES.get(label, label) for label in labels[1:]]
    against = (f"the default against {base}" if others == ["default"]
               else f"each of {', '.join(others)} against {base}")
    lines = [common.stamp(every, common.RESULTS),
             "", (f"{common.model_name(every[0])}, 16 x 512 wikivital calibration drawn with each seed; PPL as in "
             f"results/{dirs[0].name}.md. unseen: geometric mean of python-reference and python-docstrings. "
             f"change: {against}, same seed.")]
    header = ["setting", "seed"]
    for column in ("unseen", "wikivital"):
        header.append(f"{base} {column}")
        for name in others:
            header += [f"{name} {column}", "change"]

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
    return "\n".join(lines + ["", *common.markdown_table(header, rows)])


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=RunOptions.model)
    ap.add_argument("--settings", default="0.5,2:4,0.7", help=f"comma-separated, from {', '.join(SETTINGS)}")
    ap.add_argument("--nsamples", type=int, default=16, help="calibration windows of 512 tokens")
    ap.add_argument("--seed", type=int, default=0, help="seed of the calibration draw (another seed: results/headline[_MODEL]_sN)")
    ap.add_argument("--rows", default=None, help="comma-separated row labels to run (default: every row)")
    ap.add_argument("--eval-windows", type=int, default=EVAL_WINDOWS, help="evaluation windows of 512 tokens per text")
    ap.add_argument("--no-zeroshot", action="store_true", help="skip the zero-shot task (a model whose evaluation is slow)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="default: results/headline (results/headline_<model>, _cN, _sN for another model and calibrations)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time the rows instead: each pruned once in one process, SparseGPT first, no evaluation "
                         "(<table folder>_cpu/<setting>.json; the table's CPU column divides these)")
    ap.add_argument("--table", action="store_true", help="only rebuild the table from the records")
    ap.add_argument("--readme", type=Path, help="also write the table between README's headline markers")
    return ap


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    out = out_dir(args)
    if args.cpu_time and not args.table:
        run_timing(args, out)
    elif not args.table:
        run(args, out)
    body = table(out)
    if out.parent == common.RESULTS:
        (common.RESULTS / f"{out.name}.md").write_text(body + "\n")
        if plot(out, common.RESULTS / f"{out.name}.png"):
            print(f"wrote results/{out.name}.png")
    print(body)
    if args.readme:
        common.write_block(args.readme, "headline", body)
    if out.parent == common.RESULTS and (out == OUT or out.name.startswith("headline_s")):
        SEEDS_TABLE.write_text(seeds_table() + "\n")
    if out.parent == common.RESULTS and out.name.startswith(f"headline_{SECOND_MODEL}") and args.nsamples == 16:
        SECOND_MODEL_SEEDS_TABLE.write_text(seeds_table(SECOND_MODEL) + "\n")


if __name__ == "__main__":
    main()
