"""A saved pruned folder stays a plain transformers checkpoint: no quantizer, no sparsity_config,
every key loaded, and the pruning record survives a dtype change and a re-save."""

import json

import pytest
import torch
from tiny_models import tiny_model, tiny_tokenizer, tiny_windows
from transformers import AutoModelForCausalLM

from crepe.config import PruneConfig
from crepe.methods.params import Pattern
from crepe.models.adapters import decoder_linears, weight_view
from crepe.output.folder import pruning_record, save_pruned
from crepe.prune.model import prune_model

COMPRESSED_TENSORS_FIELDS = ("format", "global_sparsity", "sparsity_structure", "targets", "ignore")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = tiny_model("llama")
    cfg = PruneConfig(method="wanda", sparsity=0.5, pattern=Pattern(2, 4))
    summary = prune_model(model, tiny_windows(), cfg, progress=False)
    record = pruning_record(cfg.to_dict(), summary.realised_sparsity, str(cfg.pattern))
    path = save_pruned(model, tiny_tokenizer(), tmp_path_factory.mktemp("plain") / "m", record, report={"model": "tiny"})
    return path, model, record


def test_record_mirrors_compressed_tensors_names_and_nothing_looks_quantized(saved):
    path, _, record = saved
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config and "sparsity_config" not in config
    assert all(field in config["pruning_config"] for field in COMPRESSED_TENSORS_FIELDS)
    assert config["pruning_config"]["format"] == "dense" and config["pruning_config"]["sparsity_structure"] == "2:4"


def test_folder_loads_with_no_missing_or_unexpected_keys_and_no_quantizer(saved):
    path, original, _ = saved
    model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert not getattr(model, "is_quantized", False) and getattr(model, "hf_quantizer", None) is None
    for name, module in decoder_linears(model).items():
        assert torch.equal(weight_view(module), weight_view(decoder_linears(original)[name]))


def test_half_and_resave_keep_the_record_and_the_zeros(saved, tmp_path):
    path, original, record = saved
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).half()
    model.save_pretrained(tmp_path / "half")
    again, info = AutoModelForCausalLM.from_pretrained(tmp_path / "half", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert again.config.pruning_config == json.loads(json.dumps(record))
    assert "quantization_config" not in json.loads((tmp_path / "half" / "config.json").read_text())
    for name, module in decoder_linears(again).items():
        assert weight_view(module).dtype == torch.float16
        assert torch.equal(weight_view(module) == 0, weight_view(decoder_linears(original)[name]) == 0)
