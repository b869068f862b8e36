"""crepe.oneshot: the Python API shares crepe.prune's code path; recipes round-trip through both."""

import json

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

import crepe
from crepe.methods.masks import is_valid_nm
from crepe.models.adapters import decoder_linears, weight_view
from crepe.output.recipe import read_recipe

SMALL = dict(num_calibration_samples=4, max_seq_length=32)
CLI_SMALL = ["--nsamples", "4", "--seqlen", "32", "--eval-dataset", "none"]


def weights(model):
    return {name: weight_view(m).clone() for name, m in decoder_linears(model).items()}


def test_oneshot_on_a_folder_saves_model_card_and_recipe_and_matches_the_cli(tiny_folder, tiny_corpus, tmp_path, cli):
    model, summary = crepe.oneshot(str(tiny_folder), dataset=tiny_corpus, sparsity=0.6, output_dir=str(tmp_path / "api"), **SMALL)
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
                                   dataset=tiny_corpus, **SMALL)
    assert model is module and summary["config"]["pattern"] == "2:4" and summary["config"]["sparsity"] == 0.5
    assert all(is_valid_nm(weight_view(m), 2, 4) for m in decoder_linears(model).values())


def test_a_saved_recipe_repeats_the_run_through_the_api_and_the_cli(tiny_folder, tiny_corpus, tmp_path, cli):
    first, _ = crepe.oneshot(str(tiny_folder), method="ria", sparsity=0.7, dataset=tiny_corpus, alpha=0.5,
                             output_dir=str(tmp_path / "a"), **SMALL)
    again, summary = crepe.oneshot(str(tiny_folder), recipe=str(tmp_path / "a" / "recipe.yaml"))
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
