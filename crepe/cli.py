"""Pieces shared by the command-line tools: logging setup, one-line errors, evaluation flags."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

import torch

from crepe.models.adapters import get_adapter


def setup_logging(level: str = "INFO") -> None:
    """Configure root logging for a CLI run (library modules never do this)."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("transformers").setLevel(logging.ERROR)


def run_cli(prog: str, main: Callable[[], int | None]) -> None:
    """Run ``main``; bad input (ValueError, FileNotFoundError) becomes one line on stderr and exit 2."""
    try:
        code = main()
    except (ValueError, FileNotFoundError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


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


def bos_per_window(choice: str, model) -> bool:
    if choice == "auto":
        return get_adapter(model).bos_per_window
    return choice == "yes"


def check_device(device: str | None) -> None:
    """One clear line for a device this machine does not have."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available on this machine (torch.cuda.is_available() is False)")
