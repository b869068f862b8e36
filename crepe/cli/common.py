"""Flags shared by the command-line tools (the evaluation group of crepe.prune and eval.ppl)."""

from __future__ import annotations

import argparse


def add_eval_args(ap: argparse.ArgumentParser, prefix: str = "") -> None:
    """Evaluation flags. With ``prefix="eval-"``: --eval-dataset, --eval-seqlen, ... (crepe.prune)."""
    p = f"--{prefix}"
    ap.add_argument(f"{p}dataset", default="wikivital",
                    help="wikivital (offline), wikitext2, c4, text:PATH or jsonl:PATH; 'none' skips evaluation")
    ap.add_argument(f"{p}split", default="test", help="calibration | validation | test (default: test)")
    ap.add_argument(f"{p}seqlen", type=int, default=512, help="tokens per window (papers: 2048 or the context)")
    ap.add_argument(f"--max-{prefix}windows", type=int, default=None,
                    help="evaluate only the first K windows (default: all; state it next to any figure)")
    ap.add_argument(f"{p}dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                    help="autocast dtype of the evaluation forward passes")
    ap.add_argument(f"{p}batch-size", type=int, default=4)
    ap.add_argument("--bos-per-window", choices=("auto", "yes", "no"), default="auto",
                    help="prepend BOS to every window; auto = the architecture's default (Gemma: yes)")
