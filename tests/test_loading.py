import pytest
import torch
from tiny_models import save_tiny_folder, tiny_windows

from crepe.models.loading import HUB_ALIASES, load_model, resolve


def test_short_names_map_to_hub_ids_and_unknown_ids_go_to_the_hub():
    assert resolve("llama-2-7b").location == "meta-llama/Llama-2-7b-hf" == HUB_ALIASES["llama-2-7b"]
    assert resolve("meta-llama/Llama-2-7b-hf").kind == "hub"


def test_offline_alias_points_at_the_bundled_gguf():
    source = resolve("smollm2-135m")
    assert source.kind == "gguf" and source.location.endswith(".gguf")


def test_missing_or_invalid_local_paths_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="model file not found"):
        resolve(str(tmp_path / "x.gguf"))
    with pytest.raises(ValueError, match="no config.json"):
        resolve(str(tmp_path))
    with pytest.raises(ValueError, match="not found"):
        resolve("./no/such/folder")


def test_local_folder_loads_in_eval_mode_with_its_tokenizer(tmp_path):
    folder = save_tiny_folder(tmp_path / "m")
    model, tok = load_model(str(folder))
    assert not model.training and tok.bos_token == "<s>"
    assert torch.isfinite(model(tiny_windows()).logits).all()


def test_a_hub_model_that_cannot_be_loaded_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot load model 'nobody/no such model!'.*hub"):
        load_model("nobody/no such model!")  # an invalid repo id fails at once, with or without a network
