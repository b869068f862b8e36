"""CLI: prune a transformers ViT/DeiT folder with ToaSt heads + TCS and report MACs, accuracy, latency.

    python -m crepe.vit --model ~/.cache/crepe/vit-mnist --head-sparsity 0.5 --fc2-ratios 0.5 \
        --dense --report results/vit/cli.json --threads 1

Accuracy is measured on the MNIST-5k test split when the model takes 28x28 one-channel images.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from crepe.io.files import check_output_file, writable_parent, write_json_atomic
from crepe.vit.config import (
    HEAD_MODES,
    HEAD_SCORES,
    SCALES,
    SELECTIONS,
    HeadPruneConfig,
    TCSConfig,
    ViTPruneConfig,
)

log = logging.getLogger("crepe.vit")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m crepe.vit", description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="transformers ViT/DeiT folder")
    p.add_argument("--head-sparsity", type=float, default=0.0, help="fraction of each head's dims removed")
    p.add_argument("--head-score", choices=HEAD_SCORES, default="median")
    p.add_argument("--head-mode", choices=HEAD_MODES, default="dim", help="'head' removes whole heads")
    p.add_argument("--scale", choices=SCALES, default="original", help="attention scale after repacking")
    p.add_argument("--fc2-ratios", type=float, nargs="*", default=[], help="TCS drop ratio per block (or one)")
    p.add_argument("--fc1-ratios", type=float, nargs="*", default=[], help="fc1-input TCS (off by default)")
    p.add_argument("--selection", choices=SELECTIONS, default="batch")
    p.add_argument("--sample-ratio", type=float, default=0.02)
    p.add_argument("--cls-weight", type=float, default=2.0)
    p.add_argument("--skip-blocks", type=int, nargs="*", default=[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dense", action="store_true", help="evaluate/save the repacked model with gathered TCS")
    p.add_argument("--finetune-epochs", type=int, default=0)
    p.add_argument("--eval-batch", type=int, default=250)
    p.add_argument("--latency-batches", type=int, nargs="*", default=[1, 8, 32])
    p.add_argument("--threads", type=int, default=1, help="torch threads (fixed, printed)")
    p.add_argument("--save", type=Path, default=None, help="write the pruned model folder here")
    p.add_argument("--report", type=Path, default=None, help="write a JSON report here")
    return p.parse_args(argv)


def config_from_args(a: argparse.Namespace) -> ViTPruneConfig:
    skip = tuple(a.skip_blocks)
    return ViTPruneConfig(
        HeadPruneConfig(a.head_sparsity, a.head_score, a.head_mode, skip, a.scale),
        TCSConfig(tuple(a.fc2_ratios), tuple(a.fc1_ratios), a.cls_weight, a.sample_ratio, a.selection,
                  "dense" if a.dense else "masked", skip, a.seed),
        a.finetune_epochs,
    )


def check_paths(args: argparse.Namespace) -> None:
    """The model folder exists; --save and --report can be written (checked before any work)."""
    if not args.model.is_dir():
        raise ValueError(f"--model {args.model} is not a model folder")
    check_output_file(args.report, "--report")
    if args.save is not None:
        if args.save.exists() and not args.save.is_dir():
            raise ValueError(f"--save target {args.save} exists and is not a folder")
        writable_parent(args.save, "--save folder")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_from_args(args)
        check_paths(args)
    except ValueError as err:
        print(f"crepe.vit: error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")

    from crepe.vit.bench import latency_table
    from crepe.vit.prune_vit import apply_pruning, finetune, versions
    from crepe.vit.surgery import load_pruned, save_pruned
    from crepe.vit.train import accuracy

    model = load_pruned(args.model)
    data = None
    if model.config.image_size == 28 and model.config.num_channels == 1:
        from crepe.vit.data import mnist_split

        data = mnist_split()
    acc_before = accuracy(model, data["test_x"], data["test_y"], args.eval_batch) if data else None
    pruned = load_pruned(args.model)
    handle, report = apply_pruning(pruned, cfg, dense=args.dense)
    acc_after = accuracy(pruned, data["test_x"], data["test_y"], args.eval_batch) if data else None
    if cfg.finetune_epochs and data:
        report["finetune_losses"] = finetune(pruned, handle, data["train_x"], data["train_y"], cfg.finetune_epochs)
        report["accuracy_finetuned"] = accuracy(pruned, data["test_x"], data["test_y"], args.eval_batch)
    latency = latency_table(model, cfg, tuple(args.latency_batches)) if args.latency_batches else []

    print(f"MACs/image: {report['macs_before'] / 1e6:.2f} M -> {report['macs_after'] / 1e6:.2f} M "
          f"({report['macs_after'] / report['macs_before']:.3f}x)")
    if data:
        print(f"accuracy (MNIST-5k test, {len(data['test_y'])} images, eval batch {args.eval_batch}): "
              f"{acc_before:.4f} -> {acc_after:.4f}")
        if "accuracy_finetuned" in report:
            print(f"accuracy after {cfg.finetune_epochs} fine-tune epochs: {report['accuracy_finetuned']:.4f}")
    for row in latency:
        print(f"latency batch {row['batch']:>3}: dense {row['dense']['median_ms']:.2f} ms, "
              f"masked {row['masked']['median_ms']:.2f} ms (x{row['masked_over_dense']:.2f}), "
              f"repacked {row['repacked']['median_ms']:.2f} ms (x{row['repacked_over_dense']:.2f})")
    report.update({"model": str(args.model), "accuracy_before": acc_before, "accuracy_after": acc_after,
                   "eval_batch": args.eval_batch, "latency": latency, "threads": torch.get_num_threads(),
                   "versions": versions()})
    if args.save:
        handle.remove()
        save_pruned(pruned, args.save)
        print(f"saved {args.save}")
    if args.report:
        write_json_atomic(args.report, report)
        print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    from crepe.io.console import run_cli

    run_cli("crepe.vit", main)
