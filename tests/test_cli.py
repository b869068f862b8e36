"""The CLIs end to end on tiny model folders, in-process; bad input gives one line and exit 2."""

import json
import shutil

import pytest
from tiny_models import FAST_PRUNE_ARGS as FAST
from tiny_models import save_tiny_folder, tiny_tokenizer
from transformers import AutoConfig, AutoModelForCausalLM

from crepe.methods.gradual import admm_grad_damp_for
from crepe.models.adapters import decoder_linears, weight_view


def test_prune_saves_reports_and_the_saved_model_evaluates_the_same(tiny_folder, tiny_corpus, tmp_path, cli, capsys):
    save, report = tmp_path / "pruned", tmp_path / "report.json"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", tiny_corpus, *FAST,
            "--sparsity", "0.6", "--gamma", "0.5", "--kernel", "5", "--save", str(save), "--report", str(report)]
    assert cli("crepe.prune", argv) == 0
    out = capsys.readouterr().out
    assert "dense  PPL" in out and "pruned PPL" in out and "seqlen=32 windows=4" in out
    rep = json.loads(report.read_text())
    assert rep["realised_sparsity"] == pytest.approx(0.6, abs=0.01)
    assert rep["config"]["crepe"]["gamma"] == 0.5 and rep["config"]["crepe"]["kernel"] == 5
    assert rep["config"]["admm_grad_damp"] == admm_grad_damp_for(4 * 32)  # resolved for its calibration, recorded
    assert rep["ppl_pruned"] > 0 and rep["prune_seconds"] > 0 and rep["peak_rss_mb"] > 0
    assert len(rep["per_layer_sparsity"]) == 14
    loaded = AutoModelForCausalLM.from_pretrained(save)
    assert all((weight_view(m) == 0).float().mean() == pytest.approx(0.6, abs=0.02) for m in decoder_linears(loaded).values())
    assert cli("eval.ppl", ["--model", str(save), "--dataset", tiny_corpus, "--seqlen", "32", "--max-windows", "4",
                            "--json", str(tmp_path / "ppl.json")]) == 0
    assert json.loads((tmp_path / "ppl.json").read_text())["ppl"] == pytest.approx(rep["ppl_pruned"], rel=1e-4)


def test_config_file_sets_crepe_params_and_flags_override_it(tiny_folder, tiny_corpus, tmp_path, cli):
    (tmp_path / "best.json").write_text(json.dumps({"crepe": {"gamma": 2.0, "kernel": 7, "alpha": 0.5}}))
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST,
            "--config", str(tmp_path / "best.json"), "--kernel", "3", "--report", str(tmp_path / "r.json")]
    assert cli("crepe.prune", argv) == 0
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
def test_bad_input_gives_one_line_exit_2_and_no_output_folder(extra, message, tiny_folder, tiny_corpus, tmp_path, cli, capsys):
    if any("{tmp}/nan" in e or "{tmp}/bloom" in e for e in extra):
        _corrupt_folders(tmp_path)
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", tiny_corpus, *FAST, *extra,
            "--save", str(tmp_path / "out")]
    assert cli("crepe.prune", argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("crepe.prune: error:") and message in errors[0], errors
    assert not (tmp_path / "out").exists()


def test_existing_save_folder_needs_overwrite_and_is_left_intact(tiny_folder, tiny_corpus, tmp_path, cli, capsys):
    """--overwrite replaces a folder crepe saved, never one with the user's own files."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("precious")
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST, "--save", str(tmp_path / "out")]
    assert cli("crepe.prune", argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli("crepe.prune", [*argv, "--overwrite"]) == 2
    assert "crepe did not write" in capsys.readouterr().err
    assert (tmp_path / "out" / "mine.txt").read_text() == "precious"
    saved = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST,
             "--save", str(tmp_path / "saved")]
    assert cli("crepe.prune", saved) == 0
    (tmp_path / "saved" / "stale.txt").write_text("from the first run")
    assert cli("crepe.prune", [*saved, "--method", "ria", "--overwrite"]) == 0
    assert not (tmp_path / "saved" / "stale.txt").exists()
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["pruning_config"]["config"]["method"] == "ria"


@pytest.mark.parametrize("offload", ["none", "disk"])
@pytest.mark.parametrize("where", ["source", "parent"])
def test_overwrite_never_deletes_the_model_being_read(where, offload, tiny_folder, tiny_corpus, tmp_path, cli, capsys):
    """A --save target that is the source model, or contains it, is refused before any work; the source stays."""
    parent = tmp_path / "models"
    shutil.copytree(tiny_folder, parent / "llama")
    (parent / "notes.txt").write_text("mine")
    before = sorted(p.name for p in (parent / "llama").iterdir())
    target = parent / "llama" if where == "source" else parent
    argv = ["--model", str(parent / "llama"), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST,
            "--offload", offload, "--save", str(target), "--overwrite"]
    assert cli("crepe.prune", argv) == 2
    assert "is or contains the model being pruned" in capsys.readouterr().err
    assert sorted(p.name for p in (parent / "llama").iterdir()) == before and (parent / "notes.txt").is_file()


def test_an_empty_save_path_is_refused(tiny_folder, tiny_corpus, cli, capsys):
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST, "--save", ""]
    assert cli("crepe.prune", argv) == 2
    assert "empty" in capsys.readouterr().err
