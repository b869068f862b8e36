"""What every benchmark shares: the cell loop, the runner, the evaluation texts, the table writer and the stamp.

A *cell* is one pruning run of one benchmark, recorded as one JSON file named after the cell. The
cell loop skips a cell whose record exists, so re-running a command resumes it. The runner prunes
through the library's own path, :func:`crepe.run.job.run` (what ``python -m crepe.prune`` calls), on a
model loaded once and restored to its dense weights before every cell. A record stores the explicit
resolved config (``PruneConfig.to_dict()`` with ``resolved_update``/``resolved_group``, every
``RunOptions`` value) and the provenance stamp; :func:`require_clean` refuses to write records under
``results/`` from a tree with uncommitted changes, so no ``-dirty`` stamp reaches the repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import time
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Callable, Iterable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: CPU time counts work, not spinning
import torch  # noqa: E402  (after the OpenMP setting, which is read when torch loads)
from torch import nn  # noqa: E402

from crepe.config import PruneConfig  # noqa: E402
from crepe.data.prepare import eval_set  # noqa: E402
from crepe.io.files import read_json, write_json_atomic  # noqa: E402
from crepe.io.provenance import current_command, git_commit, markdown_stamp, provenance  # noqa: E402
from crepe.methods.params import Pattern  # noqa: E402
from crepe.models.adapters import bos_per_window  # noqa: E402
from crepe.models.offline import OFFLINE_MODELS  # noqa: E402
from crepe.run.job import evaluate, run  # noqa: E402
from crepe.run.open import open_model  # noqa: E402
from crepe.run.options import RunOptions  # noqa: E402

log = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parents[1] / "results"
UNSEEN_TEXTS = ("python-reference", "python-docstrings")  # evaluation texts far from the calibration's Wikipedia
SELECTION_TEXT = "lm-eval-cards"  # the held-out text defaults are chosen on (never a reported column)


def parse_setting(setting: str) -> tuple[float, Pattern]:
    """``"0.5"`` -> (0.5, unstructured); ``"2:4"`` -> (0.5, 2:4)."""
    pattern = Pattern.parse(setting) if ":" in setting else Pattern()
    return pattern.sparsity_or(0.0 if pattern.structured else float(setting)), pattern


def setting_name(setting: str) -> str:
    """A setting as a file-name part: ``2:4`` -> ``2-4``."""
    return setting.replace(":", "-")


def require_clean(out: Path) -> None:
    """Refuse to write records under ``results/`` when tracked code differs from HEAD: their stamp
    would name a commit that did not make them."""
    inside = out.resolve().is_relative_to(RESULTS)
    if inside and git_commit().endswith("-dirty"):
        raise SystemExit(f"{out} is under results/ and the tree has uncommitted changes: commit first "
                         "(or run from a clean worktree of the commit)")


def run_cells(cells: Iterable[str], out: Path, run_cell: Callable[[str], dict[str, Any]]) -> list[Path]:
    """The cell loop: for each cell name without a record ``out/<name>.json``, run it and write its
    record atomically (an interrupted run leaves no partial file). Returns the records written."""
    out.mkdir(parents=True, exist_ok=True)
    require_clean(out)
    written = []
    for name in cells:
        path = out / f"{name}.json"
        if path.exists():
            log.info("%s exists: skipped", path)
            continue
        write_json_atomic(path, run_cell(name))
        written.append(path)
    return written


def record(config: dict[str, Any], **results: Any) -> dict[str, Any]:
    """A cell's record: its results and the provenance of the explicit ``config`` that made them."""
    return {**results, "provenance": provenance(current_command(), config)}


def options_dict(opts: RunOptions) -> dict[str, Any]:
    """Every ``RunOptions`` value besides the pruning config and the command, as plain JSON values."""
    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts) if f.name not in ("prune", "command")}
    return {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in values.items()}


def cell_config(opts: RunOptions, **extra: Any) -> dict[str, Any]:
    """The explicit config of a pruning cell: the resolved pruning config and every run option."""
    return {**extra, "prune_config": opts.resolved_prune.to_dict(), "options": options_dict(opts)}


@dataclass
class Bench:
    """A model loaded once with its dense weights kept, and the evaluation windows of each text."""

    model: nn.Module
    tokenizer: Any
    dense: dict[str, torch.Tensor]
    evals: dict[str, tuple[torch.Tensor, str]]  # text -> (windows [w, seq], protocol)


