"""The CLIs end to end on tiny model folders, in-process; bad input gives one line and exit 2."""

import json
import sys

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from crepe.cli import run_cli
from crepe.models.adapters import decoder_linears, weight_view
from tiny_models import SAMPLE_TEXT, save_tiny_folder, tiny_tokenizer

FAST = ["--nsamples", "4", "--seqlen", "32", "--eval-seqlen", "32", "--max-eval-windows", "4"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_folder(tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(SAMPLE_TEXT)
    return f"text:{path}"


def run(module: str, argv: list[str], monkeypatch) -> int:
    import importlib

    main = importlib.import_module(module).main
    monkeypatch.setattr(sys, "argv", [module, *argv])
    with pytest.raises(SystemExit) as exit_info:
        run_cli(module, main)
    return exit_info.value.code


def test_prune_saves_reports_and_the_saved_model_evaluates_the_same(folder, text, tmp_path, monkeypatch, capsys):
    save, report = tmp_path / "pruned", tmp_path / "report.json"
    argv = ["--model", str(folder), "--calib-dataset", text, "--eval-dataset", text, *FAST,
            "--sparsity", "0.6", "--gamma", "0.5", "--kernel", "5", "--save", str(save), "--report", str(report)]
    assert run("crepe.prune", argv, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "dense  PPL" in out and "pruned PPL" in out and "seqlen=32 windows=4" in out
    rep = json.loads(report.read_text())
    assert rep["realised_sparsity"] == pytest.approx(0.6, abs=0.01)
    assert rep["config"]["crepe"]["gamma"] == 0.5 and rep["config"]["crepe"]["kernel"] == 5
    assert rep["ppl_pruned"] > 0 and rep["prune_seconds"] > 0 and rep["peak_rss_mb"] > 0
    assert len(rep["per_layer_sparsity"]) == 14
    loaded = AutoModelForCausalLM.from_pretrained(save)
    assert all((weight_view(m) == 0).float().mean() == pytest.approx(0.6, abs=0.02) for m in decoder_linears(loaded).values())
    assert run("eval.ppl", ["--model", str(save), "--dataset", text, "--seqlen", "32", "--max-windows", "4",
                            "--json", str(tmp_path / "ppl.json")], monkeypatch) == 0
    assert json.loads((tmp_path / "ppl.json").read_text())["ppl"] == pytest.approx(rep["ppl_pruned"], rel=1e-4)


def test_config_file_sets_crepe_params_and_flags_override_it(folder, text, tmp_path, monkeypatch):
    (tmp_path / "best.json").write_text(json.dumps({"crepe": {"gamma": 2.0, "kernel": 7, "alpha": 0.5}}))
    argv = ["--model", str(folder), "--calib-dataset", text, "--eval-dataset", "none", *FAST,
            "--config", str(tmp_path / "best.json"), "--kernel", "3", "--report", str(tmp_path / "r.json")]
    assert run("crepe.prune", argv, monkeypatch) == 0
    crepe = json.loads((tmp_path / "r.json").read_text())["config"]["crepe"]
    assert (crepe["gamma"], crepe["kernel"], crepe["alpha"]) == (2.0, 3, 0.5)


def _corrupt_folders(tmp_path):
    nan = save_tiny_folder(tmp_path / "nan")
    model = AutoModelForCausalLM.from_pretrained(nan)
    weight_view(decoder_linears(model)["layers.0.self_attn.q_proj"])[0, 0] = float("inf")
    model.save_pretrained(nan)
    bloom = tmp_path / "bloom"
    AutoModelForCausalLM.from_config(AutoConfig.for_model("bloom", vocab_size=128, hidden_size=32, n_layer=1, n_head=2)).save_pretrained(bloom)
    tiny_tokenizer().save_pretrained(bloom)
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
    return nan, bloom


BAD_INPUTS = [
    (["--sparsity", "1.2"], "sparsity must be in"),
    (["--sparsity", "-0.1"], "sparsity must be in"),
    (["--pattern", "4:4"], "need 0 < N < M"),
    (["--pattern", "2:4", "--sparsity", "0.7"], "2/4"),
    (["--pattern", "12:24"], "not a multiple of 24"),
    (["--method", "obc"], "unknown method 'obc'"),
    (["--kernel", "4"], "odd"),
    (["--model", "{tmp}/missing.gguf"], "model file not found"),
    (["--model", "{tmp}/bad.gguf"], "cannot read GGUF file"),
    (["--model", "{tmp}/nan"], "NaN or Inf"),
    (["--model", "{tmp}/bloom"], "unsupported architecture 'bloom'"),
    (["--nsamples", "5000"], "too little calibration data"),
    (["--config", "{tmp}/missing.json"], "cannot read config"),
]


@pytest.mark.parametrize("extra,message", BAD_INPUTS)
def test_bad_input_gives_one_line_exit_2_and_no_output_folder(extra, message, folder, text, tmp_path, monkeypatch, capsys):
    if any("{tmp}/nan" in e or "{tmp}/bloom" in e for e in extra):
        _corrupt_folders(tmp_path)
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    argv = ["--model", str(folder), "--calib-dataset", text, "--eval-dataset", text, *FAST, *extra,
            "--save", str(tmp_path / "out")]
    assert run("crepe.prune", argv, monkeypatch) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("crepe.prune: error:") and message in errors[0], errors
    assert not (tmp_path / "out").exists()


def test_existing_save_folder_needs_overwrite_and_is_left_intact(folder, text, tmp_path, monkeypatch, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("precious")
    argv = ["--model", str(folder), "--calib-dataset", text, "--eval-dataset", "none", *FAST, "--save", str(tmp_path / "out")]
    assert run("crepe.prune", argv, monkeypatch) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "mine.txt").read_text() == "precious"
    assert run("crepe.prune", [*argv, "--overwrite"], monkeypatch) == 0
    assert not (tmp_path / "out" / "mine.txt").exists() and (tmp_path / "out" / "config.json").is_file()
