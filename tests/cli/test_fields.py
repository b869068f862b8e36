"""Flags generated from the config dataclasses: every field has one (or a stated reason not to), the
parsed defaults are the declared ones, and today's command lines build the configs they always built."""

import dataclasses
import inspect
import json

import pytest

import crepe
from crepe.cli.common import add_eval_args
from crepe.cli.fields import flags_of
from crepe.cli.prune import build_parser, config_from_args, options_from_args
from crepe.config import AllocationConfig, PermuteConfig, PruneConfig, RepruneConfig
from crepe.evaluation.zeroshot import ZeroShotConfig
from crepe.methods.params import CrepeParams, Pattern
from crepe.output.recipe import explicit, recipe_from_options, with_recipe
from crepe.run.options import RUN_KEYS, RunOptions, default_of
from pho.workspace import SetupConfig

# fields with no flag of their own, and why
NO_FLAG = {("command",): "the recorded command line",
           ("prune", "crepe", "overrides"): "per-role values: --config FILE",
           ("prune", "allocation", "method"): "--allocation", ("prune", "allocation", "path"): "--allocation PATH.json",
           ("zeroshot", "num_fewshot"): "the tasks' own", ("zeroshot", "batch_size"): "the tasks' own",
           ("zeroshot", "device"): "follows --device"}
CONFIGS = {"prune": PruneConfig, "crepe": CrepeParams, "permute": PermuteConfig, "allocation": AllocationConfig,
           "repruning": RepruneConfig, "zeroshot": ZeroShotConfig}


def parse(argv):
    args = build_parser().parse_args(argv)
    return options_from_args(args, config_from_args(args))


def field_paths(kind, path=()):
    for f in dataclasses.fields(kind):
        sub = CONFIGS.get(f.name)
        yield from field_paths(sub, path + (f.name,)) if sub else [path + (f.name,)]


def test_every_config_field_has_a_flag_or_a_reason_not_to():
    flagged = {flag.path for flag in flags_of(RunOptions)}
    assert sorted(set(field_paths(RunOptions)) - flagged - set(NO_FLAG)) == []
    assert set(NO_FLAG) <= set(field_paths(RunOptions)) and not set(NO_FLAG) & flagged


def test_parsed_defaults_are_the_declared_defaults():
    args = build_parser().parse_args([])
    for flag in flags_of(RunOptions):
        owner = CONFIGS.get(flag.path[-2], RunOptions) if len(flag.path) > 1 else RunOptions
        if flag.role == "value" and not flag.keep:
            declared = default_of(owner, flag.path[-1])
            assert getattr(args, flag.dest) in (declared, str(declared)), flag.option
    opts = parse([])
    assert dataclasses.replace(opts, command=()) == RunOptions() and opts.prune == PruneConfig()
    assert opts.max_eval_windows == 40 and (opts.nsamples, opts.seqlen) == (16, 512)  # the documented CPU-sized run


def test_oneshot_and_pho_read_the_declared_defaults():
    signature = inspect.signature(crepe.oneshot).parameters
    assert (signature["num_calibration_samples"].default, signature["max_seq_length"].default) == (
        default_of(RunOptions, "nsamples"), default_of(RunOptions, "seqlen"))
    assert signature["method"].default == PruneConfig().method and signature["sparsity"].default == PruneConfig().sparsity
    setup = SetupConfig()
    assert (setup.model, setup.dataset, setup.nsamples, setup.seqlen, setup.seed, setup.batch_size) == (
        RunOptions().model, RunOptions().calib_dataset, 16, 512, RunOptions().seed, RunOptions().batch_size)


def test_eval_ppl_flags_are_the_evaluation_options_without_eval_in_their_names():
    import argparse

    ap = argparse.ArgumentParser()
    add_eval_args(ap)
    args = vars(ap.parse_args([]))
    defaults = RunOptions()
    assert args == {"dataset": defaults.eval_dataset, "split": defaults.eval_split, "seqlen": defaults.eval_seqlen,
                    "max_windows": None, "dtype": defaults.eval_dtype, "batch_size": defaults.eval_batch_size,
                    "bos_per_window": defaults.bos_per_window}


def _config(**kw):
    return PruneConfig(**kw).to_dict()