def open_bench(opts: RunOptions, second_text: bool = True, texts: tuple[str, ...] | None = None) -> Bench:
    """Load ``opts.model``; evaluation windows of ``opts.eval_dataset`` and of ``texts`` (named
    datasets; default: the CPython reference, or none without ``second_text``)."""
    opened = open_model(opts.model, opts.dtype, opts.offload, opts.device)
    model, tok = opened.model, opened.tokenizer
    bos = bos_per_window(opts.bos_per_window, model)
    extra = texts if texts is not None else UNSEEN_TEXTS[:1] if second_text else ()
    evals = {}
    for name in (opts.eval_dataset, *extra):
        windows, spec = eval_set(tok, name, opts.eval_split, opts.eval_seqlen, opts.max_eval_windows, bos)
        evals[name] = (windows, spec.describe())
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    return Bench(model, tok, dense, evals)


def perplexities(bench: Bench, opts: RunOptions) -> dict[str, float]:
    """PPL of the model as it stands on every evaluation text, the way ``crepe.prune`` evaluates."""
    return {name: evaluate(bench.model, windows, opts)[0] for name, (windows, _) in bench.evals.items()}


def prune(bench: Bench, opts: RunOptions) -> dict[str, Any]:
    """Restore the dense weights, then prune through :func:`crepe.run.job.run` (no evaluation, no
    files): the job's report plus ``prune_cpu_seconds``, the process CPU time of the whole call."""
    bench.model.load_state_dict(bench.dense)
    quiet = dataclasses.replace(opts, eval_dataset="none", skip_dense_eval=True, save=None, report=None)
    cpu = time.process_time()
    result = run(quiet, bench.model, bench.tokenizer, echo=log.info)
    return {**result.report, "prune_cpu_seconds": time.process_time() - cpu}


def zeroshot_accuracy(bench: Bench, tasks: tuple[str, ...]) -> dict[str, float]:
    """Zero-shot accuracy (lm-eval, 0-shot, every item) of the model as it stands on each of ``tasks``."""
    from crepe.evaluation.zeroshot import ZeroShotConfig, evaluate_zeroshot

    rows = evaluate_zeroshot(bench.model, bench.tokenizer, ZeroShotConfig(tasks=tasks, num_fewshot=0))["rows"]
    return {f"{r['task']}/{r['metric']}": r["value"] for r in rows}


