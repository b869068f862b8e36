"""Where a prune's CPU time goes: SparseGPT against crepe's default, profiled in one process.

Each row prunes SmolLM2-135M (or ``--model``) through :func:`benchmarks.common.prune` (the
library's own path, the headline's 16 x 512 wikivital calibration) under cProfile, then splits its time into the decoder
layers' forward passes (hooks excluded), the input statistics (the engine's hooks, the dense shift
included), the per-linear solve (mask and weights) and the rest (calibration loading, moving
layers). Printed only: profiling slows every call, so these are shares, not the headline's timings.

    OMP_NUM_THREADS=1 python -m benchmarks.profile_cost --setting 0.5
    OMP_NUM_THREADS=1 python -m benchmarks.profile_cost --setting 2:4 --nsamples 128   # the papers' window count
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats

import torch

from benchmarks import common
from benchmarks.headline_cells import CELLS, base_options
from crepe.run.options import RunOptions

ROWS = ("SparseGPT", "crepe default (--update admm-grad)")
PARTS = {  # part -> the functions whose cumulative time it is (file suffix, function name)
    "layer forwards": (("engine/layerwise.py", "_layer_output"),),
    "statistics": (("engine/statistics.py", "__call__"), ("engine/statistics.py", "finish")),
    "per-linear solve": (("prune/linear.py", "plan_linear"),),
}


def cumulative(stats: pstats.Stats, where: tuple[tuple[str, str], ...]) -> float:
    """Summed cumulative seconds of the functions ``where`` names."""
    return sum(row[3] for (path, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
               if any(path.endswith(suffix) and name == fn for suffix, fn in where))


def shares(stats: pstats.Stats) -> dict[str, float]:
    """Seconds per part; the statistics run inside the layer forwards, so they are taken out of them."""
    total = stats.total_tt  # type: ignore[attr-defined]
    parts = {name: cumulative(stats, where) for name, where in PARTS.items()}
    parts["layer forwards"] -= parts["statistics"]
    parts["rest"] = total - sum(parts.values())
    return {"total": total, **parts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=RunOptions.model)
    ap.add_argument("--setting", default="0.5")
    ap.add_argument("--nsamples", type=int, default=16, help="calibration windows of 512 tokens")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_grad_enabled(False)
    base = base_options(args.model, args.nsamples)
    bench = common.open_bench(base, second_text=False)
    print(f"{common.model_label(args.model)} prune profile at {args.setting}; calibration {base.nsamples} x {base.seqlen} wikivital, "
          f"{torch.get_num_threads()} thread(s); seconds under cProfile and share of the prune")
    for label in ROWS:
        method, prune = CELLS[label]
        opts = common.prune_options(base, method, args.setting, **prune)
        profile = cProfile.Profile()
        profile.enable()
        common.prune(bench, opts)
        profile.disable()
        parts = shares(pstats.Stats(profile))
        print(f"{label}: " + ", ".join(f"{name} {sec:.1f} s ({sec / parts['total']:.0%})"
                                       for name, sec in parts.items() if name != "total")
              + f"; total {parts['total']:.1f} s")


if __name__ == "__main__":
    main()
