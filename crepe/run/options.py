"""The options of one pruning run besides the pruning config itself: the model, calibration,
evaluation, output and device choices that ``python -m crepe.prune`` and ``crepe.oneshot`` share.

Each field's default is the only place that default is written: the CLI generates its flags from the
fields' ``help`` metadata (:mod:`crepe.cli.fields`), and ``oneshot`` and ``pho`` read
:func:`default_of`. ``recipe=True`` marks the options a result depends on (:data:`RUN_KEYS`, the
recipe's ``run`` entry).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from crepe.config import PruneConfig
from crepe.evaluation.zeroshot import ZeroShotConfig
from crepe.methods.params import check_at_least, check_types
from crepe.models.loading import OFFLOADS
from crepe.output.recipe import run_keys

EVAL_DTYPES = ("float32", "bfloat16", "float16")


def default_of(kind: type, name: str) -> Any:
    """The declared default of field ``name`` of dataclass ``kind`` (its factory called; None if none)."""
    f = kind.__dataclass_fields__[name]
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _opt(default: Any, help: str, group: str | None = None, recipe: bool = False, **more: Any) -> Any:
    """A field with its flag's metadata (see crepe.cli.fields)."""
    return field(default=default, metadata={"help": help, "group": group, "recipe": recipe, **more})


@dataclass(frozen=True)
class RunOptions:
    """Everything one run needs besides the pruning config. ``dtype``: auto (the checkpoint's own) |
    bfloat16 | float16 | float32; ``offload``: auto | none | disk (see crepe.models.loading.should_stream);
    ``device``: where layers compute (cuda moves one layer at a time, never the whole model)."""

    model: str = _opt("smollm2-135m", "alias (smollm2-135m, llama-2-7b, ...), hub id, folder or .gguf")
    prune: PruneConfig = field(default_factory=PruneConfig, metadata={"prefix": ""})
    calib_dataset: str = _opt("wikivital", "wikivital, c4, wikitext2, text:PATH, jsonl:PATH", "calibration", True)
    nsamples: int = _opt(16, "calibration windows (papers: 128)", "calibration", True)
    seqlen: int = _opt(512, "tokens per calibration window (papers: 2048)", "calibration", True)
    seed: int = _opt(0, "seed of the calibration draw", "calibration", True)
    batch_size: int = _opt(8, "calibration windows per forward batch", "calibration", True)
    eval_dataset: str = _opt("wikivital", "wikivital (offline), wikitext2, c4, text:PATH or jsonl:PATH; 'none' skips "
                             "evaluation", "evaluation", True)
    eval_split: str = _opt("test", "calibration | validation | test", "evaluation", True)
    eval_seqlen: int = _opt(512, "tokens per window (papers: 2048 or the context)", "evaluation", True)
    max_eval_windows: int | None = _opt(40, "evaluate only the first K windows (none given: all; state it next to any "
                                        "figure)", "evaluation", True)
    eval_dtype: str = _opt("float32", "autocast dtype of the evaluation forward passes", "evaluation", True,
                           choices=EVAL_DTYPES)
    eval_batch_size: int = _opt(4, "evaluation windows per forward batch", "evaluation", True)
    bos_per_window: str = _opt("auto", "prepend BOS to every window; auto = the architecture's default (Gemma: yes)",
                               "evaluation", True, choices=("auto", "yes", "no"))
    skip_dense_eval: bool = _opt(False, "do not evaluate the dense model first", "evaluation")
    dtype: str = _opt("auto", "weight dtype: auto = the checkpoint's own (GGUF: float32); layers compute in float32 "
                      "on CPU", "output", True, choices=("auto", "bfloat16", "float16", "float32"))
    offload: str = _opt("auto", "disk: stream decoder layers from the checkpoint one at a time; auto: when the weights "
                        "would take over half of the available RAM; none: load everything", "output", choices=OFFLOADS)
    device: str | None = _opt(None, "device for layer-by-layer work, e.g. cuda: layers move there one at a time "
                              "(default: CPU)", "output")
    save: str | None = _opt(None, "save the pruned model (HF folder, safetensors) here", "output")
    overwrite: bool = _opt(False, "replace an existing --save folder", "output")
    push_to_hub: str | None = _opt(None, "after saving, upload the --save folder to this hub repo (OWNER/NAME, created if "
                                   "missing; needs a token: hf auth login)", "output", metavar="REPO")
    report: str | None = _opt(None, "write the run report JSON here", "output")
    time_dense_pass: bool = _opt(False, "also time one dense layer-by-layer pass over the calibration set "
                                 "(cost baseline)", "output")
    zeroshot: ZeroShotConfig | None = field(default=None, metadata={  # lm-eval tasks on the dense and the pruned model
        "group": "evaluation", "switch": "tasks", "fields": {
            "tasks": {"flag": "--zeroshot", "parse": ZeroShotConfig.parse_tasks,
                      "help": "comma-separated lm-eval tasks run on the dense and the pruned model (e.g. "
                              "wikivital_describe, offline; boolq,rte,... need the hub)"},
            "limit": {"help": "items per zero-shot task (default: all)"},
            "include_path": {"help": "folder of extra lm-eval task YAMLs"}}})
    command: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Types and sizes checked where the options enter (flags, a recipe's ``run`` entry, ``oneshot``)."""
        check_types(self, "run option")
        if not isinstance(self.prune, PruneConfig):
            raise ValueError(f"run option 'prune' must be a PruneConfig, got {self.prune!r}")
        check_at_least(1, "run option ", nsamples=self.nsamples, batch_size=self.batch_size,
                       eval_batch_size=self.eval_batch_size, max_eval_windows=self.max_eval_windows)
        check_at_least(2, "run option ", seqlen=self.seqlen, eval_seqlen=self.eval_seqlen)

    @property
    def resolved_prune(self) -> PruneConfig:
        """The pruning config with what depends on the calibration's size resolved (the admm-grad damping:
        :data:`crepe.methods.gradual.ADMM_GRAD_DAMP_BY_TOKENS`): what the run prunes with and records."""
        return self.prune.at_calibration(self.nsamples * self.seqlen)


RUN_KEYS = run_keys(RunOptions)  # the options a result depends on: the recipe's "run" entry
