"""Figures for the ViT path on the trained MNIST-5k ViT: accuracy vs MACs, fine-tuning, CPU latency.

    OMP_NUM_THREADS=1 python -m benchmarks.vit sweep    --threads 1   # results/vit/sweep.json
    OMP_NUM_THREADS=1 python -m benchmarks.vit latency  --threads 1   # results/vit/latency.json
    python -m benchmarks.vit tables                                   # tables.md + accuracy_vs_macs.png

Train the model first with ``benchmarks.tools.train_vit``. Every number in docs/vit.md comes from these JSONs.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.common import Table
from crepe.io.files import read_json, write_json_atomic
from crepe.io.provenance import current_command, markdown_stamp, provenance
from crepe.vit.config import HeadPruneConfig, TCSConfig, ViTPruneConfig
from crepe.vit.train import default_model_dir

TABLES = [Table("results/vit/tables.md", ("OMP_NUM_THREADS=1 python -m benchmarks.vit sweep --threads 1",
                                       "OMP_NUM_THREADS=1 python -m benchmarks.vit latency --threads 1"),
                covers=("results/vit/sweep.json", "results/vit/latency.json", "results/vit/*.png",
                        "results/vit/cli.json"))]  # cli.json: `python -m crepe.vit ... --report`, docs/vit.md

TCS_RATIOS = (0.25, 0.5, 0.75, 0.9)
HEAD_SPARSITIES = (0.25, 0.5, 0.75, 0.875)


def sweep_points() -> list[tuple[str, ViTPruneConfig]]:
    """(family, config) for every point of the curve; TCS on fc2 of blocks 1.. (per batch)."""
    pts = [("dense", ViTPruneConfig())]
    pts += [("tcs", ViTPruneConfig(tcs=TCSConfig(fc2_ratios=(r,)))) for r in TCS_RATIOS]
    pts += [("heads", ViTPruneConfig(HeadPruneConfig(s))) for s in HEAD_SPARSITIES]
    pts += [("both", ViTPruneConfig(HeadPruneConfig(s), TCSConfig(fc2_ratios=(r,))))
            for s, r in zip(HEAD_SPARSITIES, TCS_RATIOS)]
    pts += [("whole-heads", ViTPruneConfig(HeadPruneConfig(s, mode="head"))) for s in (0.25, 0.5, 0.75)]
    return pts


LATENCY_POINTS = ((0.5, 0.5), (0.875, 0.9))


def planned(argv: list[str]) -> dict[str, dict]:
    """``FILE#INDEX:FAMILY`` -> {command, config it resolves to now} of every point this command measures."""
    args = build_parser().parse_args(argv)
    if args.command == "sweep":
        return {f"{args.out / 'sweep.json'}#{i}:{family}": {"command": None, "config": cfg.to_dict()}
                for i, (family, cfg) in enumerate(sweep_points())}
    if args.command == "latency":
        return {f"{args.out / 'latency.json'}#{i}": {"command": None, "config": ViTPruneConfig(
            HeadPruneConfig(s), TCSConfig(fc2_ratios=(r,))).to_dict()} for i, (s, r) in enumerate(LATENCY_POINTS)}
    return {}


def recorded(argv: list[str]) -> dict[str, dict]:
    args = build_parser().parse_args(argv)
    path = args.out / f"{args.command}.json"
    if args.command == "tables" or not path.is_file():
        return {}
    rec = read_json(path)
    command = rec.get("provenance", {}).get("argv")
    if args.command == "sweep":
        return {f"{path}#{i}:{row['family']}": {"command": command, "config": row["config"]}
                for i, row in enumerate(rec["rows"])}
    return {f"{path}#{i}": {"command": command, "config": c["config"]} for i, c in enumerate(rec["configs"])}


def stamp(args: argparse.Namespace, command: str) -> dict:
    argv = current_command()
    return provenance(argv, {"points": {k: v["config"] for k, v in planned(sys.argv[1:]).items()},
                             "threads": args.threads, "eval_batch": args.eval_batch, "repeats": args.repeats,
                             "finetune": {"epochs": args.finetune_epochs, "at": args.finetune_at}})


