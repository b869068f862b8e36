"""What every PHO command starts from: a model, its calibration windows and the statistics cache.

:class:`SetupConfig` is the frozen, validated description (built from CLI flags by
:func:`setup_from_args`); :func:`open_workspace` loads the model once and gets the cached
statistics, collecting them with one dense pass on a cache miss.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from crepe.cli.fields import add_flags, from_args
from crepe.data.prepare import calibration_set
from crepe.models.adapters import LinearTarget, model_target
from crepe.models.loading import OFFLOADS, cache_root
from crepe.run.open import open_model
from crepe.run.options import RunOptions, default_of
from pho.cache import CacheKey, load_or_collect, weights_fingerprint
from pho.proxies import LayerData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SetupConfig:
    """Model, calibration data and statistics-cache settings shared by the PHO commands (the flags of
:func:`add_setup_args`; the defaults crepe.prune shares are RunOptions')."""

    model: str = field(default=default_of(RunOptions, "model"), metadata={"help": "alias, hub id, HF folder or .gguf"})
    dataset: str = field(default=default_of(RunOptions, "calib_dataset"), metadata={
        "help": "calibration/validation corpus (wikivital, text:PATH, ...)"})
    nsamples: int = field(default=default_of(RunOptions, "nsamples"), metadata={"help": "calibration windows"})
    seqlen: int = field(default=default_of(RunOptions, "seqlen"), metadata={"help": "tokens per calibration window"})
    seed: int = field(default=default_of(RunOptions, "seed"), metadata={
        "help": "calibration draw, token subsample and sampler seed"})
    x_tokens: int = field(default=128, metadata={"help": "cached input rows per linear (reconstruction proxy)"})
    cache_dir: str = field(default="", metadata={"help": "statistics cache folder (default $CREPE_CACHE/pho)"})
    batch_size: int = field(default=default_of(RunOptions, "batch_size"), metadata={
        "help": "calibration windows per forward batch"})

    def __post_init__(self) -> None:
        if self.nsamples < 1 or self.seqlen < 2 or self.batch_size < 1:
            raise ValueError("need nsamples >= 1, seqlen >= 2 and batch size >= 1")
        if not 0 <= self.x_tokens <= 4096:
            raise ValueError(f"x_tokens must be in [0, 4096] (a small subsample), got {self.x_tokens}")

    @property
    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else cache_root() / "pho"


@dataclass
class Workspace:
    """Loaded model and tokenizer, calibration windows [n, seq], the decoder linears by key (their
    weights are read from the model: in-place pruning shows through) and the cached LayerData."""

    model: nn.Module
    tokenizer: object
    calib: torch.Tensor
    linears: dict[str, LinearTarget]
    data: dict[str, LayerData]
    cache_hit: bool
    bos_per_window: bool
    streamed: bool = False


def add_setup_args(ap: argparse.ArgumentParser) -> None:
    """The :class:`SetupConfig` flags (--model, --dataset, --nsamples, ...) and --offload."""
    g = ap.add_argument_group("model, calibration and statistics cache")
    add_flags(g, SetupConfig)
    g.add_argument("--offload", choices=OFFLOADS, default="none", help="disk: stream the decoder layers from the "
                   "checkpoint's shards, one at a time (the statistics pass and the e2e/e2e_seq trials); auto: "
                   "when the model would not fit in memory (as crepe.prune)")


def setup_from_args(args: argparse.Namespace) -> SetupConfig:
    return from_args(SetupConfig, args)


def open_workspace(cfg: SetupConfig, progress: bool = True, hessian: bool = False, offload: str = "none") -> Workspace:
    """Load ``cfg.model`` (``offload`` as :func:`crepe.models.loading.open_model`: disk streams it) and get
    its statistics (from the cache, or one dense pass then cached); ``hessian``: with every linear's input
    Hessian (a weight update on the one-shot paths needs it)."""
    opened = open_model(cfg.model, None, offload)
    model, tokenizer = opened.model, opened.tokenizer
    target = model_target(model)
    bos = target.adapter.bos_per_window
    calib, spec = calibration_set(tokenizer, cfg.dataset, cfg.nsamples, cfg.seqlen, cfg.seed, bos)
    key = CacheKey(cfg.model, weights_fingerprint(model), cfg.dataset, cfg.nsamples, cfg.seqlen, cfg.seed, bos,
                   cfg.x_tokens, hessian)
    log.info("calibration: %s seed=%d", spec.describe(), cfg.seed)
    data, hit = load_or_collect(model, calib, key, cfg.resolved_cache_dir, cfg.batch_size, progress)
    linears = target.linears
    missing = set(linears) - set(data)
    if missing:
        raise ValueError(f"statistics cache lacks {len(missing)} linears (e.g. {min(missing)}): delete it and rerun")
    return Workspace(model, tokenizer, calib, linears, data, hit, bos, opened.streamed)
