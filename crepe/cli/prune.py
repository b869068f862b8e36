"""Prune a causal LM layer by layer and report perplexity before and after.

    python -m crepe.prune --model smollm2-135m --sparsity 0.5
    python -m crepe.prune --model smollm2-135m --pattern 2:4 --method ria --save runs/ria24
    python -m crepe.prune --model meta-llama/Llama-2-7b-hf --nsamples 128 --seqlen 2048 \\
        --calib-dataset c4 --eval-dataset wikitext2 --eval-seqlen 2048 --device cuda

Defaults are sized for a 2-core CPU (16 calibration windows of 512 tokens, 40 eval windows);
the papers' setting is one flag away: --nsamples 128 --seqlen 2048 --calib-dataset c4.
CRePE hyperparameters come from defaults < --config FILE.json < explicit flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

import torch

from crepe.cli.common import add_eval_args
from crepe.config import (
    UPDATES,
    AllocationConfig,
    PermuteConfig,
    PruneConfig,
    RepruneConfig,
    load_crepe_params,
)
from crepe.evaluation.zeroshot import ZeroShotConfig
from crepe.io.console import run_cli, setup_logging
from crepe.io.provenance import current_command
from crepe.methods.params import NBR_FORMS, PADDINGS, TERM_SCALES, CrepeParams, Pattern
from crepe.methods.registry import method_names
from crepe.models.loading import OFFLOADS
from crepe.output.recipe import with_recipe
from crepe.run.job import run
from crepe.run.options import RunOptions

log = logging.getLogger("crepe.prune")
CREPE_FLAGS = {"alpha": float, "beta": float, "gamma": float, "kernel": int, "act_power": float}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m crepe.prune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m", help="alias (smollm2-135m, llama-2-7b, ...), hub id, folder or .gguf")
    ap.add_argument("--method", default="crepe", help=f"one of {', '.join(method_names())} (default crepe)")
    ap.add_argument("--sparsity", type=float, default=None, help="fraction to prune, in [0, 1) (default 0.5, or N/M)")
    ap.add_argument("--pattern", default="unstructured", help="unstructured or N:M = prune N of every M (2:4, 4:8)")
    ap.add_argument("--group", choices=("layer", "row"), default=None,
                    help="comparison group for unstructured selection (default: the method's own)")
    g = ap.add_argument_group("calibration")
    g.add_argument("--nsamples", type=int, default=16, help="calibration windows (papers: 128)")
    g.add_argument("--seqlen", type=int, default=512, help="tokens per calibration window (papers: 2048)")
    g.add_argument("--calib-dataset", default="wikivital", help="wikivital, c4, wikitext2, text:PATH, jsonl:PATH")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--batch-size", type=int, default=8, help="calibration windows per forward batch")
    c = ap.add_argument_group("crepe hyperparameters (defaults: the validation-sweep choice, see README)")
    for name, kind in CREPE_FLAGS.items():
        c.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                       help=f"default {getattr(CrepeParams(), name)}")
    c.add_argument("--nbr-form", choices=NBR_FORMS, default=None)
    c.add_argument("--padding", choices=PADDINGS, default=None)
    c.add_argument("--term-scale", choices=TERM_SCALES, default=None)
    c.add_argument("--config", default=None, help="JSON with CRePE hyperparameters (e.g. a PHO best config)")
    k = ap.add_argument_group("composition (docs/composition.md)")
    k.add_argument("--permute", action="store_true", help="N:M channel permutation before selection (needs --pattern)")
    k.add_argument("--permute-block-groups", type=int, default=PermuteConfig().block_groups,
                   help="fast mode: assignment over blocks of this many M-groups (0 = exact)")
    k.add_argument("--allocation", default="uniform", help="uniform, owl, alpha or PATH.json (per-layer plan)")
    k.add_argument("--owl-m", type=float, default=AllocationConfig().owl_m, help="OWL outlier threshold (x mean)")
    k.add_argument("--owl-lambda", type=float, default=AllocationConfig().owl_lambda, help="OWL sparsity spread")
    k.add_argument("--alpha-epsilon", type=float, default=AllocationConfig().alpha_epsilon, help="AlphaPruning spread")
    k.add_argument("--repruning", default=None, help="dsnot: training-free mask refinement after the initial mask")
    k.add_argument("--repruning-scope", default="attention", help="attention (default) or all linears")
    k.add_argument("--update", choices=UPDATES, default=None,
                   help="weight reconstruction (docs/quality.md): obs/admm after the mask, sweep = CRePE's score "
                        "inside the OBS update (crepe only), sweep-admm = the sweep then ADMM; default: the method's "
                        "own (crepe: sweep-admm, admm with --repruning dsnot; none = mask-only; others: none)")
    e = ap.add_argument_group("evaluation")
    add_eval_args(e, prefix="eval-")
    e.set_defaults(max_eval_windows=40)
    e.add_argument("--skip-dense-eval", action="store_true", help="do not evaluate the dense model first")
    e.add_argument("--zeroshot", default=None, help="comma-separated lm-eval tasks run on the dense and the pruned model "
                   "(e.g. wikivital_describe, offline; boolq,rte,... need the hub)")
    e.add_argument("--zeroshot-limit", type=float, default=None, help="items per zero-shot task (default: all)")
    e.add_argument("--zeroshot-include-path", default=None, help="folder of extra lm-eval task YAMLs")
    o = ap.add_argument_group("output")
    o.add_argument("--save", default=None, help="save the pruned model (HF folder, safetensors) here")
    o.add_argument("--overwrite", action="store_true", help="replace an existing --save folder")
    o.add_argument("--report", default=None, help="write the run report JSON here")
    o.add_argument("--recipe", default=None, help="recipe YAML/JSON (or a saved folder's recipe.yaml): pruning config + run options")
    o.add_argument("--time-dense-pass", action="store_true",
                   help="also time one dense layer-by-layer pass over the calibration set (cost baseline)")
    o.add_argument("--device", default=None,
                   help="device for layer-by-layer work, e.g. cuda: layers move there one at a time (default: CPU)")
    o.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float16", "float32"),
                   help="weight dtype: auto = the checkpoint's own (GGUF: float32); layers compute in float32 on CPU")
    o.add_argument("--offload", default="auto", choices=OFFLOADS,
                   help="disk: stream decoder layers from the checkpoint one at a time; auto: when the weights "
                        "would take over half of the available RAM; none: load everything")
    o.add_argument("--log-level", default="INFO")
    return ap


def config_from_args(args: argparse.Namespace) -> PruneConfig:
    """PruneConfig from flags; raises ValueError on any invalid combination."""
    pattern = Pattern.parse(args.pattern)
    sparsity = args.sparsity
    if sparsity is None:
        sparsity = pattern.n / pattern.m if pattern.structured else 0.5
    crepe = load_crepe_params(args.config) if args.config else CrepeParams()
    explicit = {k: getattr(args, k) for k in (*CREPE_FLAGS, "nbr_form", "padding", "term_scale") if getattr(args, k) is not None}
    crepe = dataclasses.replace(crepe, **explicit)
    allocation = dataclasses.replace(AllocationConfig.parse(args.allocation), owl_m=args.owl_m,
                                     owl_lambda=args.owl_lambda, alpha_epsilon=args.alpha_epsilon)
    permute = PermuteConfig(block_groups=args.permute_block_groups) if args.permute else None
    repruning = RepruneConfig(method=args.repruning, scope=args.repruning_scope) if args.repruning else None
    return PruneConfig(method=args.method, sparsity=sparsity, pattern=pattern, group=args.group, crepe=crepe,
                       permute=permute, allocation=allocation, repruning=repruning, update=args.update)


def options_from_args(args: argparse.Namespace, cfg: PruneConfig) -> RunOptions:
    """RunOptions from flags (the pruning config itself comes from :func:`config_from_args`)."""
    return RunOptions(
        model=args.model, prune=cfg, calib_dataset=args.calib_dataset, nsamples=args.nsamples, seqlen=args.seqlen,
        seed=args.seed, batch_size=args.batch_size, eval_dataset=args.eval_dataset, eval_split=args.eval_split,
        eval_seqlen=args.eval_seqlen, max_eval_windows=args.max_eval_windows, eval_dtype=args.eval_dtype,
        eval_batch_size=args.eval_batch_size, bos_per_window=args.bos_per_window,
        skip_dense_eval=args.skip_dense_eval, dtype=args.dtype, offload=args.offload, device=args.device,
        save=args.save, overwrite=args.overwrite, report=args.report, time_dense_pass=args.time_dense_pass,
        zeroshot=ZeroShotConfig(ZeroShotConfig.parse_tasks(args.zeroshot), args.zeroshot_include_path, args.zeroshot_limit,
                                device=args.device or "cpu") if args.zeroshot else None,
        command=tuple(current_command()))


def main() -> int:
    parser = build_parser()
    args = parser.parse_args()
    setup_logging(args.log_level)
    opts = options_from_args(args, config_from_args(args))
    if args.recipe:  # the recipe gives the pruning config and run options; flags that change them conflict
        base = parser.parse_args([])
        opts = with_recipe(opts, options_from_args(base, config_from_args(base)), args.recipe)
    run(opts, echo=lambda line: print(line, flush=True))
    return 0



def cli() -> None:
    """``python -m crepe.prune``: :func:`main` with one-line errors, autograd off."""
    torch.set_grad_enabled(False)
    run_cli("crepe.prune", main)
