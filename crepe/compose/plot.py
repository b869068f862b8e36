"""Per-layer sparsity bars (one group of bars per decoder block) from run report JSONs.

    python -m crepe.compose.plot results/compose/bench/ria__0.7__owl.json \\
        results/compose/bench/ria__0.7__alpha.json --out results/compose/sparsity_0.7.png

Each report's ``per_layer_sparsity`` (``layers.<i>.<name>`` -> realised sparsity) is reduced to the
mean over the linears of each block; reports are drawn side by side, labelled by their allocation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crepe.io.files import read_json


def block_means(per_layer: dict[str, float]) -> list[float]:
    """Mean sparsity of each block ``layers.<i>``, in block order: {key: s} -> [blocks]."""
    blocks: dict[int, list[float]] = {}
    for key, value in per_layer.items():
        blocks.setdefault(int(key.split(".")[1]), []).append(value)
    return [sum(v) / len(v) for _, v in sorted(blocks.items())]


def label(report: dict, path: Path) -> str:
    """'ria 4:8 owl +perm +dsnot' from the report's config (the file name without one)."""
    cfg = report.get("config", {})
    if not cfg:
        return path.stem
    pattern = cfg.get("pattern", "unstructured")
    setting = pattern if pattern != "unstructured" else f"{cfg.get('sparsity', 0):g}"
    extras = [" +perm" if cfg.get("permute") else "", " +dsnot" if cfg.get("repruning") else ""]
    return f"{cfg.get('method', '?')} {setting} {cfg.get('allocation', {}).get('method', 'uniform')}{''.join(extras)}"


def plot_reports(paths: list[Path], out: Path) -> Path:
    """Write a bar chart of block sparsity for each report to ``out`` (PNG/PDF/SVG by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = [read_json(p) for p in paths]
    for path, rep in zip(paths, reports):
        if "per_layer_sparsity" not in rep:
            raise ValueError(f"{path} has no per_layer_sparsity (not a crepe run report)")
    series = [block_means(rep["per_layer_sparsity"]) for rep in reports]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.12 * len(series[0]) * len(series))), 3.2))
    for k, (values, rep, path) in enumerate(zip(series, reports, paths)):
        ax.bar([i + k * width for i in range(len(values))], values, width, label=label(rep, path))
    ax.set_xlabel("decoder block")
    ax.set_ylabel("sparsity")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main() -> None:
    from crepe.io.console import run_cli

    def _main() -> int:
        ap = argparse.ArgumentParser(prog="python -m crepe.compose.plot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("reports", nargs="+", type=Path)
        ap.add_argument("--out", type=Path, required=True)
        args = ap.parse_args()
        print(f"wrote {plot_reports(args.reports, args.out)}")
        return 0

    run_cli("crepe.compose.plot", _main)


if __name__ == "__main__":
    main()
