"""Issue 22's targets, judged from the committed records (results/targets.md): nothing is typed in.

Reads the headline tables' records (SmolLM2 at 16 x 512 and 128 x 512 calibration, Gemma 3 270M at
16 x 512), the alternating cost records (``benchmarks.cost_ratio``) and the 7B-shaped layer timings
(``benchmarks.cost_7b``), and says for each target whether the records meet it, and where not, by how
much. Runs no prune.

    python -m benchmarks.targets            # rewrite results/targets.md from the records
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from benchmarks import common, cost_ratio, headline_cells
from benchmarks.common import Table
from benchmarks.headline_cells import DEFAULT_ROW, FLOAT32_ROW, LABELS, SETTINGS, cell_name, unseen_mean
from crepe.run.options import RunOptions

OUT = common.RESULTS / "targets.md"
TABLES = [Table("results/targets.md", ("python -m benchmarks.targets",))]
BASELINES = ("ADMM-Grad", "ALPS")  # the state of the art the default must beat
MARGIN_SETTINGS = ("2:4", "0.7")  # where the default must be 5% below the better baseline, unseen mean
MARGIN = 0.05
COST_LIMIT = 1.5
HEADLINES = {"SmolLM2, 16 x 512": headline_cells.result_dir(RunOptions.model),
             "SmolLM2, 128 x 512": headline_cells.result_dir(RunOptions.model, 128),
             "Gemma 3 270M, 16 x 512": headline_cells.result_dir(headline_cells.SECOND_MODEL)}
COSTS = {"SmolLM2, 16 x 512": common.RESULTS / "cost_ratio",
         "SmolLM2, 128 x 512": common.RESULTS / "cost_ratio_c128",
         "Gemma 3 270M, 16 x 512": common.RESULTS / f"cost_ratio_{headline_cells.SECOND_MODEL}"}
COST_7B = common.RESULTS / "cost_7b"


def _cells(folder: Path) -> dict[str, dict[str, Any]]:
    return common.read_records(folder, "*__*.json") if folder.is_dir() else {}


def beaten_cells(records: dict[str, dict]) -> tuple[int, list[str]]:
    """(cells where the default's PPL is at or below both baselines', each miss as "text setting:
    default against baseline (+x%)") over every text and setting that has all three rows."""
    met, misses = 0, []
    for s in SETTINGS:
        rows = [records.get(cell_name(label, s)) for label in (DEFAULT_ROW, *BASELINES)]
        if any(r is None for r in rows):
            continue
        ours, *theirs = rows
        for text, value in ours["ppl"].items():
            best, name = min((r["ppl"][text], label) for r, label in zip(theirs, BASELINES))
            if value <= best:
                met += 1
            else:
                misses.append(f"{text} {LABELS[s]}: {value:.2f} against {name}'s {best:.2f} ({value / best - 1:+.2%})")
    return met, misses


def unseen_margins(records: dict[str, dict]) -> dict[str, float]:
    """Setting label -> the default's unseen mean over the better baseline's, minus 1, for
    :data:`MARGIN_SETTINGS` where all three rows ran."""
    out = {}
    for s in MARGIN_SETTINGS:
        rows = [records.get(cell_name(label, s)) for label in (DEFAULT_ROW, *BASELINES)]
        if all(r is not None for r in rows):
            out[LABELS[s]] = unseen_mean(rows[0]) / min(unseen_mean(r) for r in rows[1:]) - 1
    return out


def complete_draws(model: str, labels: tuple[str, ...]) -> dict[str, dict[int, dict[str, dict]]]:
    """Setting -> seed -> label -> record, for the calibration draws of ``model`` (seed 0: its headline
    directory; others: ..._sN) that hold every one of ``labels``; settings with fewer than two such
    draws are left out."""
    seeds = (0, *(headline_cells.SEEDS if model == RunOptions.model else headline_cells.SECOND_MODEL_SEEDS))
    found = {seed: _cells(headline_cells.result_dir(model, seed=seed)) for seed in seeds}
    out: dict[str, dict[int, dict[str, dict]]] = {}
    for s in SETTINGS:
        draws = {seed: {label: recs.get(cell_name(label, s)) for label in labels} for seed, recs in found.items()}
        draws = {seed: got for seed, got in draws.items() if None not in got.values()}
        if len(draws) >= 2:
            out[s] = draws
    return out


def _mean_ppl(records: list[dict]) -> dict[str, float]:
    """Text -> the geometric mean of ``records``' PPL on it (the texts of the first)."""
    return {t: statistics.geometric_mean(r["ppl"][t] for r in records) for t in records[0]["ppl"]}


def draw_means(model: str, labels: tuple[str, str]) -> tuple[list[int], dict[str, dict[str, tuple[float, float]]], list[str]]:
    """(the seeds used, setting label -> text -> (the default's, the baseline's) geometric mean PPL over
    the calibration draws with both rows, each single draw's miss as "text setting seed N"),
    ``labels`` = (baseline, default); settings with fewer than two such draws are left out."""
    baseline, default = labels
    used: set[int] = set()
    means: dict[str, dict[str, tuple[float, float]]] = {}
    misses: list[str] = []
    for s, draws in complete_draws(model, labels).items():
        used |= set(draws)
        ours, theirs = (_mean_ppl([got[label] for got in draws.values()]) for label in (default, baseline))
        misses += [f"{t} {LABELS[s]} seed {seed}" for t in ours for seed, got in draws.items()
                   if got[default]["ppl"][t] > got[baseline]["ppl"][t]]
        means[LABELS[s]] = {t: (ours[t], theirs[t]) for t in ours}
    return sorted(used), means, misses


def mask_only_against_ria(records: dict[str, dict]) -> list[tuple[str, str, bool]]:
    """(setting label, "text: crepe against RIA", crepe's PPL below RIA's) for the calibration text
    and the unseen mean of every setting with both rows."""
    out = []
    for s in SETTINGS:
        crepe, ria = (records.get(cell_name(label, s)) for label in ("crepe mask-only (--update none)", "RIA (mask only)"))
        if crepe is None or ria is None:
            continue
        text = next(iter(crepe["ppl"]))
        for name, ours, theirs in ((text, crepe["ppl"][text], ria["ppl"][text]),
                                   ("unseen mean", unseen_mean(crepe), unseen_mean(ria))):
            out.append((LABELS[s], f"{name} {ours:.2f} against {theirs:.2f}", ours < theirs))
    return out


def mask_only_over_draws(model: str = RunOptions.model) -> tuple[list[int], list[tuple[str, str, bool]], list[tuple[str, str, bool]]]:
    """(the seeds used, :func:`mask_only_against_ria` of the geometric mean PPL per text over the draws
    with both rows, the same of every single draw) for each setting with at least two such draws
    (:data:`~benchmarks.headline_cells.MASK_SEED_ROWS`)."""
    labels = headline_cells.MASK_SEED_ROWS
    used: set[int] = set()
    means: dict[str, dict] = {}
    single: list[tuple[str, str, bool]] = []
    for s, draws in complete_draws(model, labels).items():
        used |= set(draws)
        means |= {cell_name(label, s): {"ppl": _mean_ppl([got[label] for got in draws.values()])} for label in labels}
        single += [row for got in draws.values()
                   for row in mask_only_against_ria({cell_name(label, s): got[label] for label in labels})]
    return sorted(used), mask_only_against_ria(means), single


def cost_ratios(folder: Path) -> dict[str, float]:
    """Setting label -> the default's median prune CPU time over SparseGPT's (``benchmarks.cost_ratio``)."""
    out = {}
    for s in SETTINGS:
        path = folder / f"{common.setting_name(s)}.json"
        if path.is_file():
            rec = common.read_json(path)
            base, ours = (statistics.median(rec["seconds"][label]) for label in cost_ratio.ROWS)
            out[LABELS[s]] = ours / base
    return out


def later_layer_ratios(folder: Path = COST_7B) -> dict[str, dict[str, float]]:
    """Row (the default, its float32 row) -> setting label -> a 7B-shaped later layer's CPU seconds over
    SparseGPT's second layer in the same prune (``benchmarks.cost_7b --layers 2``)."""
    out: dict[str, dict[str, float]] = {}
    for s in SETTINGS:
        path = folder / f"{common.setting_name(s)}__2layers.json"
        if not path.is_file():
            continue
        layers = common.read_json(path).get("layer_seconds", {})
        for label in (DEFAULT_ROW, FLOAT32_ROW):
            if len(layers.get(label, [])) >= 2 and len(layers.get("SparseGPT", [])) >= 2:
                out.setdefault(label, {})[LABELS[s]] = layers[label][1] / layers["SparseGPT"][1]
    return out


def _yes(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def _sources(folders: list[Path]) -> str:
    parts = []
    for folder in folders:
        records = [common.read_json(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
        commits = sorted({r["provenance"]["commit"] for r in records if "provenance" in r})
        if commits:
            parts.append(f"`results/{folder.name}` ({', '.join(commits)})")
    return "; ".join(parts)


def render() -> str:
    """results/targets.md: one row per target and table, from the records alone."""
    rows: list[list[str]] = []
    for name, folder in HEADLINES.items():
        records = _cells(folder)
        met, misses = beaten_cells(records)
        if met or misses:
            rows.append(["default ≤ ADMM-Grad and ALPS, every cell of every text", name, _yes(not misses),
                         f"{met} of {met + len(misses)} cells" + (": misses " + "; ".join(misses) if misses else "")])
    for model, labels in ((RunOptions.model, headline_cells.SEED_ROWS),
                          (headline_cells.SECOND_MODEL, headline_cells.SECOND_MODEL_SEED_ROWS)):
        draws, means, lost = draw_means(model, labels[:2])
        if means:
            misses = [f"{text} {s}: {ours:.2f} against {theirs:.2f} ({ours / theirs - 1:+.2%})"
                      for s, by_text in means.items() for text, (ours, theirs) in by_text.items() if ours > theirs]
            cells = sum(len(by_text) for by_text in means.values())
            rows.append([f"the same, over calibration draws: the default against {labels[0]} (geometric mean)",
                         f"{common.model_label(model)}, 16 x 512, seeds {', '.join(map(str, draws))}", _yes(not misses),
                         f"{cells - len(misses)} of {cells} cells" + (": misses " + "; ".join(misses) if misses else "")
                         + f"; single draws: {cells * len(draws) - len(lost)} of {cells * len(draws)} cells"
                         + (" (lost: " + ", ".join(lost) + ")" if lost else "")])
    for name, folder in HEADLINES.items():
        margins = unseen_margins(_cells(folder))
        if margins:
            absent = [LABELS[s] for s in MARGIN_SETTINGS if LABELS[s] not in margins]
            rows.append([f"≥ {MARGIN:.0%} below the better of them at 2:4 and 70%, unseen mean", name,
                         _yes(all(m <= -MARGIN for m in margins.values())),
                         ", ".join(f"{s} {m:+.1%}" for s, m in margins.items())
                         + (f" ({', '.join(absent)} not run)" if absent else "")])
    for name, folder in COSTS.items():
        ratios = cost_ratios(folder)
        if ratios:
            rows.append([f"cost ≤ {COST_LIMIT}× SparseGPT's (median of alternating prunes)", name,
                         _yes(max(ratios.values()) <= COST_LIMIT),
                         ", ".join(f"{s} {r:.2f}×" for s, r in ratios.items())])
    for label, ratios in later_layer_ratios().items():
        where = ("7B-shaped later layer, the default (bfloat16 products on this CPU)" if label == DEFAULT_ROW
                 else "7B-shaped later layer, float32 (a CPU without native bfloat16)")
        rows.append([f"cost ≤ {COST_LIMIT}× SparseGPT's (one prune each)", where, _yes(max(ratios.values()) <= COST_LIMIT),
                     ", ".join(f"{s} {r:.2f}×" for s, r in ratios.items())])
    for name, folder in HEADLINES.items():
        found = mask_only_against_ria(_cells(folder))
        if found:
            lost = [f"{s} {what}" for s, what, ok in found if not ok]
            rows.append(["mask-only crepe beats RIA (calibration text and unseen mean)", name, _yes(not lost),
                         f"{len(found) - len(lost)} of {len(found)}" + (": loses " + "; ".join(lost) if lost else "")])
    draws, found, single = mask_only_over_draws()
    if found:
        lost = [f"{s} {what}" for s, what, ok in found if not ok]
        rows.append(["mask-only crepe beats RIA, over calibration draws (geometric mean)",
                     f"{common.model_label(RunOptions.model)}, 16 x 512, seeds {', '.join(map(str, draws))}",
                     _yes(not lost), f"{len(found) - len(lost)} of {len(found)}" + (": loses " + "; ".join(lost) if lost else "")
                     + f"; single draws: {sum(ok for *_, ok in single)} of {len(single)}"])
    folders = [*HEADLINES.values(), *COSTS.values(), COST_7B]
    head = ("Issue 22's targets, judged by `python -m benchmarks.targets` from the committed records alone "
            f"(no figure typed in): {_sources(folders)}. Each record keeps its own command, config and commit; "
            "the tables beside them (results/headline*.md, results/cost_ratio*.md, results/cost_7b.md) "
            "give the protocol. A cell is met at equal PPL; \"unseen mean\" is the geometric mean of the "
            "PPL on the texts calibration never saw.")
    return "\n".join([head, "", *common.markdown_table(["target", "table", "met", "figures"], rows)])


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    body = render()
    OUT.write_text(body + "\n")
    print(body)


if __name__ == "__main__":
    main()