def prune_and_evaluate(bench: Bench, opts: RunOptions, zeroshot: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """One pruning cell: prune, evaluate every text (and zero-shot ``zeroshot`` tasks), and the record
    with its explicit config."""
    report = prune(bench, opts)
    ppl = perplexities(bench, opts)
    accuracy = {"zeroshot": zeroshot_accuracy(bench, zeroshot)} if zeroshot else {}
    log.info("%s: %s (%.0f s CPU)", extra.get("cell", opts.prune.method),
             ", ".join(f"{k} {v:.2f}" for k, v in ppl.items()), report["prune_cpu_seconds"])
    return record(cell_config(opts, **extra), ppl=ppl, prune_seconds=report["prune_seconds"],
                  prune_cpu_seconds=report["prune_cpu_seconds"], realised_sparsity=report["realised_sparsity"],
                  calibration=report["calibration"], eval=protocols(bench), **accuracy)


def run_dense(bench: Bench, opts: RunOptions, out: Path, zeroshot: tuple[str, ...] = ()) -> None:
    """The dense model's record ``out/dense.json``: its PPL on every text, zero-shot accuracy on
    ``zeroshot`` tasks (skipped if the record exists)."""
    config = {k: v for k, v in cell_config(opts, cell="dense").items() if k != "prune_config"}
    accuracy = (lambda: {"zeroshot": zeroshot_accuracy(bench, zeroshot)}) if zeroshot else dict
    run_cells(["dense"], out, lambda _: record(config, ppl=perplexities(bench, opts), eval=protocols(bench),
                                               **accuracy()))


def protocols(bench: Bench) -> dict[str, str]:
    """Each evaluation text's protocol."""
    return {name: protocol for name, (_, protocol) in bench.evals.items()}


def read_records(out: Path, pattern: str = "*.json") -> dict[str, dict[str, Any]]:
    """Every record in ``out`` by file stem."""
    return {p.stem: read_json(p) for p in sorted(out.glob(pattern))}


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a markdown table."""
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|", *("| " + " | ".join(r) + " |" for r in rows)]


def selection_intro(own: list[dict[str, Any]], out: Path, subject: str, note: str = "") -> list[str]:
    """The stamp and first paragraph of a selection study's table: ``subject`` (what each row prunes),
    the calibration and evaluation of its first record ``own[0]``, the selection rule's text, ``note``."""
    first = own[0]
    return [stamp(own, out), "",
            f"{subject}; calibration {first['calibration']} with seed 0; PPL on "
            + "; ".join(f"{t}: {p}" for t, p in first["eval"].items()) + ". "
            f"{SELECTION_TEXT} is the selection text; wikivital, the calibration's domain, is shown, never used. "
            f"{note}CPU: process CPU seconds of the prune (two processes side by side; a rough guide).", ""]


def selection_table(first: str, table: dict[str, dict[str, dict[str, Any]]], settings: tuple[str, ...],
                    mean: Callable[[dict[str, dict[str, Any]]], float | None]) -> list[str]:
    """Lines of a selection study's table: one row per label of ``table`` (label -> setting -> record),
    the selection text's PPL at each setting, ``mean`` of them, wikivital's PPL (shown, never used)
    and the prune's CPU seconds; "–" where a cell has not run. ``first``: the label column's header."""
    def each(cells: dict[str, dict[str, Any]], value: Callable[[dict[str, Any]], str]) -> list[str]:
        return [value(cells[s]) if s in cells else "–" for s in settings]

    header = [first, *(f"{SELECTION_TEXT} {s}" for s in settings), f"{SELECTION_TEXT} geometric mean",
              *(f"wikivital {s}" for s in settings), *(f"CPU s {s}" for s in settings)]
    rows = []
    for label, cells in table.items():
        m = mean(cells)
        rows.append([label, *each(cells, lambda r: f"{r['ppl'][SELECTION_TEXT]:.2f}"), f"{m:.2f}" if m else "–",
                     *each(cells, lambda r: f"{r['ppl']['wikivital']:.2f}"),
                     *each(cells, lambda r: f"{r['prune_cpu_seconds']:.0f}")])
    return markdown_table(header, rows)


def model_name(record: dict[str, Any]) -> str:
    """The model a record pruned, by its hub name where it is an offline alias (SmolLM2-135M-Instruct)."""
    return model_label(record["provenance"]["config"].get("options", {}).get("model"))


def model_label(spec: str | None) -> str:
    """A ``--model`` value as a table names it: an offline alias by its hub name."""
    if spec is None:
        return "the model (not recorded)"
    return OFFLINE_MODELS[spec].base_model.split("/")[-1] if spec in OFFLINE_MODELS else spec


MACHINE_KEYS = ("cpu", "cpu_capability")


def machine(rec: dict[str, Any]) -> tuple[str | None, ...]:
    """What a record says of the machine it ran on: the CPU model and torch's vector capability
    (recorded from cc8fda8 on), else the OS platform string (the machine image's kernel build)."""
    found = rec.get("provenance", {}).get("versions", {})
    if all(key in found for key in MACHINE_KEYS):
        return tuple(found[key] for key in MACHINE_KEYS)
    return (found.get("platform"),)


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two records name the same machine (unknown never matches): CPU times of records
    from different machines are not comparable. Where only one names its CPU, the platform strings
    (which every record holds) decide, as they do between two older records."""
    ma, mb = machine(a), machine(b)
    if len(ma) != len(mb):
        ma, mb = (_platform(a),), (_platform(b),)
    return ma == mb and None not in ma


def _platform(rec: dict[str, Any]) -> str | None:
    return rec.get("provenance", {}).get("versions", {}).get("platform")


def stamp(records: Iterable[dict[str, Any]], out: Path) -> str:
    """The first line of a table: the stamp of its earliest record, and where the others' are."""
    records = list(records)
    first = min(records, key=lambda r: r["provenance"]["date"])
    commits = sorted({r["provenance"]["commit"] for r in records})
    shown = out.resolve().relative_to(RESULTS.parent) if out.resolve().is_relative_to(RESULTS.parent) else out
    return (markdown_stamp(first["provenance"]) + f" {len(records)} records in `{shown}`"
            f" (commits {', '.join(commits)}), each with its own command and config.")


def write_block(doc: Path, name: str, body: str) -> None:
    """Replace the generated block between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in ``doc``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{doc} has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    doc.write_text(head + start + "\n" + body + "\n" + end + rest.split(end, 1)[1])


def chosen(text: str, known: Iterable[str], option: str = "--settings") -> tuple[str, ...]:
    """``option`` "a,b" as a tuple, each one of ``known``; else exit with one line naming them."""
    known = tuple(known)
    picked = tuple(item.strip() for item in text.split(","))
    unknown = set(picked) - set(known)
    if unknown:
        raise SystemExit(f"unknown {option} {sorted(unknown)}; choose from {', '.join(known)}")
    return picked


def chosen_settings(text: str, known: Iterable[str]) -> tuple[str, ...]:
    """``--settings`` "a,b" as a tuple, each one of ``known`` (:func:`chosen`)."""
    return chosen(text, known)


def publish(out: Path, body: str) -> None:
    """Print a table; when its records sit directly under ``results/``, also write it there as
    ``results/<folder>.md`` (another --out-dir leaves results/ alone)."""
    if out.resolve().parent == RESULTS:
        (RESULTS / f"{out.name}.md").write_text(body + "\n")
    print(body)


def settings_parser(doc: str | None, settings: Iterable[str], out: Path, default: str | None = None) -> argparse.ArgumentParser:
    """The options every per-setting benchmark takes: --model, --settings (from ``settings``;
    ``default``, else all of them), --out-dir (``out``) and --table (only rebuild the table)."""
    settings = tuple(settings)
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=RunOptions.model)
    ap.add_argument("--settings", default=default or ",".join(settings), help=f"comma-separated, from {', '.join(settings)}")
    ap.add_argument("--out-dir", type=Path, default=out)
    ap.add_argument("--table", action="store_true", help="only rebuild the table from the records")
    return ap


def stored_cells(paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Record path -> {command, config} as stored in its provenance, for the planned ``paths`` that exist."""
    found = {path: read_json(Path(path)) for path in paths if Path(path).is_file()}
    return {path: {"command": rec["provenance"]["argv"], "config": rec["provenance"]["config"]}
            for path, rec in found.items()}


CellsOf = Callable[[str, tuple[str, ...]], dict[str, RunOptions]]
"""(model, settings) -> cell name -> its run options: the cells of a per-setting benchmark."""


def planned_cells(parser: argparse.ArgumentParser, cells: CellsOf, known: Iterable[str], argv: list[str]) -> dict[str, dict]:
    """A per-setting benchmark's ``planned``: record path -> {command, the explicit config it would
    store now} for the cells of ``argv`` (parsed by ``parser``); no model is loaded."""
    args = parser.parse_args(argv)
    return {str(args.out_dir / f"{name}.json"): {"command": None, "config": cell_config(opts, cell=name)}
            for name, opts in cells(args.model, chosen_settings(args.settings, known)).items()}


def selection_main(parser: argparse.ArgumentParser, cells: CellsOf, known: Iterable[str],
                   table: Callable[[Path], str], out: Path, table_path: Path,
                   args: argparse.Namespace | None = None) -> None:
    """``main`` of a benchmark scored on the selection text: prune and score the missing cells of
    ``--settings`` (unless ``--table``), then print the table, and write it to ``table_path`` when the
    records are the committed ones (``--out-dir`` is ``out``). ``args``: already parsed (else ``parser``'s)."""
    args = parser.parse_args() if args is None else args
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    if not args.table:
        plan = cells(args.model, chosen_settings(args.settings, known))
        bench = open_bench(next(iter(plan.values())), texts=(SELECTION_TEXT,))
        run_cells(plan, args.out_dir, lambda name: prune_and_evaluate(bench, plan[name], cell=name))
    body = table(args.out_dir)
    if args.out_dir == out:
        table_path.write_text(body + "\n")
    print(body)


STUDY_PRODUCTS = "float32"
"""The admm-grad product precision the selection studies (default_choice, iteration_draws,
damping_c128) hold fixed: they chose damping, target and iterations in float32 before products
became an option; ``benchmarks.convergence`` shows the per-linear held-out error does not move with it."""
STUDY_DENSE_PRECISION = "float32"
"""The dense forward's precision those studies hold fixed (float32 before it was an option;
``benchmarks.dense_precision`` judges it on the selection text)."""


def prune_options(base: RunOptions, method: str, setting: str, **prune: Any) -> RunOptions:
    """``base`` with the pruning config of ``method`` at ``setting`` (and any other config fields)."""
    sparsity, pattern = parse_setting(setting)
    cfg = PruneConfig(method=method, sparsity=sparsity, pattern=pattern, **prune)
    return dataclasses.replace(base, prune=cfg)


@dataclass(frozen=True)
class Table:
    """A committed table (or record) under ``results/``, the commands that make it, and the other
    committed files it accounts for (glob patterns). A benchmark module lists its own in ``TABLES``."""

    path: str
    commands: tuple[str, ...]
    covers: tuple[str, ...] = ()

    def accounts_for(self, rel: str) -> bool:
        """Whether the committed file ``rel`` belongs to this table (itself, a same-stem file, ``covers``)."""
        stem = self.path.rsplit(".", 1)[0]
        return rel == self.path or rel.startswith(stem + ".") or any(fnmatch(rel, p) for p in self.covers)


def stale(module: Any, table: Table) -> dict[str, list[str]]:
    """Record -> how its stored config differs from what its command resolves to now, for every
    command of ``table`` (run from the repository root, as the commands are). A planned record that
    is missing counts as a difference; a module without ``planned`` is checked for stamps only."""
    from benchmarks.resolve import differences, split_program

    if not hasattr(module, "planned"):
        return {}
    out: dict[str, list[str]] = {}
    cwd = Path.cwd()
    os.chdir(RESULTS.parent)
    try:
        for command in table.commands:
            flags = split_program(shlex.split(command))[1]
            plan, rec = module.planned(flags), module.recorded(flags)
            for key, planned_record in plan.items():
                found = rec.get(key)
                diff = ["missing"] if found is None else differences(found["config"], planned_record["config"])
                if diff:
                    out[key] = diff
    finally:
        os.chdir(cwd)
    return out
