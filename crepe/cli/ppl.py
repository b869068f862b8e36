"""Perplexity with the papers' protocol: join the texts with "\\n\\n", tokenise once, cut into
non-overlapping windows of --seqlen (remainder dropped), PPL = exp(mean window NLL).

    python -m eval.ppl --model smollm2-135m --dataset wikivital --seqlen 512 [--max-windows K] [--json out.json]

--model takes an alias, a hub id, a .gguf file or a (pruned) model folder. Installed, the same
command is ``crepe-eval-ppl`` (:mod:`crepe.cli.scripts`).
"""

from __future__ import annotations

import argparse
import logging
import time

from crepe.cli.common import add_eval_args
from crepe.data.prepare import check_data, eval_set
from crepe.engine.device import check_device
from crepe.evaluation.perplexity import describe_eval, evaluate_ppl
from crepe.io.console import setup_logging
from crepe.io.environment import peak_rss_mb, versions
from crepe.io.files import check_output_file, write_json_atomic
from crepe.methods.params import check_at_least
from crepe.models.adapters import bos_per_window
from crepe.models.loading import OFFLOADS, load_dispatched
from crepe.run.open import open_model

log = logging.getLogger("eval.ppl")


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.ppl", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    add_eval_args(ap)
    ap.add_argument("--device", default=None, help="e.g. cuda: layers move there one at a time (default: CPU)")
    ap.add_argument("--device-map", default=None,
                    help="e.g. auto: let accelerate spread the model over the GPUs (and CPU) and run its forward")
    ap.add_argument("--model-dtype", default="auto", choices=("auto", "bfloat16", "float16", "float32"),
                    help="weight dtype (auto: the checkpoint's own)")
    ap.add_argument("--offload", default="auto", choices=OFFLOADS,
                    help="disk: stream decoder layers from the checkpoint (auto: when the weights exceed half the RAM)")
    ap.add_argument("--json", default=None, help="write the result and protocol to this JSON file")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args()
    setup_logging(args.log_level)
    if args.dataset == "none":
        raise ValueError("--dataset none leaves nothing to evaluate")
    check_at_least(1, "--", batch_size=args.batch_size, max_windows=args.max_windows)
    check_at_least(2, "--", seqlen=args.seqlen)
    check_output_file(args.json, "--json")
    check_data(args.dataset, args.split)
    check_device(args.device)
    if args.device_map:
        model, tokenizer = load_dispatched(args.model, args.device_map, args.model_dtype)
    else:
        opened = open_model(args.model, args.model_dtype, args.offload, args.device)
        model, tokenizer = opened.model, opened.tokenizer
    windows, spec = eval_set(tokenizer, args.dataset, args.split, args.seqlen, args.max_windows,
                             bos_per_window(args.bos_per_window, model))
    start = time.perf_counter()
    ppl, how = evaluate_ppl(model, windows, args.batch_size, args.dtype, args.device)
    seconds = time.perf_counter() - start
    print(f"PPL {ppl:.3f}  [model={args.model} {spec.describe()} {describe_eval(how, args.dtype, args.device)}]")
    if args.json:
        write_json_atomic(args.json, {"model": args.model, "ppl": ppl, "protocol": spec.describe(), "dtype": args.dtype,
                                      "eval_seconds": seconds, "peak_rss_mb": peak_rss_mb(), "versions": versions()})
    return 0
