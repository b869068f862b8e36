"""Model cards of saved pruned folders: valid YAML front matter holding the measured figures."""

import json
import shutil

import pytest
import yaml
from tiny_models import FAST_PRUNE_ARGS as FAST

from crepe.output.card import (
    HUB_DATASETS,
    base_license,
    base_model_id,
    card_text,
    describe_target,
    read_front_matter,
)


def front_matter(path):
    text = path.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---", 2)[1]), text


def test_saved_folder_card_has_valid_front_matter_with_the_reported_figures(tiny_folder, tiny_corpus, tmp_path, cli):
    save = tmp_path / "tiny-24"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", tiny_corpus, *FAST,
            "--pattern", "2:4", "--method", "wanda", "--save", str(save)]
    assert cli("crepe.prune", argv) == 0
    report = json.loads((save / "pruning_report.json").read_text())
    meta, text = front_matter(save / "README.md")
    assert meta["library_name"] == "transformers"
    assert {"pruned", "sparsity-50", "2-of-4", "semi-structured", "wanda"} <= set(meta["tags"])
    (entry,) = meta["model-index"]
    assert entry["name"] == "tiny-24"
    (ppl,) = [m for r in entry["results"] for m in r["metrics"] if m["type"] == "perplexity"]
    assert ppl["value"] == pytest.approx(report["ppl_pruned"], rel=1e-4)
    assert f"{report['ppl_dense']:.3f}" in text and f"{report['ppl_pruned']:.3f}" in text
    assert f"```bash\n{report['provenance']['command']}\n```" in text


def test_zeroshot_rows_go_into_model_index_and_the_table():
    rows = lambda v: {"rows": [{"task": "wikivital_describe", "metric": "acc", "value": v, "stderr": 0.02, "n": 400,  # noqa: E731
                                "chance": 0.25}]}
    report = {"model": "smollm2-135m", "config": {"method": "crepe", "sparsity": 0.5, "pattern": "unstructured"},
              "ppl_dense": 14.2, "ppl_pruned": 35.6, "eval_protocol": "wikivital test", "realised_sparsity": 0.5,
              "zeroshot": {"dense": rows(0.61), "pruned": rows(0.42)}, "provenance": {"command": "python -m crepe.prune"}}
    text = card_text(report, "m")
    meta = yaml.safe_load(text.split("---", 2)[1])
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    values = {m["type"]: m["value"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert values == {"perplexity": 35.6, "acc": 0.42}
    assert "| wikivital_describe acc (n=400, chance 0.25) | 0.610 ± 0.020 | 0.420 ± 0.020 |" in text
    assert "weight update" not in text  # a record made before the update existed: mask-only
    report["config"]["resolved_update"] = "sweep-admm"
    assert "**crepe** method of the crepe toolkit and its **sweep-admm** weight update (" in card_text(report, "m")


def test_base_model_follows_aliases_hub_ids_and_a_pruned_folders_card(tmp_path):
    assert base_model_id("llama-2-7b") == "meta-llama/Llama-2-7b-hf"
    assert base_model_id("org/some-model") == "org/some-model"
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "README.md").write_text("---\nbase_model: org/base\n---\n# x\n")
    assert base_model_id(str(tmp_path)) == "org/base"
    assert read_front_matter(tmp_path / "missing.md") == {}


def test_describe_target_names_pattern_and_sparsity():
    assert describe_target({"method": "ria", "sparsity": 0.7, "pattern": "unstructured"})[0] == "70% unstructured"
    assert "4-of-8" in describe_target({"method": "ria", "sparsity": 0.5, "pattern": "4:8"})[1]


def test_a_saved_card_is_hub_ready_and_validates_offline_with_huggingface_hubs_parser(tiny_folder, tiny_corpus, tmp_path,
                                                                                       cli):
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.repocard_data import model_index_to_eval_results

    base = tmp_path / "base"
    shutil.copytree(tiny_folder, base)
    (base / "README.md").write_text("---\nbase_model: org/base\nlicense: other\nlicense_name: base-licence\n---\n# base\n")
    save = tmp_path / "pruned"
    argv = ["--model", str(base), "--calib-dataset", tiny_corpus, "--eval-dataset", tiny_corpus, *FAST, "--save", str(save)]
    assert cli("crepe.prune", argv) == 0
    report = json.loads((save / "pruning_report.json").read_text())
    card = ModelCard.load(save / "README.md", ignore_metadata_errors=False)
    meta = card.data.to_dict()
    assert (meta["base_model"], meta["base_model_relation"]) == ("org/base", "pruned")
    assert (meta["license"], meta["license_name"]) == ("other", "base-licence")
    assert (meta["pipeline_tag"], meta["library_name"]) == ("text-generation", "transformers")
    assert "datasets" not in meta and "text:" not in (save / "README.md").read_text().split("---", 2)[1]
    assert report["calibration"] in card.text  # the protocol string goes into the body
    name, (result,) = model_index_to_eval_results(meta["model-index"])
    assert name == "pruned" and (result.task_type, result.metric_type) == ("text-generation", "perplexity")
    assert result.metric_value == pytest.approx(report["ppl_pruned"], rel=1e-4)
    assert (result.dataset_type, result.dataset_name, result.dataset_split) == ("local", "corpus.txt", "test")
    assert ModelCardData(**meta).eval_results == card.data.eval_results  # the hub's own schema checks, offline


def _report(calib: str) -> dict:
    return {"model": "org/some-model", "config": {"method": "ria", "sparsity": 0.5, "pattern": "unstructured"},
            "options": {"calib_dataset": calib, "eval_dataset": "wikitext2", "eval_split": "test"},
            "calibration": f"dataset={calib} split=calibration", "ppl_pruned": 20.0, "realised_sparsity": 0.5}


def test_datasets_lists_hub_ids_only_and_model_index_names_the_hub_dataset():
    meta = yaml.safe_load(card_text(_report("c4"), "m").split("---", 2)[1])
    assert meta["datasets"] == [HUB_DATASETS["c4"][0]]
    (result,) = meta["model-index"][0]["results"]
    assert result["dataset"]["type"] == HUB_DATASETS["wikitext2"][0]
    assert result["dataset"]["config"] == HUB_DATASETS["wikitext2"][1]
    for local in ("wikivital", "text:/data/corpus.txt", "jsonl:/data/c.jsonl"):
        text = card_text(_report(local), "m")
        front, body = text.split("---", 2)[1:]
        assert "datasets" not in yaml.safe_load(front) and local not in front and local in body


def test_the_license_is_read_offline_from_the_hub_cache_and_a_gguf_header(tmp_path, monkeypatch):
    import huggingface_hub

    repo = tmp_path / "hub" / "models--org--base"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    (repo / "snapshots" / "abc" / "README.md").write_text("---\nlicense: llama2\n---\n")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert base_license("org/base") == {"license": "llama2"}
    assert base_license("org/not-cached") == {}
    assert base_license(str(tmp_path / "missing.gguf")) == {}
    gguf = pytest.importorskip("gguf")
    from crepe.models.loading import cache_root
    from crepe.models.offline import offline_gguf

    try:
        path = offline_gguf("smollm2-135m", cache_root())
    except ValueError:
        pytest.skip("the offline smollm2 GGUF is not installed")
    field = gguf.GGUFReader(str(path)).fields["general.license"]
    assert base_license("smollm2-135m") == {"license": field.contents()}