def run_sweep(args: argparse.Namespace) -> None:
    from crepe.vit.data import mnist_split
    from crepe.vit.prune_vit import apply_pruning, finetune, versions
    from crepe.vit.surgery import load_pruned
    from crepe.vit.train import accuracy

    data, base = mnist_split(), load_pruned(args.model)
    rows, path = [], args.out / "sweep.json"
    for family, cfg in sweep_points():
        t0 = time.perf_counter()
        model = copy.deepcopy(base)
        handle, rep = apply_pruning(model, cfg, dense=True)  # repacked heads: equal outputs, faster
        row = {"family": family, "config": cfg.to_dict(), "macs": rep["macs_after"], "macs_dense": rep["macs_before"],
               "accuracy": accuracy(model, data["test_x"], data["test_y"], args.eval_batch)}
        if cfg.tcs.active:
            per_image = copy.deepcopy(base)
            apply_pruning(per_image, replace(cfg, tcs=replace(cfg.tcs, selection="image")), dense=True)
            row["accuracy_per_image"] = accuracy(per_image, data["test_x"], data["test_y"], args.eval_batch)
        # the dense model gets the same fine-tune as a control: it is under-trained, so extra epochs help it too
        fine = family == "dense" or family in ("tcs", "heads", "both") and (
            cfg.heads.sparsity in args.finetune_at or any(r in args.finetune_at for r in cfg.tcs.fc2_ratios))
        if fine:
            handle.reseed()
            row["finetune_epochs"] = args.finetune_epochs
            row["finetune_losses"] = finetune(model, handle, data["train_x"], data["train_y"], args.finetune_epochs)
            row["accuracy_finetuned"] = accuracy(model, data["test_x"], data["test_y"], args.eval_batch)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(f"{family:12s} {row['macs'] / 1e6:7.2f} MMACs  acc {row['accuracy']:.4f}"
              + (f"  fine-tuned {row['accuracy_finetuned']:.4f}" if fine else ""), flush=True)
        write_json_atomic(path, {"model": str(args.model), "eval_batch": args.eval_batch,
                                 "test_images": len(data["test_y"]), "threads": torch.get_num_threads(),
                                 "versions": versions(), "rows": rows, "provenance": stamp(args, "sweep")})
    print(f"wrote {path}")


def run_latency(args: argparse.Namespace) -> None:
    from crepe.vit.bench import latency_table
    from crepe.vit.prune_vit import versions
    from crepe.vit.surgery import load_pruned

    base = load_pruned(args.model)
    out = {"model": str(args.model), "threads": torch.get_num_threads(), "versions": versions(), "configs": []}
    for s, r in LATENCY_POINTS:
        cfg = ViTPruneConfig(HeadPruneConfig(s), TCSConfig(fc2_ratios=(r,)))
        rows = latency_table(base, cfg, (1, 8, 32), repeats=args.repeats)
        out["configs"].append({"head_sparsity": s, "fc2_ratio": r, "config": cfg.to_dict(), "rows": rows})
        for row in rows:
            print(f"heads {s} tcs {r} batch {row['batch']:>2}: dense {row['dense']['median_ms']:.2f} ms  "
                  f"masked x{row['masked_over_dense']:.2f}  repacked x{row['repacked_over_dense']:.2f}", flush=True)
    write_json_atomic(args.out / "latency.json", {**out, "provenance": stamp(args, "latency")})
    print(f"wrote {args.out / 'latency.json'}")


def _label(row: dict) -> str:
    h, t = row["config"]["heads"], row["config"]["tcs"]
    parts = [f"heads {h['sparsity']:g}" + (" (whole)" if h["mode"] == "head" else "")] if h["sparsity"] else []
    parts += [f"fc2 TCS {t['fc2_ratios'][0]:g}"] if t["fc2_ratios"] else []
    return " + ".join(parts) or "dense"


