"""Flags shared by the command-line tools: ``eval.ppl`` takes crepe.prune's evaluation options, named
without their ``eval`` part (--dataset, --split, --seqlen, --max-windows, --dtype, --batch-size)."""

from __future__ import annotations

import argparse

from crepe.cli.fields import add_flags
from crepe.run.options import RunOptions

EVAL_FIELDS = ("eval_dataset", "eval_split", "eval_seqlen", "max_eval_windows", "eval_dtype", "eval_batch_size",
               "bos_per_window")  # the RunOptions fields eval.ppl shares


def add_eval_args(ap: argparse.ArgumentParser) -> None:
    """The evaluation flags of :data:`EVAL_FIELDS`, for a tool that only evaluates: every window by default."""
    add_flags(ap, RunOptions, only=EVAL_FIELDS, rename=lambda name: name.replace("eval_", "").replace("_eval", ""),
              defaults={"max_eval_windows": None})
