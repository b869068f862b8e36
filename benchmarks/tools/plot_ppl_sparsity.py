"""Plot perplexity against sparsity per method (log scale) from the methods-bench reports.

    python -m benchmarks.tools.plot_ppl_sparsity      # results/bench_methods/*.json -> results/plots/ppl_vs_sparsity.png

Unstructured cells (0.5, 0.6, 0.7) are lines; N:M cells (2:4, 4:8, both 50%) are open markers drawn
just left of 0.5, since they are a different constraint at the same sparsity. The dense PPL is a
horizontal line. The protocol (model, eval windows) is taken from the reports and printed under
the title, and the figure is written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKERS = {"2:4": ("s", -0.012), "4:8": ("^", -0.024)}  # marker, x offset so the 50% points do not hide each other


def read_cells(folder: Path) -> tuple[dict[str, dict[str, float]], dict]:
    """{method: {setting: ppl}} over the reports in ``folder`` (setting "0.5" or "2:4"), plus one report."""
    cells: dict[str, dict[str, float]] = defaultdict(dict)
    sample: dict = {}
    for path in sorted(folder.glob("*.json")):
        report = json.loads(path.read_text())
        cfg = report.get("config") or {}
        if report.get("ppl_pruned") is None or "method" not in cfg:
            continue
        setting = cfg["pattern"] if cfg.get("pattern", "unstructured") != "unstructured" else f"{cfg['sparsity']:g}"
        cells[cfg["method"]][setting] = float(report["ppl_pruned"])
        sample = sample or report
        if report.get("ppl_dense"):
            sample = {**sample, "ppl_dense": report["ppl_dense"]}
    if not cells:
        raise ValueError(f"no bench reports with a pruned PPL in {folder}")
    return dict(cells), sample


def plot(cells: dict[str, dict[str, float]], sample: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crepe.io.files import write_atomic

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (method, row) in enumerate(sorted(cells.items())):
        color = f"C{i}"
        levels = sorted((float(s), p) for s, p in row.items() if ":" not in s)
        if levels:
            ax.plot([s for s, _ in levels], [p for _, p in levels], "o-", color=color, label=method)
        for setting, (marker, dx) in MARKERS.items():
            if setting in row:
                n, m = (int(v) for v in setting.split(":"))
                ax.plot([n / m + dx], [row[setting]], marker, color=color, markerfacecolor="none", markersize=8)
    if sample.get("ppl_dense"):
        ax.axhline(sample["ppl_dense"], color="grey", linestyle="--", linewidth=1, label=f"dense ({sample['ppl_dense']:.2f})")
    for setting, (marker, _) in MARKERS.items():
        ax.plot([], [], marker, color="black", markerfacecolor="none", label=f"{setting} (50%, drawn left of 0.5)")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity of the decoder linears")
    ax.set_ylabel("perplexity (log scale)")
    ax.set_title(f"{sample.get('model')}: perplexity against sparsity", fontsize=11)
    ax.text(0.0, -0.2, f"eval: {sample.get('eval_protocol')}", transform=ax.transAxes, fontsize=6, color="grey")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", default=str(ROOT / "results" / "bench_methods"))
    ap.add_argument("--out", default=str(ROOT / "results" / "plots" / "ppl_vs_sparsity.png"))
    args = ap.parse_args()
    try:
        cells, sample = read_cells(Path(args.reports))
    except (OSError, ValueError) as exc:
        print(f"plot_ppl_sparsity: error: {exc}", file=sys.stderr)
        return 2
    plot(cells, sample, Path(args.out))
    print(f"wrote {args.out} ({sum(len(r) for r in cells.values())} cells, {len(cells)} methods)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
