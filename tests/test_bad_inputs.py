"""A catalogue of bad inputs at every entry point: each gives exit code 2, exactly one line on stderr,
no traceback, and leaves nothing behind (no output file or folder, no temporary file).

Each case is ``(entry point, arguments, expected words in the line)``; ``{tmp}`` is the test's folder
(which holds ``afile``, a plain file, ``adir``, an empty folder, and the files a case names), ``{model}``
the tiny Llama folder, ``{corpus}`` its text corpus. ``crepe.oneshot`` cases are keyword arguments of
:func:`crepe.oneshot` run the way a command runs (:func:`crepe.io.console.run_cli`). Log records are
not stderr lines here (each command's logging is replaced by a null handler); argparse's own errors
(a usage line, then the error) are argparse's contract and are not in this catalogue.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from tiny_models import FAST_PRUNE_ARGS as FAST
from tiny_models import save_tiny_folder

from crepe.io.console import run_cli

PRUNE = ["--model", "{model}", "--calib-dataset", "{corpus}", "--eval-dataset", "none", *FAST]
PPL = ["--model", "{model}", "--dataset", "{corpus}", "--seqlen", "32", "--max-windows", "2"]
PHO = ["--model", "{model}", "--dataset", "{corpus}", "--nsamples", "4", "--seqlen", "32", "--x-tokens", "16",
       "--cache-dir", "{tmp}/cache", "--study-name", "s", "--n-trials", "2", "--no-plots", "--log-level", "WARNING"]
RECIPE = ["--model", "{model}", "--recipe"]  # a recipe sets the run options: no flags may change them
SEARCH = [*PHO, "--storage", "sqlite:///{tmp}/pho.db"]
BEST = ["--best-config", "{tmp}/best.json"]
SPEED = ["--shape", "8x8", "--repeats", "1", "--device", "cpu"]
ZEROSHOT = ["--model", "{model}", "--tasks", "wikivital_describe", "--limit", "2"]
VIT = ["--model", "{tmp}/vit", "--latency-batches"]

# recipe / config files a case names, by file name: their text
FILES = {
    "alpha_text.json": json.dumps({"crepe": {"alpha": "big"}}),
    "kernel_float.json": json.dumps({"crepe": {"kernel": 7.5}}),
    "list.json": json.dumps([1, 2]),
    "bool_gamma.json": json.dumps({"crepe": {"gamma": True}}),
    "sparsity_text.yaml": "prune:\n  sparsity: '0.5'\n",
    "pattern_sexagesimal.yaml": "prune:\n  pattern: 2:4\n  sparsity: 0.5\n",
    "pattern_int.yaml": "prune:\n  pattern: 24\n",
    "nsamples_text.yaml": "prune: {}\nrun:\n  nsamples: '8'\n",
    "batch_zero.yaml": "prune: {}\nrun:\n  batch_size: 0\n",
    "seqlen_float.yaml": "prune: {}\nrun:\n  seqlen: 32.5\n",
    "kernel_text.yaml": "prune:\n  crepe:\n    kernel: '7'\n",
    "prune_list.yaml": "prune: [1, 2]\n",
    "allocation_int.yaml": "prune:\n  allocation: 5\n",
    "permute_text.yaml": "prune:\n  pattern: '2:4'\n  sparsity: 0.5\n  permute:\n    block_groups: many\n",
    "method_int.yaml": "prune:\n  method: 3\n",
    "unknown_key.yaml": "prune: {}\nrun:\n  nsample: 8\n",
    "overrides_list.yaml": "prune:\n  crepe:\n    overrides:\n      q: [1, 2]\n",
    "not_yaml.yaml": "prune: [unclosed\n",
}

CASES = [
    # crepe.prune: output locations, checked before any work
    ("crepe.prune", [*PRUNE, "--report", "{tmp}/adir"], "is a folder"),
    ("crepe.prune", [*PRUNE, "--report", "{tmp}/afile/r.json"], "is not a folder"),
    ("crepe.prune", [*PRUNE, "--report", ""], "empty"),
    ("crepe.prune", [*PRUNE, "--save", "{tmp}/afile/out"], "is not a folder"),
    ("crepe.prune", [*PRUNE, "--save", "{tmp}/afile"], "is not a folder"),
    ("crepe.prune", [*PRUNE, "--save", ""], "empty"),
    # crepe.prune: sizes and data
    ("crepe.prune", [*PRUNE, "--batch-size", "0"], "batch_size must be >= 1"),
    ("crepe.prune", [*PRUNE, "--eval-batch-size", "0"], "eval_batch_size must be >= 1"),
    ("crepe.prune", [*PRUNE, "--nsamples", "0"], "nsamples must be >= 1"),
    ("crepe.prune", [*PRUNE, "--max-eval-windows", "0"], "max_eval_windows must be >= 1"),
    ("crepe.prune", [*PRUNE, "--seqlen", "1"], "seqlen must be >= 2"),
    ("crepe.prune", [*PRUNE, "--calib-dataset", "c4"], "needs the Hugging Face hub"),
    ("crepe.prune", [*PRUNE, "--eval-dataset", "wikitext2"], "needs the Hugging Face hub"),
    # crepe.prune: config files (--config) and recipes (--recipe) with wrong types
    ("crepe.prune", [*PRUNE, "--config", "{tmp}/alpha_text.json"], "crepe key 'alpha' must be a number"),
    ("crepe.prune", [*PRUNE, "--config", "{tmp}/kernel_float.json"], "crepe key 'kernel' must be an integer"),
    ("crepe.prune", [*PRUNE, "--config", "{tmp}/list.json"], "holds no CRePE parameters"),
    ("crepe.prune", [*PRUNE, "--config", "{tmp}/bool_gamma.json"], "crepe key 'gamma' must be a number"),
    ("crepe.prune", [*RECIPE, "{tmp}/sparsity_text.yaml"], "key 'sparsity' must be a number"),
    ("crepe.prune", [*RECIPE, "{tmp}/pattern_sexagesimal.yaml"], "quote it in YAML"),
    ("crepe.prune", [*RECIPE, "{tmp}/pattern_int.yaml"], "key 'pattern'"),
    ("crepe.prune", [*RECIPE, "{tmp}/nsamples_text.yaml"], "key 'nsamples' must be an integer"),
    ("crepe.prune", [*RECIPE, "{tmp}/batch_zero.yaml"], "batch_size must be >= 1"),
    ("crepe.prune", [*RECIPE, "{tmp}/seqlen_float.yaml"], "key 'seqlen' must be an integer"),
    ("crepe.prune", [*RECIPE, "{tmp}/kernel_text.yaml"], "crepe key 'kernel' must be an integer"),
    ("crepe.prune", [*RECIPE, "{tmp}/prune_list.yaml"], "needs a 'prune' mapping"),
    ("crepe.prune", [*RECIPE, "{tmp}/allocation_int.yaml"], "key 'allocation'"),
    ("crepe.prune", [*RECIPE, "{tmp}/permute_text.yaml"], "permute key 'block_groups'"),
    ("crepe.prune", [*RECIPE, "{tmp}/method_int.yaml"], "key 'method' must be a string"),
    ("crepe.prune", [*RECIPE, "{tmp}/unknown_key.yaml"], "unknown recipe keys"),
    ("crepe.prune", [*RECIPE, "{tmp}/overrides_list.yaml"], "overrides.q must be a mapping"),
    ("crepe.prune", [*RECIPE, "{tmp}/not_yaml.yaml"], "not valid YAML"),
    ("crepe.prune", [*RECIPE, "{tmp}/missing.yaml"], "recipe file not found"),
    # crepe.prune: checkpoints that disagree with their config, or that would run their own code
    ("crepe.prune", [*PRUNE, "--model", "{tmp}/narrow", "--method", "magnitude", "--offload", "disk"],
     "has shape [64, 120]"),
    ("crepe.prune", [*PRUNE, "--model", "{tmp}/narrow", "--method", "wanda", "--offload", "disk"], "has shape [64, 120]"),
    ("crepe.prune", [*PRUNE, "--model", "{tmp}/narrow", "--method", "magnitude", "--offload", "none"],
     "the weights and the config disagree"),
    ("crepe.prune", [*PRUNE, "--model", "{tmp}/remote", "--offload", "none"], "custom code"),
    ("crepe.prune", [*PRUNE, "--model", "{tmp}/remote", "--offload", "disk"], "custom code"),
    # the Python API
    ("crepe.oneshot", {"sparsity": "0.5"}, "key 'sparsity' must be a number"),
    ("crepe.oneshot", {"num_calibration_samples": 0}, "nsamples must be >= 1"),
    ("crepe.oneshot", {"max_seq_length": 32.5}, "key 'seqlen' must be an integer"),
    ("crepe.oneshot", {"batch_size": 0}, "batch_size must be >= 1"),
    ("crepe.oneshot", {"alpha": "x"}, "crepe key 'alpha' must be a number"),
    ("crepe.oneshot", {"pattern": 24}, "pattern must be"),
    ("crepe.oneshot", {"output_dir": "{tmp}/afile/out"}, "is not a folder"),
    ("crepe.oneshot", {"report": "{tmp}/adir"}, "is a folder"),
    ("crepe.oneshot", {"recipe": {"prune": {"sparsity": "half"}}}, "key 'sparsity' must be a number"),
    ("crepe.oneshot", {"recipe": {"prune": {}, "run": {"eval_batch_size": 0}}}, "eval_batch_size must be >= 1"),
    ("crepe.oneshot", {"dataset": "wikitext2"}, "needs the Hugging Face hub"),
    # eval.ppl
    ("eval.ppl", [*PPL, "--json", "{tmp}/adir"], "is a folder"),
    ("eval.ppl", [*PPL, "--json", "{tmp}/afile/ppl.json"], "is not a folder"),
    ("eval.ppl", [*PPL, "--batch-size", "0"], "--batch_size must be >= 1"),
    ("eval.ppl", [*PPL, "--max-windows", "0"], "--max_windows must be >= 1"),
    ("eval.ppl", [*PPL, "--seqlen", "1"], "--seqlen must be >= 2"),
    ("eval.ppl", [*PPL, "--dataset", "wikitext2"], "needs the Hugging Face hub"),
    ("eval.ppl", [*PPL, "--model", "{tmp}/remote"], "custom code"),
    # eval.zeroshot
    ("eval.zeroshot", [*ZEROSHOT, "--json", "{tmp}/adir"], "is a folder"),
    ("eval.zeroshot", [*ZEROSHOT, "--json", "{tmp}/afile/z.json"], "is not a folder"),
    ("eval.zeroshot", [*ZEROSHOT, "--batch-size", "0"], "--batch-size must be >= 1"),
    # eval.speed
    ("eval.speed", [*SPEED, "--sparsity", "1.5"], "--sparsity takes fractions in [0, 1)"),
    ("eval.speed", [*SPEED, "--sparsity", "-0.5"], "--sparsity takes fractions in [0, 1)"),
    ("eval.speed", ["--shape", "8x8x8", "--repeats", "1", "--device", "cpu"], "--shape must be OUTxIN"),
    ("eval.speed", ["--shape", "8", "--repeats", "1", "--device", "cpu"], "--shape must be OUTxIN"),
    ("eval.speed", ["--shape", "0x8", "--repeats", "1", "--device", "cpu"], "--shape must be OUTxIN"),
    ("eval.speed", [*SPEED, "--batch", ","], "--batch"),
    ("eval.speed", [*SPEED, "--tokens", "0"], "--tokens and --threads must be >= 1"),
    ("eval.speed", [*SPEED, "--json", "{tmp}/adir"], "is a folder"),
    ("eval.speed", ["--shape", "64x64,8", "--repeats", "1", "--device", "cpu"], "--shape must be OUTxIN"),
    ("eval.speed", ["--model", "{model}", "--gpu-dtype", "float8_e4m3fn"], "times --shape weights only"),
    # pho.search and pho.hillclimb: study storage, best config and trial log checked before any work
    ("pho.search", [*SEARCH, "--best-config", "{tmp}/adir"], "--best-config {tmp}/adir is a folder"),
    ("pho.search", [*SEARCH, "--best-config", "{tmp}/afile/best.json"], "is not a folder"),
    ("pho.search", [*SEARCH, *BEST, "--trial-log", "{tmp}/adir"], "--trial-log {tmp}/adir is a folder"),
    ("pho.search", [*PHO, *BEST, "--storage", "sqlite:///{tmp}/adir"], "is a folder"),
    ("pho.search", [*PHO, *BEST, "--storage", "sqlite:///{tmp}/afile/pho.db"], "not writable"),
    ("pho.search", [*SEARCH, *BEST, "--nsamples", "0"], "nsamples >= 1"),
    ("pho.search", [*SEARCH, *BEST, "--batch-size", "0"], "batch size >= 1"),
    ("pho.hillclimb", [*SEARCH, "--best-config", "{tmp}/adir"], "is a folder"),
    ("pho.hillclimb", [*PHO, *BEST, "--storage", "sqlite:///{tmp}/afile/hc.db"], "not writable"),
    ("pho.hillclimb", [*SEARCH, *BEST, "--step", "0.9"], "--step"),
    ("pho.search", [*SEARCH, *BEST, "--dataset", "c4"], "needs the Hugging Face hub"),
    ("pho.hillclimb", [*SEARCH, *BEST, "--dataset", "wikitext2"], "needs the Hugging Face hub"),
    # crepe.vit
    ("crepe.vit", [*VIT, "--report", "{tmp}/adir"], "is a folder"),
    ("crepe.vit", [*VIT, "--save", "{tmp}/afile/out"], "is not a folder"),
    ("crepe.vit", [*VIT, "--save", "{tmp}/afile"], "is not a folder"),
    ("crepe.vit", ["--model", "{tmp}/missing", "--latency-batches"], "is not a model folder"),
    ("crepe.vit", [*VIT, "--head-sparsity", "1.2"], "[0, 1)"),
]


@pytest.fixture(scope="module")
def corrupt_models(tmp_path_factory):
    """``narrow``: a tiny Llama whose layer-0 down_proj has 8 input columns fewer than its config says;
    ``remote``: a folder whose config asks for its own Python code (which would write a marker file);
    ``vit``: a tiny DeiT folder."""
    root = tmp_path_factory.mktemp("corrupt")
    narrow = save_tiny_folder(root / "narrow")
    tensors = load_file(narrow / "model.safetensors")
    key = "model.layers.0.mlp.down_proj.weight"
    tensors[key] = tensors[key][:, :-8].contiguous()
    save_file(tensors, narrow / "model.safetensors", metadata={"format": "pt"})
    remote = save_tiny_folder(root / "remote")
    config = json.loads((remote / "config.json").read_text())
    config.update(model_type="evil", auto_map={"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.Evil"})
    (remote / "config.json").write_text(json.dumps(config))
    (remote / "evil.py").write_text(f"open({str(root / 'code-ran')!r}, 'w').close()\n")
    sys.path.insert(0, str(Path(__file__).parent))
    from vit.tiny import tiny_deit

    tiny_deit(channels=3).save_pretrained(root / "vit")
    return root


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _fill(value, where: dict[str, str]):
    if isinstance(value, str):
        for key, text in where.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, where) for v in value]
    return value


def _offline_hub(*args, **kwargs):
    raise ConnectionError(f"Couldn't reach {args[0]!r} on the Hub (OfflineModeIsEnabled)")


@pytest.mark.parametrize("entry, given, expected", CASES, ids=[f"{i:02d}-{c[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(entry, given, expected, corrupt_models, tiny_folder,
                                                         tiny_corpus, tmp_path, cli, capsys, monkeypatch):
    import datasets

    from crepe import oneshot

    monkeypatch.setattr(datasets, "load_dataset", _offline_hub)  # no hub here, whatever the machine has
    monkeypatch.setattr(logging.root, "handlers", [logging.NullHandler()])  # log records are not the error line
    monkeypatch.setenv("CREPE_CACHE", str(tmp_path / "crepe-cache"))
    (tmp_path / "afile").write_text("a plain file")
    (tmp_path / "adir").mkdir()
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    for name in ("narrow", "remote", "vit"):
        (tmp_path / name).symlink_to(corrupt_models / name)
    where = {"tmp": str(tmp_path), "model": str(tiny_folder), "corpus": tiny_corpus}
    before = _tree(tmp_path)
    given, expected = _fill(given, where), _fill(expected, where)
    if entry == "crepe.oneshot":
        with pytest.raises(SystemExit) as exit_info:
            base = {} if "recipe" in given else {**FAST_ONESHOT, "dataset": tiny_corpus}  # a recipe sets these
            run_cli(entry, lambda: oneshot(str(tiny_folder), **{**base, **given}) and 0)
        code = exit_info.value.code
    else:
        code = cli(entry, given)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{entry}: error: ") and expected in lines[0], lines[0]
    assert _tree(tmp_path) == before  # no output, no temporary file or folder
    assert not (corrupt_models / "code-ran").exists()


FAST_ONESHOT = {"num_calibration_samples": 4, "max_seq_length": 32}


def test_the_catalogue_covers_every_entry_point_with_at_least_40_cases():
    entries = {entry for entry, _, _ in CASES}
    assert entries == {"crepe.prune", "crepe.oneshot", "eval.ppl", "eval.zeroshot", "eval.speed", "pho.search",
                       "pho.hillclimb", "crepe.vit"}
    assert len(CASES) >= 40 and any("--recipe" in given for _, given, _ in CASES if isinstance(given, list))


@pytest.mark.parametrize("entry, argv", [
    ("crepe.prune", [*PRUNE, "--save", "{tmp}/ro/out"]),
    ("crepe.prune", [*PRUNE, "--report", "{tmp}/ro/r.json"]),
    ("crepe.prune", [*PRUNE, "--report", "{tmp}/ro/old.json"]),
    ("eval.ppl", [*PPL, "--json", "{tmp}/ro/ppl.json"]),
    ("pho.search", [*PHO, "--storage", "sqlite:///{tmp}/ro/pho.db", *BEST]),
    ("pho.search", [*SEARCH, "--best-config", "{tmp}/ro/best.json"]),
])
def test_read_only_output_locations_are_refused_before_any_work(entry, argv, tiny_folder, tiny_corpus, tmp_path, cli,
                                                                 capsys, monkeypatch):
    """Root writes through file modes, so a read-only folder (as on a read-only mount) is os.access's answer."""
    import os

    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "old.json").write_text("{}")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if ro in (Path(p), Path(p).parent) else real(p, mode, **kw))
    argv = _fill(argv, {"tmp": str(tmp_path), "model": str(tiny_folder), "corpus": tiny_corpus})
    assert cli(entry, argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{entry}: error: ") and ("not writable" in line or "read-only" in line), line
    assert sorted(p.name for p in ro.iterdir()) == ["old.json"] and not (tmp_path / "pho.db").exists()
