"""Where a prune's CPU time goes: SparseGPT against crepe's default, profiled in one process.

Each row prunes SmolLM2-135M (or ``--model``) through :func:`benchmarks.common.prune` (the
library's own path, the headline's 16 x 512 wikivital calibration) under cProfile, then splits its time into the decoder
layers' forward passes (hooks excluded), the input statistics (the engine's hooks, the dense shift
included), the per-linear solve (mask and weights) and the rest (calibration loading, moving
layers). The solve's share names two of its parts: the ADMM iterations' [out, in] x [in, in]
products (admm-grad) and the Cholesky factorisations and inverses (every update). Each decoder
layer's seconds come from :func:`benchmarks.cost_7b.layer_clock`. Both clocks read process CPU time, as
the cost benchmarks do, so a busy machine slows the wall clock, not the parts. Printed only:
profiling slows every call, so these are shares, not the headline's timings.

    OMP_NUM_THREADS=1 python -m benchmarks.profile_cost --setting 0.5
    OMP_NUM_THREADS=1 python -m benchmarks.profile_cost --setting 2:4 --nsamples 128   # the papers' window count
    OMP_NUM_THREADS=1 python -m benchmarks.profile_cost --setting 0.7 --model /work/scale/llama-2-7b-2layer \\
        --rows "SparseGPT,crepe default in float32 (--admm-grad-products float32 --dense-precision float32)"
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import time

import torch

from benchmarks import common
from benchmarks.cost_7b import layer_clock
from benchmarks.headline_cells import CELLS, DEFAULT_ROW, base_options
from crepe.run.options import RunOptions

ROWS = ("SparseGPT", DEFAULT_ROW)
Where = tuple[tuple[str, str], ...]  # (file suffix, function name); "~" for a built-in, as cProfile keys them
PARTS: dict[str, Where] = {  # part -> the functions whose cumulative time it is
    "layer forwards": (("engine/layerwise.py", "_layer_output"),),
    "statistics": (("engine/statistics.py", "__call__"), ("engine/statistics.py", "finish")),
    "per-linear solve": (("prune/linear.py", "plan_linear"),),
}
SOLVE_PARTS: dict[str, tuple[Where, Where | None]] = {  # part of the solve -> (built-ins, only when called from)
    "ADMM products": ((("~", "<method 'addmm_' of 'torch._C.TensorBase' objects>"),
                       ("~", "<built-in method torch.mm>")),
                      (("methods/gradual.py", "gradual_admm"),)),
    "factorisations": ((("~", "<built-in method torch._C._linalg.linalg_cholesky>"),
                        ("~", "<built-in method torch.cholesky_inverse>")), None),
}


def _matches(key: tuple[str, int, str], where: Where) -> bool:
    path, _, name = key
    return any(path.endswith(suffix) and name == fn for suffix, fn in where)


def cumulative(stats: pstats.Stats, where: Where, callers: Where | None = None) -> float:
    """Summed cumulative seconds of the functions ``where`` names; with ``callers``, only of their
    calls from those functions."""
    total = 0.0
    for key, (_, _, _, ct, called_from) in stats.stats.items():  # type: ignore[attr-defined]
        if not _matches(key, where):
            continue
        total += ct if callers is None else sum(row[3] for caller, row in called_from.items() if _matches(caller, callers))
    return total


def shares(stats: pstats.Stats) -> dict[str, float]:
    """Seconds per part; the statistics run inside the layer forwards, so they are taken out of them.
    The solve's named parts (:data:`SOLVE_PARTS`) are inside "per-linear solve", not added to it."""
    total = stats.total_tt  # type: ignore[attr-defined]
    parts = {name: cumulative(stats, where) for name, where in PARTS.items()}
    parts["layer forwards"] -= parts["statistics"]
    parts["rest"] = total - sum(parts.values())
    inside = {name: cumulative(stats, where, callers) for name, (where, callers) in SOLVE_PARTS.items()}
    return {"total": total, **parts, **inside}


def describe(label: str, parts: dict[str, float], per_layer: list[float]) -> str:
    """One printed line: each part's seconds and share, the solve's named parts, each layer's seconds."""
    def part(name: str) -> str:
        return f"{name} {parts[name]:.1f} s ({parts[name] / parts['total']:.0%})"

    inside = ", ".join(part(name) for name in SOLVE_PARTS)
    main = ", ".join(part(name) + (f" [of which {inside}]" if name == "per-linear solve" else "")
                     for name in (*PARTS, "rest"))
    return (f"{label}: {main}; total {parts['total']:.1f} s; decoder layers "
            + " / ".join(f"{t:.1f}" for t in per_layer) + " s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=RunOptions.model)
    ap.add_argument("--setting", default="0.5")
    ap.add_argument("--nsamples", type=int, default=16, help="calibration windows of 512 tokens")
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated headline row labels, in this order")
    args = ap.parse_args()
    rows = common.chosen(args.rows, CELLS, "--rows")
    logging.basicConfig(level=logging.WARNING)
    torch.set_grad_enabled(False)
    base = base_options(args.model, args.nsamples)
    bench = common.open_bench(base, second_text=False)
    print(f"{common.model_label(args.model)} prune profile at {args.setting}; calibration {base.nsamples} x {base.seqlen} wikivital, "
          f"{torch.get_num_threads()} thread(s); seconds under cProfile and share of the prune", flush=True)
    for label in rows:
        method, prune = CELLS[label]
        opts = common.prune_options(base, method, args.setting, **prune)
        profile = cProfile.Profile(time.process_time)
        with layer_clock(bench.model) as per_layer:
            profile.enable()
            common.prune(bench, opts)
            profile.disable()
        print(describe(label, shares(pstats.Stats(profile)), per_layer), flush=True)


if __name__ == "__main__":
    main()
