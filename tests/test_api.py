"""crepe.oneshot and crepe.save: the Python API shares crepe.prune's code path; recipes round-trip through both."""

import json

import pytest
import torch
import yaml
from tiny_models import SAMPLE_TEXT
from transformers import AutoModelForCausalLM, AutoTokenizer

import crepe
from crepe.config import PruneConfig
from crepe.methods.masks import is_valid_nm
from crepe.models.adapters import decoder_linears, weight_view
from crepe.output.recipe import read_recipe

SMALL = dict(num_calibration_samples=4, max_seq_length=32)
CLI_SMALL = ["--nsamples", "4", "--seqlen", "32", "--eval-dataset", "none"]


def weights(model):
    return {name: weight_view(m).clone() for name, m in decoder_linears(model).items()}


def test_oneshot_on_a_folder_saves_model_card_and_recipe_and_matches_the_cli(tiny_folder, tiny_corpus, tmp_path, cli):
    model = crepe.oneshot(str(tiny_folder), dataset=tiny_corpus, sparsity=0.6, output_dir=str(tmp_path / "api"), **SMALL)
    summary = model.pruning_summary
    assert summary["realised_sparsity"] == pytest.approx(0.6, abs=0.01) and summary["ppl_pruned"] is None
    assert (tmp_path / "api" / "README.md").is_file()
    recipe = yaml.safe_load((tmp_path / "api" / "recipe.yaml").read_text())
    assert recipe["prune"]["sparsity"] == 0.6 and recipe["run"]["nsamples"] == 4 and recipe["run"]["calib_dataset"] == tiny_corpus
    assert summary["provenance"]["command"].startswith("python -c 'from crepe import oneshot; oneshot(model=\"")
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--sparsity", "0.6", *CLI_SMALL,
            "--save", str(tmp_path / "cli")]
    assert cli("crepe.prune", argv) == 0
    cli_model = AutoModelForCausalLM.from_pretrained(tmp_path / "cli")
    api_weights, cli_weights = weights(model), weights(cli_model)
    assert all(torch.equal(api_weights[k], cli_weights[k]) for k in api_weights)
    cli_report = json.loads((tmp_path / "cli" / "pruning_report.json").read_text())
    assert cli_report["config"] == summary["config"]


def test_oneshot_takes_a_module_and_its_tokenizer_with_an_nm_pattern(tiny_folder, tiny_corpus):
    module = AutoModelForCausalLM.from_pretrained(tiny_folder)
    model, summary = crepe.oneshot(module, AutoTokenizer.from_pretrained(tiny_folder), method="wanda", pattern="2:4",
                                   dataset=tiny_corpus, return_summary=True, **SMALL)
    assert model is module and summary["config"]["pattern"] == "2:4" and summary["config"]["sparsity"] == 0.5
    assert all(is_valid_nm(weight_view(m), 2, 4) for m in decoder_linears(model).values())


def test_a_saved_recipe_repeats_the_run_through_the_api_and_the_cli(tiny_folder, tiny_corpus, tmp_path, cli):
    first = crepe.oneshot(str(tiny_folder), method="ria", sparsity=0.7, dataset=tiny_corpus, alpha=0.5,
                          output_dir=str(tmp_path / "a"), **SMALL)
    recipe = read_recipe(tmp_path / "a")
    resolved = PruneConfig(method="ria", sparsity=0.7)
    assert (recipe["prune"]["update"], recipe["prune"]["group"]) == (resolved.resolved_update, resolved.resolved_group)
    again, summary = crepe.oneshot(str(tiny_folder), recipe=str(tmp_path / "a" / "recipe.yaml"), return_summary=True)
    assert summary["config"]["crepe"]["alpha"] == 0.5 and summary["config"]["method"] == "ria"
    assert all(torch.equal(w, weights(again)[k]) for k, w in weights(first).items())
    assert cli("crepe.prune", ["--model", str(tiny_folder), "--recipe", str(tmp_path / "a"), "--save", str(tmp_path / "b")]) == 0
    assert read_recipe(tmp_path / "b")["prune"] == read_recipe(tmp_path / "a")["prune"]
    assert all(torch.equal(w, weights(AutoModelForCausalLM.from_pretrained(tmp_path / "b"))[k]) for k, w in weights(first).items())


