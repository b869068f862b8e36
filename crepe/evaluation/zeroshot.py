"""Zero-shot accuracy through lm-eval 0.4 (``HFLM`` + ``simple_evaluate``); this module is only glue.

Used by ``python -m eval.zeroshot`` and by ``crepe.prune --zeroshot`` (dense and pruned in one run).
The papers' seven tasks (:data:`PAPER_TASKS`) download their data from the Hugging Face hub; offline
they fail with one line. The shipped local task ``wikivital_describe`` (4-way multiple choice,
chance 25%, built by ``python -m benchmarks.tools.make_local_task`` from the wikivital test split) needs no hub and is
always available: its YAML template in ``crepe/tasks/`` is rendered at run time with the absolute
path of its data (lm-eval resolves relative ``data_files`` against the working directory).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from crepe.io.extras import needs_extra

log = logging.getLogger(__name__)

PAPER_TASKS = ("boolq", "rte", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")
SHIPPED_TASKS_DIR = Path(__file__).resolve().parent / "tasks"
DATA_PLACEHOLDER = "@DATA_FILE@"
_NO_DATA_HINT = ("the papers' tasks download their data from the Hugging Face hub; offline, use a local task "
                 "(--tasks wikivital_describe, or your own YAML with --include-path)")


@dataclass(frozen=True)
class ZeroShotConfig:
    """What to evaluate: lm-eval task names, extra task folders, items per task (``limit``: a count,
    or a fraction when < 1), few-shot examples (None: each task's default, 0 for ours)."""

    tasks: tuple[str, ...]
    include_path: str | None = None
    limit: float | None = None
    num_fewshot: int | None = None
    batch_size: int = 8
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.tasks or any(not t for t in self.tasks):
            raise ValueError("--tasks needs at least one task name (comma-separated)")
        if self.limit is not None and not self.limit > 0:
            raise ValueError(f"--limit must be > 0, got {self.limit}")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise ValueError(f"--num-fewshot must be >= 0, got {self.num_fewshot}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.include_path is not None and not Path(self.include_path).is_dir():
            raise ValueError(f"--include-path {self.include_path} is not a folder")

    @staticmethod
    def parse_tasks(spec: str) -> tuple[str, ...]:
        return tuple(t.strip() for t in spec.split(",") if t.strip())


def render_shipped_tasks(target: Path) -> list[str]:
    """Write every shipped ``eval/tasks/<name>/<name>.yaml.in`` to ``target/<name>.yaml`` with the
    placeholder replaced by the absolute path of its data file; returns the task names."""
    names = []
    for template in sorted(SHIPPED_TASKS_DIR.glob("*/*.yaml.in")):
        name = template.name.removesuffix(".yaml.in")
        data = (template.parent / f"{name}.jsonl").resolve()
        quoted = json.dumps(str(data))[1:-1]  # a YAML double-quoted scalar takes JSON escapes
        (target / f"{name}.yaml").write_text(template.read_text().replace(DATA_PLACEHOLDER, quoted))
        names.append(name)
    return names


def task_manager(cfg: ZeroShotConfig, rendered: Path):
    """lm-eval's TaskManager over its own tasks, the shipped local ones and ``cfg.include_path``;
    unknown task names fail here with one line, and so does a missing lm-eval."""
    with needs_extra("zero-shot evaluation", "lm-eval", "eval", "lm_eval"):
        from lm_eval.tasks import TaskManager

    shipped = render_shipped_tasks(rendered)
    include = [str(rendered)] + ([str(Path(cfg.include_path).resolve())] if cfg.include_path else [])
    manager = TaskManager(include_path=include)
    unknown = [t for t in cfg.tasks if t not in manager.all_tasks]
    if unknown:
        raise ValueError(f"unknown lm-eval task(s) {', '.join(unknown)}; local tasks shipped here: {', '.join(shipped)}; "
                         f"the papers' tasks: {','.join(PAPER_TASKS)}; your own: --include-path DIR")
    return manager


@contextlib.contextmanager
def prepared_tasks(cfg: ZeroShotConfig) -> Iterator[Any]:
    """A TaskManager for ``cfg`` (task names checked) whose rendered shipped tasks live as long as
    the ``with`` block: build it before loading a model so a bad task name costs nothing."""
    with tempfile.TemporaryDirectory(prefix="crepe-tasks-") as rendered:
        yield task_manager(cfg, Path(rendered))


def evaluate_zeroshot(model: nn.Module, tokenizer: Any, cfg: ZeroShotConfig, manager: Any = None) -> dict[str, Any]:
    """Run lm-eval on ``model`` (moved to ``cfg.device`` for the run, then back) and return
    :func:`summarise` of its results. Missing task data (offline hub tasks) raises ValueError.
    ``manager``: from :func:`prepared_tasks` (made here when None)."""
    if manager is None:
        with prepared_tasks(cfg) as manager:
            return evaluate_zeroshot(model, tokenizer, cfg, manager)
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    home = next(model.parameters()).device
    model.to(cfg.device)
    try:
        lm = HFLM(pretrained=model, tokenizer=tokenizer, device=cfg.device, batch_size=cfg.batch_size)
        limit = int(cfg.limit) if cfg.limit is not None and cfg.limit >= 1 else cfg.limit
        with torch.no_grad():
            out = simple_evaluate(lm, tasks=list(cfg.tasks), num_fewshot=cfg.num_fewshot, limit=limit,
                                  task_manager=manager, log_samples=False)
    except (ConnectionError, OSError) as exc:  # datasets: "Couldn't reach ... on the Hub", missing files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"cannot load the data of task(s) {','.join(cfg.tasks)}: {first}; {_NO_DATA_HINT}") from exc
    finally:
        model.to(home)
    return summarise(out, cfg)


def summarise(out: dict[str, Any], cfg: ZeroShotConfig) -> dict[str, Any]:
    """lm-eval's result dict -> ``{"rows": [{task, metric, value, stderr, n, chance}], ...}`` (one
    row per task and metric; stderr None where lm-eval gives none)."""
    import lm_eval

    rows = []
    for task, metrics in out["results"].items():
        n = out.get("n-samples", {}).get(task, {}).get("effective")
        chance = (out.get("configs", {}).get(task, {}).get("metadata") or {}).get("chance")
        for key, value in metrics.items():
            metric, _, _filter = key.partition(",")
            if metric.endswith("_stderr") or metric == "sample_len" or not isinstance(value, (int, float)) \
                    or isinstance(value, bool):
                continue
            stderr = metrics.get(f"{metric}_stderr,{_filter}")
            stderr = float(stderr) if isinstance(stderr, (int, float)) and math.isfinite(stderr) else None
            rows.append({"task": task, "metric": metric, "value": float(value), "stderr": stderr, "n": n, "chance": chance})
    return {"rows": rows, "config": asdict(cfg), "lm_eval": lm_eval.__version__,
            "num_fewshot": out.get("n-shot", {})}


def format_table(rows: list[dict[str, Any]]) -> str:
    """One plain-text table: task, metric, value, stderr, n, chance."""
    lines = [f"{'task':<24} {'metric':<10} {'value':>7} {'stderr':>7} {'n':>5} {'chance':>6}"]
    for r in rows:
        stderr = f"{r['stderr']:.4f}" if r["stderr"] is not None else "-"
        chance = f"{r['chance']:.2f}" if r.get("chance") is not None else "-"
        lines.append(f"{r['task']:<24} {r['metric']:<10} {r['value']:>7.4f} {stderr:>7} {r['n'] or '-':>5} {chance:>6}")
    return "\n".join(lines)


class ZeroShotRun:
    """Zero-shot inside one pruning run: the model and the task names are checked at construction
    (before any work), then :meth:`evaluate` runs on the dense and on the pruned model;
    ``results`` maps the stage ("dense", "pruned") to :func:`summarise` output."""

    def __init__(self, cfg: ZeroShotConfig, model: nn.Module):
        if getattr(model, "crepe_layer_store", None) is not None:
            raise ValueError("--zeroshot needs the model in memory, but this run streams it from disk; "
                             "evaluate the saved folder instead: python -m eval.zeroshot --model DIR --tasks ...")
        self.cfg = cfg
        self._rendered = tempfile.TemporaryDirectory(prefix="crepe-tasks-")
        self.manager = task_manager(cfg, Path(self._rendered.name))
        self.results: dict[str, Any] = {}

    def evaluate(self, model: nn.Module, tokenizer: Any, stage: str, echo: Callable[[str], None] = print) -> None:
        self.results[stage] = evaluate_zeroshot(model, tokenizer, self.cfg, self.manager)
        echo(f"{stage} zero-shot (lm-eval):\n{format_table(self.results[stage]['rows'])}")
