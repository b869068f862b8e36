"""The headline table as a picture: each method's PPL over SparseGPT's, per setting, on the
calibration's text and on the texts calibration never saw (``python -m benchmarks.headline --table``
writes it beside each table that has a SparseGPT row)."""

from __future__ import annotations

import json
from pathlib import Path

from crepe.io.files import atomic_path

Ratios = dict[str, dict[str, tuple[float, float]]]
"""Row label -> setting label -> (calibration-text PPL, unseen-mean PPL), each over SparseGPT's."""

DESCRIPTION = "Description"  # the PNG text key that carries the drawn ratios
TICKS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 5, 7, 10, 20)


def draw(ratios: Ratios, settings: list[str], title: str, path: Path, highlight: str = "") -> None:
    """Two panels of grouped bars from 1 (SparseGPT) to each ratio, log scale: the calibration text and
    the unseen mean.
    ``settings`` gives the x order; a row without a setting leaves its bar out; ``highlight`` is drawn
    with a black edge. Written atomically as a PNG without a timestamp that carries ``ratios`` as JSON
    in its "Description" text (:func:`drawn_ratios`), so a test can tell it from its records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    width = 0.8 / max(len(ratios), 1)
    for panel, (ax, name) in enumerate(zip(axes, ("calibration's text (wikivital test)",
                                                  "texts calibration never saw (geometric mean)"))):
        for i, (label, by_setting) in enumerate(ratios.items()):
            xs = [k + (i - (len(ratios) - 1) / 2) * width for k, s in enumerate(settings) if s in by_setting]
            ys = [by_setting[s][panel] for s in settings if s in by_setting]
            ax.bar(xs, [y - 1 for y in ys], width, bottom=1.0, label=label, color=f"C{i}",
                   edgecolor="black" if label == highlight else "none", linewidth=1.2)
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(FixedLocator(TICKS))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(range(len(settings)), settings)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3, which="both")
    axes[0].set_ylabel("PPL / SparseGPT's PPL (lower is better)")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None, DESCRIPTION: json.dumps(ratios)})
    plt.close(fig)


def drawn_ratios(path: Path) -> Ratios:
    """The ratios a figure written by :func:`draw` was drawn from (JSON lists come back as lists)."""
    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.text[DESCRIPTION])
