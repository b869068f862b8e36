import json
import subprocess
import sys

import pytest
import torch

from crepe.vit.__main__ import main
from crepe.vit.surgery import load_pruned

from .tiny import logits, tiny_deit


@pytest.fixture
def deit_dir(tmp_path):
    """A tiny three-channel DeiT folder (not the MNIST layout, so the CLI skips accuracy)."""
    folder = tmp_path / "deit"
    tiny_deit(channels=3).save_pretrained(folder)
    return folder


def test_help_works():
    out = subprocess.run([sys.executable, "-m", "crepe.vit", "--help"], capture_output=True, text=True, check=True)
    assert "--head-sparsity" in out.stdout and "--fc2-ratios" in out.stdout


def test_bad_ratio_is_a_clear_error(deit_dir, capsys):
    assert main(["--model", str(deit_dir), "--head-sparsity", "1.2"]) == 2
    assert "[0, 1)" in capsys.readouterr().err


def test_cli_reports_macs_latency_and_saves_a_loadable_model(deit_dir, tmp_path, capsys):
    report, saved = tmp_path / "r.json", tmp_path / "pruned"
    rc = main(["--model", str(deit_dir), "--head-sparsity", "0.5", "--fc2-ratios", "0.5", "--dense",
               "--latency-batches", "1", "--report", str(report), "--save", str(saved)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "MACs/image" in text and "latency batch   1" in text
    data = json.loads(report.read_text())
    assert data["macs_after"] < data["macs_before"] and data["accuracy_before"] is None
    assert set(data["latency"][0]) >= {"dense", "masked", "repacked", "repacked_over_dense"}
    model = load_pruned(saved)
    assert model.deit.layers[1].attention.q_proj.out_features == 16
    x = torch.randn(2, 3, 28, 28)
    assert logits(model, x).shape == (2, 5)
