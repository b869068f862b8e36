"""eval.speed: sparse twins give the dense outputs; the CLI times prefill, decode and matmuls."""

import json

import pytest
import torch
from tiny_models import tiny_model, tiny_windows

from crepe.evaluation.speed import pruned_random, sparse_copy, verdict
from crepe.methods.masks import is_valid_nm
from crepe.models.adapters import decoder_linears


def test_csr_twin_of_a_pruned_model_gives_the_same_logits():
    model = tiny_model("llama")
    for module in decoder_linears(model).values():
        module.weight.data[module.weight.abs() < module.weight.abs().median()] = 0
    twin = sparse_copy(model, torch.device("cpu"))
    assert sum(type(m).__name__ == "SparseLinear" for m in twin.modules()) == 14
    with torch.no_grad():
        torch.testing.assert_close(twin(tiny_windows()).logits, model(tiny_windows()).logits, rtol=1e-4, atol=1e-4)


def test_random_weights_have_the_requested_sparsity_or_pattern():
    w = pruned_random((64, 128), 0.9, False, torch.float32, torch.device("cpu"))
    assert (w == 0).float().mean().item() == pytest.approx(0.9, abs=1e-3)
    assert is_valid_nm(pruned_random((64, 128), 0.5, True, torch.float32, torch.device("cpu")), 2, 4)
    assert (verdict(1.5), verdict(0.5), verdict(1.0)) == ("pays", "does not pay", "break-even")


def test_cli_times_a_model_and_skips_gpu_rows_with_one_line(tiny_folder, tmp_path, cli, capsys):
    out = tmp_path / "speed.json"
    argv = ["--model", str(tiny_folder), "--prompt-len", "8", "--decode-tokens", "2", "--repeats", "1", "--json", str(out)]
    assert cli("eval.speed", argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {r["kind"] for r in rows} == {"prefill", "decode", "matmul"}
    assert all(r["ratio"] > 0 for r in rows)
    printed = capsys.readouterr().out
    assert "does not pay" in printed or "pays" in printed or "break-even" in printed
    if not torch.cuda.is_available():
        assert cli("eval.speed", ["--shape", "64x64", "--device", "cuda", "--repeats", "1"]) == 0
        assert capsys.readouterr().out.count("GPU rows skipped") == 1


def test_cli_leaves_autograd_on(cli):
    assert cli("eval.speed", ["--shape", "32x32", "--sparsity", "0.5", "--repeats", "1", "--device", "cpu"]) == 0
    assert torch.is_grad_enabled()


def test_cli_times_every_shape_at_every_token_count(cli, tmp_path):
    out = tmp_path / "speed.json"
    argv = ["--shape", "32x64,64x32", "--tokens", "16,1", "--sparsity", "0.5", "--repeats", "1", "--device", "cpu"]
    assert cli("eval.speed", [*argv, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["what"], r["tokens"]) for r in rows] == [("random 32x64", 16), ("random 32x64", 1),
                                                       ("random 64x32", 16), ("random 64x32", 1)]
    assert {r["dtype"] for r in rows} == {"float32"}
