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
import time

import torch

from crepe.cli import add_eval_args, bos_per_window, run_cli, setup_logging
from crepe.compose.allocation import read_plan
from crepe.config import (METHODS, NBR_FORMS, PADDINGS, TERM_SCALES, AllocationConfig, CrepeParams, Pattern, PermuteConfig,
                          PruneConfig, RepruneConfig, load_crepe_params)
from crepe.data.prepare import calibration_set, eval_set
from crepe.models.adapters import get_adapter
from crepe.models.loading import load_model
from crepe.prune_model import check_prunable, prune_model, time_dense_pass
from crepe.report import peak_rss_mb, versions, write_json_atomic
from crepe.save import check_save_target, pruning_record, save_pruned
from eval.perplexity import perplexity

log = logging.getLogger("crepe.prune")
CREPE_FLAGS = {"alpha": float, "beta": float, "gamma": float, "kernel": int, "act_power": float}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m crepe.prune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m", help="alias (smollm2-135m, llama-2-7b, ...), hub id, folder or .gguf")
    ap.add_argument("--method", default="crepe", help=f"one of {', '.join(METHODS)} (default crepe)")
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
    e = ap.add_argument_group("evaluation")
    add_eval_args(e, prefix="eval-")
    e.set_defaults(max_eval_windows=40)
    e.add_argument("--skip-dense-eval", action="store_true", help="do not evaluate the dense model first")
    o = ap.add_argument_group("output")
    o.add_argument("--save", default=None, help="save the pruned model (HF folder, safetensors) here")
    o.add_argument("--overwrite", action="store_true", help="replace an existing --save folder")
    o.add_argument("--report", default=None, help="write the run report JSON here")
    o.add_argument("--time-dense-pass", action="store_true",
                   help="also time one dense layer-by-layer pass over the calibration set (cost baseline)")
    o.add_argument("--device", default=None, help="device for layer-by-layer work, e.g. cuda (default: CPU)")
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
                       permute=permute, allocation=allocation, repruning=repruning)


def main() -> int:
    args = build_parser().parse_args()
    setup_logging(args.log_level)
    cfg = config_from_args(args)
    if args.save:
        check_save_target(args.save, args.overwrite)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    model, tokenizer = load_model(args.model)
    timings["load_seconds"] = time.perf_counter() - start
    adapter = get_adapter(model)
    check_prunable(model, cfg)
    if cfg.allocation.method == "file":
        read_plan(cfg.allocation.path, model)  # fail on a bad plan before any work
    bos = bos_per_window(args.bos_per_window, model)
    calib, calib_spec = calibration_set(tokenizer, args.calib_dataset, args.nsamples, args.seqlen, args.seed, bos)
    evaluate = args.eval_dataset != "none"
    if evaluate:
        windows, eval_spec = eval_set(tokenizer, args.eval_dataset, args.eval_split, args.eval_seqlen,
                                      args.max_eval_windows, bos)
        protocol = f"{eval_spec.describe()} dtype={args.eval_dtype}"
    log.info("model %s (%s family), %s at sparsity %.3f %s", args.model, adapter.family, cfg.method, cfg.sparsity, cfg.pattern)
    log.info("calibration: %s seed=%d", calib_spec.describe(), args.seed)
    ppl_dense = None
    if evaluate and not args.skip_dense_eval:
        model.to(args.device or "cpu")
        ppl_dense = perplexity(model, windows, args.eval_batch_size, args.eval_dtype)
        print(f"dense  PPL {ppl_dense:8.3f}  [{protocol}]", flush=True)
        model.to("cpu")
    if args.time_dense_pass:
        timings["dense_pass_seconds"] = time_dense_pass(model, calib, args.batch_size, args.device)
    start = time.perf_counter()
    summary = prune_model(model, calib, cfg, batch_size=args.batch_size, device=args.device)
    timings["prune_seconds"] = time.perf_counter() - start
    if args.time_dense_pass:
        timings["prune_over_dense_pass"] = timings["prune_seconds"] / timings["dense_pass_seconds"]
        print(f"prune time = {timings['prune_over_dense_pass']:.2f} x one dense pass over the calibration set "
              f"({timings['dense_pass_seconds']:.1f} s); the floor is 2 (collect + propagate)", flush=True)
    print(f"pruned {len(summary.linears)} linears with {cfg.method} in {timings['prune_seconds']:.1f} s: realised sparsity "
          f"{summary.realised_sparsity:.4f} (zeros before pruning {summary.sparsity_before:.4f})", flush=True)
    if cfg.permute or cfg.repruning or cfg.allocation.method != "uniform":
        print(f"composition: permute={'on' if cfg.permute else 'off'} allocation={cfg.allocation.method} "
              f"repruning={cfg.repruning.method if cfg.repruning else 'none'}; kept-score fraction "
              f"{summary.kept_score_fraction if summary.kept_score_fraction is not None else float('nan'):.4f}; "
              f"{len(summary.physical)} linears permuted physically, {len(summary.gathered_permutations())} gathered",
              flush=True)
    ppl_pruned = None
    if evaluate:
        model.to(args.device or "cpu")
        ppl_pruned = perplexity(model, windows, args.eval_batch_size, args.eval_dtype)
        print(f"pruned PPL {ppl_pruned:8.3f}  [{protocol}]", flush=True)
    report = {
        "model": args.model, "family": adapter.family, "config": cfg.to_dict(), "seed": args.seed,
        "calibration": calib_spec.describe(), "eval_protocol": protocol if evaluate else None,
        "ppl_dense": ppl_dense, "ppl_pruned": ppl_pruned,
        "realised_sparsity": summary.realised_sparsity, "sparsity_before": summary.sparsity_before,
        "per_layer_sparsity": summary.per_layer(), "kept_score_fraction": summary.kept_score_fraction,
        "permutations": {"gathered": sorted(summary.gathered_permutations()), "physical": sorted(summary.physical)},
        **timings, "peak_rss_mb": peak_rss_mb(),
        "versions": versions(), "argv": vars(args),
    }
    if args.save:
        model.to("cpu")
        record = pruning_record(cfg.to_dict(), summary.realised_sparsity, str(cfg.pattern))
        save_pruned(model, tokenizer, args.save, record, report, overwrite=args.overwrite,
                    permutations=summary.gathered_permutations())
        print(f"saved pruned model to {args.save}")
    if args.report:
        write_json_atomic(args.report, report)
        print(f"report written to {args.report}")
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    run_cli("crepe.prune", main)