def test_recipe_with_conflicting_settings_is_refused(tiny_folder, tiny_corpus, tmp_path, cli, capsys):
    recipe = {"prune": {"method": "magnitude", "sparsity": 0.5}, "run": {"calib_dataset": tiny_corpus}}
    with pytest.raises(ValueError, match="prune.sparsity"):
        crepe.oneshot(str(tiny_folder), sparsity=0.6, recipe=recipe)
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    assert cli("crepe.prune", ["--model", str(tiny_folder), "--recipe", str(tmp_path / "r.json"), "--nsamples", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run.nsamples" in err


@pytest.mark.parametrize("bad, message", [({"colour": "red"}, "unknown oneshot options"),
                                          ({"recipe": {"prune": {}, "extra": 1}}, "unknown recipe keys"),
                                          ({"recipe": "/no/such/recipe.yaml"}, "recipe file not found")])
def test_bad_api_input_raises_one_clear_value_error(tiny_folder, bad, message):
    with pytest.raises(ValueError, match=message):
        crepe.oneshot(str(tiny_folder), **bad)


def test_crepe_oneshot_stays_the_function_after_every_submodule_is_imported():
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(crepe.__path__, "crepe."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    assert callable(crepe.oneshot) and crepe.oneshot.__module__ == "crepe.run.api"



def _text_parts(tmp_path):
    """Two texts and the text:PATH corpus that holds them joined as in-memory texts are (a blank line)."""
    words = SAMPLE_TEXT.split()
    parts = [" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2:])]
    (tmp_path / "joined.txt").write_text("\n\n".join(parts))
    return parts, f"text:{tmp_path / 'joined.txt'}"


@pytest.mark.parametrize("kind", ["datasets.Dataset", "list of strings"])
def test_oneshot_calibrates_on_texts_in_memory_as_on_the_same_corpus_file(kind, tiny_folder, tmp_path):
    parts, corpus = _text_parts(tmp_path)
    if kind == "datasets.Dataset":
        datasets = pytest.importorskip("datasets")
        data = datasets.Dataset.from_dict({"text": parts, "id": [0, 1]})
    else:
        data = parts
    model = crepe.oneshot(str(tiny_folder), dataset=data, sparsity=0.5, **SMALL)
    assert isinstance(model, torch.nn.Module) and model.pruning_summary["options"]["calib_dataset"].startswith("memory:")
    from_file = crepe.oneshot(str(tiny_folder), dataset=corpus, sparsity=0.5, **SMALL)
    assert all(torch.equal(w, weights(from_file)[k]) for k, w in weights(model).items())


def test_oneshot_takes_token_rows_as_the_calibration_windows_themselves(tiny_folder, tiny_corpus):
    datasets = pytest.importorskip("datasets")
    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    ids = tokenizer(SAMPLE_TEXT)["input_ids"]
    rows = torch.tensor(ids[: 4 * 40]).view(4, 40)
    as_tensor = crepe.oneshot(str(tiny_folder), dataset=rows, **SMALL)
    as_dataset = crepe.oneshot(str(tiny_folder), dataset=datasets.Dataset.from_dict({"input_ids": rows.tolist()}), **SMALL)
    cut = crepe.oneshot(str(tiny_folder), dataset=rows[:, :32], **SMALL)  # only the first seqlen tokens count
    assert isinstance(as_tensor, torch.nn.Module)
    for other in (as_dataset, cut):
        assert all(torch.equal(w, weights(other)[k]) for k, w in weights(as_tensor).items())


def test_save_pretrained_after_oneshot_keeps_the_record_and_crepe_save_writes_the_whole_folder(tiny_folder, tiny_corpus,
                                                                                            tmp_path):
    module = AutoModelForCausalLM.from_pretrained(tiny_folder)
    model = crepe.oneshot(module, dataset=tiny_corpus, method="ria", pattern="2:4", **SMALL)
    model.save_pretrained(tmp_path / "plain")
    record = json.loads((tmp_path / "plain" / "config.json").read_text())["pruning_config"]
    assert record["tool"] == "crepe" and record["config"]["method"] == "ria" and record["sparsity_structure"] == "2:4"
    assert record["global_sparsity"] == pytest.approx(model.pruning_summary["realised_sparsity"])
    assert crepe.save(model, tmp_path / "full") == tmp_path / "full"
    assert {"README.md", "recipe.yaml", "pruning_report.json", "tokenizer.json"} <= {p.name for p in (tmp_path / "full").iterdir()}
    assert read_recipe(tmp_path / "full")["prune"]["update"] == record["config"]["resolved_update"]
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "full")
    assert all(torch.equal(w, weights(saved)[k]) for k, w in weights(model).items())
    assert json.loads((tmp_path / "full" / "pruning_report.json").read_text())["decoder_weights"]["read_from"]
    again = crepe.oneshot(str(tiny_folder), recipe=str(tmp_path / "full"))
    assert all(torch.equal(w, weights(again)[k]) for k, w in weights(model).items())
    with pytest.raises(ValueError, match="crepe.save saves a model that crepe.oneshot pruned"):
        crepe.save(AutoModelForCausalLM.from_pretrained(tiny_folder), tmp_path / "never")
    assert not (tmp_path / "never").exists()


class _FakeModifier:  # what an llm-compressor modifier object looks like from here: its module's name
    __module__ = "llmcompressor.modifiers.obcq.base"


@pytest.mark.parametrize("recipe", [
    {"sparsity_stage": {"sparsity_modifiers": {"SparseGPTModifier": {"sparsity": 0.5, "mask_structure": "2:4"}}}},
    "sparsity_stage:\n  run_type: oneshot\n  sparsity_modifiers:\n    WandaPruningModifier: {sparsity: 0.5}\n",
    _FakeModifier(), [_FakeModifier()], "SparseGPTModifier(sparsity=0.5)"], ids=["dict", "yaml", "object", "list", "text"])
def test_an_llmcompressor_recipe_gets_one_not_supported_line_naming_crepe_recipes(recipe, tiny_folder):
    with pytest.raises(ValueError, match="not supported: llm-compressor .*crepe reads crepe recipes") as info:
        crepe.oneshot(str(tiny_folder), recipe=recipe)
    assert "\n" not in str(info.value)
    if isinstance(recipe, dict):
        assert "SparseGPTModifier -> method: sparsegpt" in str(info.value)


@pytest.mark.parametrize("bad, message", [
    ({"dataset": 3.5}, "unsupported calibration data float; pass a dataset name"),
    ({"dataset": [1, "a"]}, "mixes types"),
    ({"dataset": torch.rand(2, 8)}, "integer tensor"),
    ({"dataset": []}, "unsupported calibration data list"),
    ({"model": 42}, "oneshot's model must be a name, hub id or path, or a loaded torch.nn.Module")])
def test_unsupported_calibration_data_and_models_give_one_value_error_line(bad, message, tiny_folder):
    with pytest.raises(ValueError, match=message) as info:
        crepe.oneshot(**{"model": str(tiny_folder), **bad})
    assert "\n" not in str(info.value)