def run_tables(args: argparse.Namespace) -> None:
    sweep = json.loads((args.out / "sweep.json").read_text())
    lines = [f"Accuracy on the MNIST-5k test split ({sweep['test_images']} images, eval batch "
             f"{sweep['eval_batch']}); MACs per image from the analytic counter.", "",
             "| family | setting | MMACs | MACs vs dense | acc (per-batch TCS) | acc (per-image TCS) "
             "| acc after fine-tune |",
             "|---|---|---|---|---|---|---|"]
    for r in sweep["rows"]:
        ft = f"{r['accuracy_finetuned']:.4f} ({r['finetune_epochs']} ep)" if "accuracy_finetuned" in r else "–"
        pi = f"{r['accuracy_per_image']:.4f}" if "accuracy_per_image" in r else "–"
        lines.append(f"| {r['family']} | {_label(r)} | {r['macs'] / 1e6:.2f} | {r['macs'] / r['macs_dense']:.3f} | "
                     f"{r['accuracy']:.4f} | {pi} | {ft} |")
    lat_path = args.out / "latency.json"
    if lat_path.exists():
        lat = json.loads(lat_path.read_text())
        lines += ["", f"CPU latency, median of timed forwards, {lat['threads']} thread(s), eager attention.", "",
                  "| heads + fc2 TCS | batch | dense ms | masked ms | repacked ms | masked / dense "
                  "| repacked / dense |",
                  "|---|---|---|---|---|---|---|"]
        for c in lat["configs"]:
            for row in c["rows"]:
                lines.append(f"| {c['head_sparsity']:g} + {c['fc2_ratio']:g} | {row['batch']} | "
                             f"{row['dense']['median_ms']:.2f} | {row['masked']['median_ms']:.2f} | "
                             f"{row['repacked']['median_ms']:.2f} | {row['masked_over_dense']:.2f} | "
                             f"{row['repacked_over_dense']:.2f} |")
    sources = {name: read_json(args.out / f"{name}.json").get("provenance", {}).get("config_sha256")
               for name in ("sweep", "latency") if (args.out / f"{name}.json").exists()}
    line = markdown_stamp(provenance(current_command(), {"sources_config_sha256": sources}))
    (args.out / "tables.md").write_text(line + "\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(sweep["rows"], args.out / "accuracy_vs_macs.png")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, fam in enumerate(("tcs", "heads", "both", "whole-heads")):
        pts = sorted((r for r in rows if r["family"] == fam), key=lambda r: r["macs"])
        if not pts:
            continue
        color = f"C{i}"
        ax.plot([r["macs"] / 1e6 for r in pts], [100 * r["accuracy"] for r in pts], "o-", color=color,
                label=f"{fam}, training-free")
        ft = [r for r in pts if "accuracy_finetuned" in r]
        if ft:
            ax.plot([r["macs"] / 1e6 for r in ft], [100 * r["accuracy_finetuned"] for r in ft], "s--",
                    color=color, mfc="none", label=f"{fam}, fine-tuned ({ft[0]['finetune_epochs']} ep)")
    dense = next(r for r in rows if r["family"] == "dense")
    ax.plot([dense["macs"] / 1e6], [100 * dense["accuracy"]], "k*", ms=12, label="dense")
    if "accuracy_finetuned" in dense:
        ax.plot([dense["macs"] / 1e6], [100 * dense["accuracy_finetuned"]], "k*", ms=12, mfc="none",
                label="dense, same fine-tune (control)")
    ax.set_xlabel("MMACs per image")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("ToaSt on a small ViT, MNIST-5k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("sweep", "latency", "tables"))
    p.add_argument("--model", type=Path, default=default_model_dir())
    p.add_argument("--out", type=Path, default=Path("results/vit"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-batch", type=int, default=250)
    p.add_argument("--finetune-epochs", type=int, default=2)
    p.add_argument("--finetune-at", type=float, nargs="*", default=[0.75, 0.875, 0.9],
                   help="fine-tune the tcs/heads/both points with these ratios")
    p.add_argument("--repeats", type=int, default=30)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    args.out.mkdir(parents=True, exist_ok=True)
    {"sweep": run_sweep, "latency": run_latency, "tables": run_tables}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
