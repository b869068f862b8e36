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

from crepe.cli.fields import add_flags, from_args
from crepe.config import PruneConfig
from crepe.io.console import setup_logging
from crepe.io.provenance import current_command
from crepe.methods.params import Pattern
from crepe.output.recipe import with_recipe
from crepe.run.job import run
from crepe.run.options import RunOptions, default_of

log = logging.getLogger("crepe.prune")
# the argparse groups the fields' "group" metadata names, in the order --help lists them
GROUPS = {"calibration": "calibration", "crepe": "crepe hyperparameters (defaults: the validation-sweep choice, see README)",
          "composition": "composition (docs/composition.md)", "evaluation": "evaluation", "output": "output"}


def build_parser() -> argparse.ArgumentParser:
    """The flags of :class:`RunOptions` and its :class:`PruneConfig` (:mod:`crepe.cli.fields`), plus
    --recipe and --log-level."""
    ap = argparse.ArgumentParser(prog="python -m crepe.prune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = {key: ap.add_argument_group(title) for key, title in GROUPS.items()}
    add_flags(ap, RunOptions, groups)
    groups["output"].add_argument("--recipe", default=None, help="recipe YAML/JSON (or a saved folder's recipe.yaml): "
                                  "pruning config + run options")
    groups["output"].add_argument("--log-level", default="INFO")
    return ap


def config_from_args(args: argparse.Namespace) -> PruneConfig:
    """PruneConfig from flags; raises ValueError on any invalid combination. Without --sparsity an
    N:M pattern prunes N/M, else the declared default."""
    sparsity = args.sparsity
    if sparsity is None:
        sparsity = Pattern.parse(args.pattern).sparsity_or(default_of(PruneConfig, "sparsity"))
    return from_args(PruneConfig, args, sparsity=sparsity)


def options_from_args(args: argparse.Namespace, cfg: PruneConfig) -> RunOptions:
    """RunOptions from flags (the pruning config itself comes from :func:`config_from_args`); zero-shot
    tasks run on ``--device``."""
    opts = from_args(RunOptions, args, prune=cfg, command=tuple(current_command()))
    if opts.zeroshot is None:
        return opts
    return dataclasses.replace(opts, zeroshot=dataclasses.replace(opts.zeroshot, device=opts.device or opts.zeroshot.device))


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