TODAY = [
    (["--permute", "--pattern", "2:4"], _config(sparsity=0.5, pattern=Pattern(2, 4), permute=PermuteConfig())),
    (["--pattern", "2:4", "--permute", "--permute-block-groups", "0"],
     _config(pattern=Pattern(2, 4), permute=PermuteConfig(block_groups=0))),
    (["--permute-block-groups", "0"], _config()),  # without --permute the block size is unused
    (["--pattern", "1:4", "--method", "ria"], _config(method="ria", sparsity=0.25, pattern=Pattern(1, 4))),
    (["--allocation", "owl", "--owl-m", "7", "--owl-lambda", "0.1"],
     _config(allocation=AllocationConfig(method="owl", owl_m=7.0, owl_lambda=0.1))),
    (["--allocation", "plan.json", "--alpha-epsilon", "0.2"],
     _config(allocation=AllocationConfig(method="file", path="plan.json", alpha_epsilon=0.2))),
    (["--method", "wanda", "--repruning", "dsnot", "--repruning-scope", "all"],
     _config(method="wanda", repruning=RepruneConfig(scope="all"))),
    (["--method", "wanda", "--repruning", "dsnot"], _config(method="wanda", repruning=RepruneConfig())),
    (["--repruning-scope", "all"], _config()),  # without --repruning the scope is unused
    (["--sparsity", "0.7", "--group", "row", "--update", "obs", "--method", "ria"],
     _config(method="ria", sparsity=0.7, group="row", update="obs")),
    (["--alpha", "0.5", "--gamma", "0.1", "--kernel", "5", "--act-power", "0.5", "--nbr-form", "smoothed",
      "--padding", "count", "--term-scale", "mean"],
     _config(crepe=CrepeParams(alpha=0.5, gamma=0.1, kernel=5, act_power=0.5, nbr_form="smoothed", padding="count",
                               term_scale="mean"))),
]


@pytest.mark.parametrize("argv, expected", TODAY, ids=[" ".join(a) for a, _ in TODAY])
def test_todays_command_lines_give_the_config_they_gave(argv, expected):
    assert parse(argv).prune.to_dict() == expected


NEW = [  # fields that had no flag before the flags were generated
    (["--method", "sparsegpt", "--sparsegpt-blocksize", "64", "--sparsegpt-damp", "0.02"],
     _config(method="sparsegpt", sparsegpt_blocksize=64, sparsegpt_damp=0.02)),
    (["--pattern", "2:4", "--permute", "--permute-iterations", "2", "--no-permute-physical"],
     _config(pattern=Pattern(2, 4), permute=PermuteConfig(iterations=2, physical=False))),
    (["--allocation", "owl", "--allocation-max-sparsity", "0.9"], _config(allocation=AllocationConfig("owl", max_sparsity=0.9))),
    (["--method", "wanda", "--repruning", "dsnot", "--repruning-max-cycles", "5", "--repruning-var-power", "0.5"],
     _config(method="wanda", repruning=RepruneConfig(max_cycles=5, var_power=0.5))),
]


@pytest.mark.parametrize("argv, expected", NEW, ids=[" ".join(a) for a, _ in NEW])
def test_fields_without_a_flag_before_have_one_now(argv, expected):
    assert parse(argv).prune.to_dict() == expected


def test_config_file_is_the_base_and_explicit_flags_override_it(tmp_path):
    (tmp_path / "best.json").write_text(json.dumps({"crepe": {"gamma": 2.0, "kernel": 7, "alpha": 0.5}}))
    cfg = parse(["--config", str(tmp_path / "best.json"), "--kernel", "3"]).prune
    assert cfg.to_dict() == _config(crepe=CrepeParams(gamma=2.0, kernel=3, alpha=0.5))


def test_run_flags_and_zeroshot_give_the_run_options_they_gave():
    argv = ["--model", "m", "--nsamples", "128", "--seqlen", "2048", "--calib-dataset", "c4", "--seed", "3",
            "--batch-size", "4", "--eval-dataset", "wikitext2", "--eval-split", "validation", "--eval-seqlen", "1024",
            "--max-eval-windows", "8", "--eval-dtype", "bfloat16", "--eval-batch-size", "2", "--bos-per-window", "yes",
            "--skip-dense-eval", "--dtype", "float32", "--offload", "none", "--device", "cuda", "--save", "out",
            "--overwrite", "--report", "r.json", "--time-dense-pass", "--zeroshot", "boolq, rte", "--zeroshot-limit", "0.5"]
    got = dataclasses.replace(parse(argv), command=())
    assert got == RunOptions(
        model="m", nsamples=128, seqlen=2048, calib_dataset="c4", seed=3, batch_size=4, eval_dataset="wikitext2",
        eval_split="validation", eval_seqlen=1024, max_eval_windows=8, eval_dtype="bfloat16", eval_batch_size=2,
        bos_per_window="yes", skip_dense_eval=True, dtype="float32", offload="none", device="cuda", save="out",
        overwrite=True, report="r.json", time_dense_pass=True,
        zeroshot=ZeroShotConfig(("boolq", "rte"), limit=0.5, device="cuda"))
    assert parse([]).zeroshot is None


def test_a_recipe_replaces_the_defaults_and_its_run_keys_are_the_marked_fields():
    recipe = {"prune": explicit(PruneConfig(method="ria", sparsity=0.6)), "run": {"nsamples": 8, "eval_batch_size": 2}}
    opts = with_recipe(parse(["--save", "out"]), parse([]), recipe)
    assert opts.prune.to_dict() == recipe["prune"] and (opts.nsamples, opts.eval_batch_size, opts.save) == (8, 2, "out")
    assert RUN_KEYS == tuple(recipe_from_options(opts)["run"]) and not {"model", "save", "device"} & set(RUN_KEYS)
    with pytest.raises(ValueError, match="run.model"):
        with_recipe(parse([]), parse([]), {"prune": {}, "run": {"model": "x"}})
