"""Zero-shot accuracy of a model through lm-eval 0.4 (the glue is :mod:`crepe.evaluation.zeroshot`).

    python -m eval.zeroshot --model smollm2-135m --tasks wikivital_describe --json zs.json
    python -m eval.zeroshot --model runs/crepe50 --tasks boolq,rte,hellaswag,winogrande,arc_easy,arc_challenge,openbookqa
    python -m eval.zeroshot --model M --tasks mytask --include-path DIR   # your own task YAMLs

Installed, the same command is ``crepe-eval-zeroshot`` (:mod:`crepe.cli.scripts`); it needs lm-eval
(the ``eval`` extra). ``--model`` takes anything ``crepe.prune --model`` takes, a pruned folder
included. The papers' seven tasks need the Hugging Face hub; offline they fail with one line. ``wikivital_describe``
(shipped, 4-way multiple choice, chance 25%) needs no hub. For a local task of your own, write a
task YAML with ``dataset_path: json`` and ``dataset_kwargs: {data_files: {validation:
/ABSOLUTE/PATH.jsonl}}`` (relative paths resolve against the working directory) and pass its
folder with ``--include-path``.

Models beyond RAM: use lm-eval's own loader on the saved folder, which places the weights with
accelerate, e.g. ``lm_eval --model hf --model_args pretrained=DIR,parallelize=True,max_cpu_memory=20GB,
offload_folder=/tmp/offload --tasks ...``; a pruned folder is a plain HF folder.
"""

from __future__ import annotations

import argparse
import logging

import torch

from crepe.evaluation.zeroshot import (
    ZeroShotConfig,
    evaluate_zeroshot,
    format_table,
    prepared_tasks,
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval.zeroshot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m", help="alias, hub id, HF folder (a pruned one too) or .gguf")
    ap.add_argument("--tasks", required=True, help="comma-separated lm-eval task names")
    ap.add_argument("--include-path", default=None, help="folder of extra task YAMLs")
    ap.add_argument("--limit", type=float, default=None, help="items per task (a fraction when < 1; for quick checks)")
    ap.add_argument("--num-fewshot", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"), help="weights dtype")
    ap.add_argument("--json", default=None, help="write the results JSON here (atomically)")
    ap.add_argument("--log-level", default="WARNING")
    return ap


def main() -> int:
    from crepe.io.console import setup_logging
    from crepe.io.files import check_output_file, write_json_atomic
    from crepe.io.provenance import current_command, provenance
    from crepe.models.loading import load_model

    args = build_parser().parse_args()
    setup_logging(args.log_level)
    level = getattr(logging, args.log_level.upper(), logging.WARNING)
    logging.getLogger("lm_eval").setLevel(max(level, logging.ERROR) if level == logging.WARNING else level)  # its
    # warnings about an in-memory model and default aggregations are expected here, not news
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    cfg = ZeroShotConfig(tasks=ZeroShotConfig.parse_tasks(args.tasks), include_path=args.include_path, limit=args.limit,
                         num_fewshot=args.num_fewshot, batch_size=args.batch_size, device=args.device)
    check_output_file(args.json, "--json")
    with prepared_tasks(cfg) as manager:
        model, tokenizer = load_model(args.model, dtype=getattr(torch, args.dtype))
        result = evaluate_zeroshot(model, tokenizer, cfg, manager)
    result = {"model": args.model, "dtype": args.dtype, **result, "provenance": provenance(current_command(), result["config"])}
    print(format_table(result["rows"]))
    if args.json:
        write_json_atomic(args.json, result)
        print(f"results written to {args.json}")
    return 0
