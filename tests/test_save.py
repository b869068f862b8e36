import json

import pytest
import torch
from tiny_models import tiny_model, tiny_tokenizer, tiny_windows
from transformers import AutoModelForCausalLM

from crepe.config import PruneConfig
from crepe.models.adapters import decoder_linears, weight_view
from crepe.output.folder import pruning_record, save_pruned
from crepe.prune.model import prune_model


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_saved_model_reloads_with_the_same_zeros_outputs_and_record(tmp_path, model_type):
    model = tiny_model(model_type)
    cfg = PruneConfig(method="wanda", sparsity=0.6)
    summary = prune_model(model, tiny_windows(), cfg, progress=False)
    out = save_pruned(model, tiny_tokenizer(), tmp_path / "pruned", pruning_record(cfg.to_dict(), summary.realised_sparsity, "unstructured"),
                      report={"ppl": 1.0})
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    for name, module in decoder_linears(loaded).items():
        original = weight_view(decoder_linears(model)[name])
        assert torch.equal(weight_view(module) == 0, original == 0)
    with torch.no_grad():
        torch.testing.assert_close(loaded(tiny_windows()).logits, model(tiny_windows()).logits)
    record = json.loads((out / "config.json").read_text())["pruning_config"]
    assert record["config"]["method"] == "wanda" and record["global_sparsity"] == pytest.approx(0.6, abs=0.01)
    assert (out / "pruning_report.json").is_file()


def test_existing_folder_is_kept_without_overwrite(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="--overwrite"):
        save_pruned(tiny_model(), None, target, {})
    assert (target / "keep.txt").read_text() == "x"


def test_failed_save_leaves_no_partial_folder(tmp_path, monkeypatch):
    model = tiny_model()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model, "save_pretrained", broken)
    with pytest.raises(OSError):
        save_pruned(model, None, tmp_path / "out", {})
    assert list(tmp_path.iterdir()) == []
