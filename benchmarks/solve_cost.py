"""The admm-grad update's solve alone, at several (iterations, mask-choosing iterations): how much of
a prune an iteration count saves, without the forwards and statistics around it.

For each setting, every linear of one decoder layer of ``--model`` (its real weights; the Hessian
X^T X of Gaussian inputs with the calibration's 8,192 tokens and uneven column scales, and a small
dense shift: time only, the values are not a calibration's) is solved by
:func:`crepe.methods.gradual.gradual_admm` with the default's damping and dense target, once per
count and repeat, the counts alternating; each count's time is the process CPU time of its fastest
repeat. Printed only, like ``benchmarks.profile_cost``: it gives the solve's share, the prune's is
docs/quality.md's profile.

    OMP_NUM_THREADS=1 python -m benchmarks.solve_cost --counts 15/11,13/11
    OMP_NUM_THREADS=1 python -m benchmarks.solve_cost --model /work/scale/llama-2-7b-1layer --counts 6/5 --products float32,bfloat16
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import chosen, parse_setting
from crepe.config import PruneConfig
from crepe.methods.gradual import (
    PRODUCT_DTYPES,
    admm_grad_damp_for,
    gradual_admm,
    magnitude_on_scale,
    selecting_iterations,
)
from crepe.models.adapters import get_adapter, weight_view
from crepe.models.loading import load_model

TOKENS = 16 * 512  # the headline's calibration
SETTINGS = ("0.5", "2:4", "0.7")


def parse_count(text: str) -> tuple[int, int]:
    """"15/11" -> (15, 11); "15" -> (15, three quarters of 15)."""
    total, _, choosing = text.partition("/")
    return int(total), int(choosing) if choosing else selecting_iterations(int(total))


def problems(model: torch.nn.Module, layer: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(weight [out, in], Hessian [in, in], dense shift [out, in]) of each linear of decoder layer ``layer``."""
    gen = torch.Generator().manual_seed(seed)
    adapter, out = get_adapter(model), []
    for module in adapter.linears(adapter.layers(model)[layer]).values():
        weight = weight_view(module).detach().float()
        x = torch.randn(TOKENS, weight.shape[1], generator=gen) * torch.rand(weight.shape[1], generator=gen).mul(3)
        out.append((weight, x.t() @ x, 0.01 * weight))
    return out


def solve_seconds(linears, setting: str, iterations: int, choosing: int, products: str = "float32") -> float:
    """Process CPU seconds of one solve of every linear in ``linears`` at ``setting``, its products in
    ``products`` (:data:`~crepe.methods.gradual.PRODUCT_DTYPES`)."""
    sparsity, pattern = parse_setting(setting)
    start = time.process_time()
    for weight, hessian, shift in linears:
        gradual_admm(weight, hessian, magnitude_on_scale, sparsity, pattern, "layer", iterations=iterations,
                     select_iterations=choosing, damp=admm_grad_damp_for(TOKENS), dense_shift=shift,
                     toward_dense=PruneConfig.dense_target, product_dtype=PRODUCT_DTYPES[products])
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--counts", default="15/11,13/11", help="comma-separated ITERATIONS[/CHOOSING]; the first is the reference")
    ap.add_argument("--products", default="float32", help=f"comma-separated product precisions, from {', '.join(PRODUCT_DTYPES)}; "
                    "each runs at every count")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    products = chosen(args.products, PRODUCT_DTYPES, "--products")
    counts = [(*parse_count(c), product) for c in args.counts.split(",") for product in products]
    linears = problems(load_model(args.model)[0], args.layer)
    print(f"{args.model} layer {args.layer}, {len(linears)} linears, {torch.get_num_threads()} thread(s); "
          f"process CPU seconds, fastest of {args.repeats}")
    for setting in args.settings.split(","):
        best = dict.fromkeys(counts, float("inf"))
        for _ in range(args.repeats):
            for c in counts:
                best[c] = min(best[c], solve_seconds(linears, setting, *c))
        reference = best[counts[0]]
        print(f"{setting}: " + "; ".join(f"{i}/{k} {p} {s:.2f} s ({s / reference:.2f}x)" for (i, k, p), s in best.items()))


if __name__ == "__main__":
    main()
