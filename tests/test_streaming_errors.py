"""Bad checkpoints and a full disk give one clear error and leave no partial output folder."""

import errno
import json

import pytest
import torch
from tiny_models import FAST_PRUNE_ARGS, tiny_model, tiny_tokenizer

import crepe.streaming.writer as writer


@pytest.fixture
def sharded(tmp_path):
    folder = tmp_path / "src"
    tiny_model("llama").to(torch.bfloat16).save_pretrained(folder, max_shard_size="100KB")
    tiny_tokenizer().save_pretrained(folder)
    return folder


def _error_lines(capsys) -> list[str]:
    """The CLI's error lines on stderr (progress bars aside); fails on a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("crepe.prune: error")]


def _prune(cli, folder, corpus, out, *extra):
    return cli("crepe.prune", ["--model", str(folder), "--offload", "disk", "--calib-dataset", corpus,
                               "--eval-dataset", "none", "--save", str(out), *FAST_PRUNE_ARGS, *extra])


def test_index_naming_a_missing_shard_is_one_line(cli, sharded, tiny_corpus, tmp_path, capsys):
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    missing = sorted(set(index["weight_map"].values()))[-1]
    (sharded / missing).unlink()
    assert _prune(cli, sharded, tiny_corpus, tmp_path / "out") == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "missing" in err[0] and missing in err[0]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_shard_truncated_mid_tensor_is_one_line(cli, sharded, tiny_corpus, tmp_path, capsys):
    shard = sorted(sharded.glob("model-*.safetensors"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 1000])
    assert _prune(cli, sharded, tiny_corpus, tmp_path / "out") == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "truncated" in err[0] and shard.name in err[0]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_too_little_free_space_is_refused_before_any_work(cli, sharded, tiny_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(writer.shutil, "disk_usage", lambda path: type("U", (), {"free": 10})())
    assert _prune(cli, sharded, tiny_corpus, tmp_path / "out") == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "not enough space" in err[0]
    assert not list(tmp_path.glob("*out*")) and not list(tmp_path.glob(".out*"))


def test_disk_full_while_writing_leaves_no_partial_folder(cli, sharded, tiny_corpus, tmp_path, capsys, monkeypatch):
    calls = []

    def full_disk(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, metadata=metadata)

    real = writer.save_file
    monkeypatch.setattr(writer, "save_file", full_disk)
    assert _prune(cli, sharded, tiny_corpus, tmp_path / "out") == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "no space left" in err[0]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_a_corrupt_layer_after_written_ones_leaves_no_temporary_shards(cli, tmp_path, tiny_corpus, capsys):
    """Layer 0 is written (in the background) before layer 1's NaN stops the run: nothing is left."""
    model = tiny_model("llama").to(torch.bfloat16)
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight[0, 0] = float("nan")
    folder = tmp_path / "src"
    model.save_pretrained(folder, max_shard_size="100KB")
    tiny_tokenizer().save_pretrained(folder)
    assert _prune(cli, folder, tiny_corpus, tmp_path / "out") == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "NaN" in err[0] and "layers.1." in err[0]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line(cli, tiny_folder, tiny_corpus, capsys):
    code = cli("crepe.prune", ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none",
                               "--device", "cuda", *FAST_PRUNE_ARGS])
    err = _error_lines(capsys)
    assert code == 2 and len(err) == 1 and "no CUDA device" in err[0]
