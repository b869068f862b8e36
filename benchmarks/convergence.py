"""How many admm-grad iterations the default's solve needs, per linear: the error on the calibration
text and on a held-out text after each (iterations / mask-choosing iterations, rho).

Real SmolLM2 linears (q, o, gate, down of layers 0, 14 and 29, as ``benchmarks.damping``) are pruned
by :func:`crepe.methods.gradual.gradual_admm` with the default's damping and the Hessian of the 16 x
512 wikivital calibration windows (the dense model's inputs, so no dense shift: this screens the
solver, not the whole prune). Each count's mean relative output error ||(W - W_hat) X||^2 / ||W X||^2
over the linears is printed on the calibration's own inputs and on lm-eval's task cards (the
selection text), with its process CPU seconds. Printed only; whole prunes over calibration draws are
``benchmarks.iteration_draws``.

    OMP_NUM_THREADS=1 python -m benchmarks.convergence --counts 15/11,10/8,6/5 --settings 0.7,2:4
    OMP_NUM_THREADS=1 python -m benchmarks.convergence --counts 6/5 --products float32,bfloat16
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import SELECTION_TEXT, chosen, parse_setting
from benchmarks.solve_cost import parse_count
from benchmarks.tools.reference_check import hessians, output_error
from crepe.data.prepare import calibration_set, eval_set
from crepe.methods.gradual import (
    PRODUCT_DTYPES,
    admm_grad_damp_for,
    gradual_admm,
    magnitude_on_scale,
)
from crepe.run.open import open_model
from crepe.run.options import RunOptions

WINDOWS = 16


def errors(weights: dict[str, torch.Tensor], hs: dict[str, dict[str, torch.Tensor]], setting: str,
           iterations: int, choosing: int, rho: float = 1.0, products: str = "float32") -> tuple[dict[str, float], float]:
    """(text -> mean relative output error over ``weights`` [out, in] pruned with ``hs["calibration"]``,
    process CPU seconds of the solves). ``hs``: text -> linear name -> Hessian [in, in] on that text;
    ``products``: the solve's product precision (:data:`~crepe.methods.gradual.PRODUCT_DTYPES`)."""
    sparsity, pattern = parse_setting(setting)
    totals = dict.fromkeys(hs, 0.0)
    cpu = 0.0
    for name, weight in weights.items():
        start = time.process_time()
        new, _ = gradual_admm(weight, hs["calibration"][name], magnitude_on_scale, sparsity, pattern, "layer",
                              iterations=iterations, select_iterations=choosing, rho=rho,
                              damp=admm_grad_damp_for(WINDOWS * RunOptions.seqlen),
                              product_dtype=PRODUCT_DTYPES[products])
        cpu += time.process_time() - start
        for text in hs:
            totals[text] += output_error(weight, new, hs[text][name]) / len(weights)
    return totals, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="15/11,13/11,10/8,8/6,6/5", help="comma-separated ITERATIONS[/CHOOSING]")
    ap.add_argument("--settings", default="0.7,2:4,0.5")
    ap.add_argument("--rhos", default="1", help="comma-separated ADMM penalties (the default's is 1)")
    ap.add_argument("--products", default="float32", help=f"comma-separated product precisions, from {', '.join(PRODUCT_DTYPES)}")
    args = ap.parse_args()
    products = chosen(args.products, PRODUCT_DTYPES, "--products")
    torch.set_grad_enabled(False)
    opts = RunOptions()
    opened = open_model(opts.model)
    tok = opened.tokenizer
    windows = {"calibration": calibration_set(tok, opts.calib_dataset, WINDOWS, opts.seqlen, opts.seed)[0],
               SELECTION_TEXT: eval_set(tok, SELECTION_TEXT, "test", opts.seqlen, WINDOWS)[0]}
    hs = {text: hessians(opened.model, w) for text, w in windows.items()}
    weights = {name: opened.model.get_submodule(name).weight.detach().float().clone() for name in hs["calibration"]}
    print(f"{len(weights)} SmolLM2 linears, damping {admm_grad_damp_for(WINDOWS * opts.seqlen):g}; mean relative output error "
          f"on each text's inputs ({WINDOWS} x {opts.seqlen}); {torch.get_num_threads()} thread(s)")
    for setting in args.settings.split(","):
        for rho in (float(r) for r in args.rhos.split(",")):
            for count, precision in ((c, p) for c in args.counts.split(",") for p in products):
                iterations, choosing = parse_count(count)
                totals, cpu = errors(weights, hs, setting, iterations, choosing, rho, precision)
                print(f"{setting} {iterations}/{choosing} rho {rho:g} {precision}: "
                      + "  ".join(f"{text} {e:.5f}" for text, e in totals.items()) + f"  CPU {cpu:.1f} s", flush=True)


if __name__ == "__main__":
    main()
