"""The options of one pruning run besides the pruning config itself: the model, calibration,
evaluation, output and device choices that ``python -m crepe.prune`` and ``crepe.oneshot`` share."""

from __future__ import annotations

from dataclasses import dataclass, field

from crepe.config import PruneConfig
from crepe.evaluation.zeroshot import ZeroShotConfig


@dataclass(frozen=True)
class RunOptions:
    """Everything one run needs besides the pruning config. ``dtype``: auto (the checkpoint's own) |
    bfloat16 | float16 | float32; ``offload``: auto | none | disk (see crepe.models.loading.should_stream);
    ``device``: where layers compute (cuda moves one layer at a time, never the whole model)."""

    model: str = "smollm2-135m"
    prune: PruneConfig = field(default_factory=PruneConfig)
    calib_dataset: str = "wikivital"
    nsamples: int = 16
    seqlen: int = 512
    seed: int = 0
    batch_size: int = 8
    eval_dataset: str = "wikivital"
    eval_split: str = "test"
    eval_seqlen: int = 512
    max_eval_windows: int | None = 40
    eval_dtype: str = "float32"
    eval_batch_size: int = 4
    bos_per_window: str = "auto"
    skip_dense_eval: bool = False
    dtype: str = "auto"
    offload: str = "auto"
    device: str | None = None
    save: str | None = None
    overwrite: bool = False
    report: str | None = None
    time_dense_pass: bool = False
    zeroshot: ZeroShotConfig | None = None  # lm-eval tasks run on the dense and on the pruned model
    command: tuple[str, ...] = ()
