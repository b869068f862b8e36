"""Streamed pruning (decoder layers read from disk one at a time) equals in-memory pruning bit for bit."""

import json
from pathlib import Path

import pytest
import torch
from tiny_models import TINY_CONFIGS, tiny_model, tiny_tokenizer, tiny_windows
from transformers import AutoModelForCausalLM

from crepe.config import AllocationConfig, PermuteConfig, PruneConfig, RepruneConfig
from crepe.engine.layerwise import run_layerwise
from crepe.evaluation.perplexity import layerwise_perplexity, perplexity
from crepe.methods.params import Pattern
from crepe.run.job import run
from crepe.run.options import RunOptions
from crepe.streaming.open import open_streamed

FAMILIES = sorted(TINY_CONFIGS)


def _save(folder: Path, model_type: str, dtype=torch.bfloat16) -> Path:
    model = tiny_model(model_type).to(dtype)
    model.save_pretrained(folder, max_shard_size="100KB")  # several shards, with an index
    tiny_tokenizer().save_pretrained(folder)
    return folder


def _opts(src: Path, corpus: str, **kw) -> dict:
    return {**dict(model=str(src), calib_dataset=corpus, eval_dataset=corpus, nsamples=4, seqlen=32, eval_seqlen=32,
                   max_eval_windows=4), **kw}


def _prune_both(tmp_path: Path, src: Path, corpus: str, cfg: PruneConfig) -> tuple[dict, dict, dict]:
    """Prune in memory and streamed: (state dict in memory, state dict streamed, the two run results)."""
    results = {}
    for offload in ("none", "disk"):
        results[offload] = run(RunOptions(prune=cfg, offload=offload, save=str(tmp_path / offload), **_opts(src, corpus)),
                               echo=lambda line: None)
    loaded = {k: AutoModelForCausalLM.from_pretrained(tmp_path / k).state_dict() for k in results}
    return loaded["none"], loaded["disk"], results



@pytest.mark.parametrize("model_type", FAMILIES)
def test_streamed_engine_pass_matches_in_memory_for_every_family(tmp_path, model_type):
    model = tiny_model(model_type)
    model.save_pretrained(tmp_path / "m", max_shard_size="100KB")
    streamed = open_streamed(tmp_path / "m")
    windows = tiny_windows()
    resident = run_layerwise(model, windows, (), lambda *a: False, keep_outputs=True, progress=False).hidden
    from_disk = run_layerwise(streamed, windows, (), lambda *a: False, keep_outputs=True, progress=False).hidden
    assert all(torch.equal(a, b) for a, b in zip(resident, from_disk))
    assert layerwise_perplexity(streamed, windows, progress=False) == perplexity(model, windows, progress=False)


@pytest.mark.parametrize("model_type", ["llama", "opt", "gpt2", "gemma2", "mixtral", "qwen2_moe"])
def test_streamed_prune_saves_the_same_weights_as_in_memory(tmp_path, tiny_corpus, model_type):
    src = _save(tmp_path / "src", model_type)
    a, b, results = _prune_both(tmp_path, src, tiny_corpus, PruneConfig(method="crepe"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {v.dtype for v in b.values() if v.is_floating_point()} == {torch.bfloat16}
    assert results["none"].report["ppl_pruned"] == results["disk"].report["ppl_pruned"]
    assert results["disk"].report["streamed"] and not results["none"].report["streamed"]


@pytest.mark.parametrize("cfg", [
    PruneConfig(method="magnitude"), PruneConfig(method="wanda"), PruneConfig(method="sparsegpt"),
    PruneConfig(method="ri"), PruneConfig(method="ria", pattern=Pattern(2, 4)),
    PruneConfig(method="crepe", pattern=Pattern(2, 4), permute=PermuteConfig()),
    PruneConfig(method="crepe", sparsity=0.6, allocation=AllocationConfig(method="owl")),
    PruneConfig(method="ria", sparsity=0.6, allocation=AllocationConfig(method="alpha")),
    PruneConfig(method="crepe", sparsity=0.6, repruning=RepruneConfig(scope="all"), update="none"),
    PruneConfig(method="crepe", update="sweep-admm"), PruneConfig(method="wanda", update="obs"),
    PruneConfig(method="ria", pattern=Pattern(2, 4), update="admm"),
], ids=lambda c: f"{c.method}-{c.pattern}-{c.allocation.method}-{'perm' if c.permute else ''}"
                 f"{'dsnot' if c.repruning else ''}-{c.update}")
def test_every_method_and_composition_streams_bit_identically(tmp_path, tiny_corpus, cfg):
    src = _save(tmp_path / "src", "llama")
    a, b, results = _prune_both(tmp_path, src, tiny_corpus, cfg)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert results["none"].report["ppl_pruned"] == results["disk"].report["ppl_pruned"]
    assert results["none"].report["per_layer_sparsity"] == results["disk"].report["per_layer_sparsity"]


def test_streamed_output_is_an_ordinary_sharded_folder(tmp_path, tiny_corpus):
    src = _save(tmp_path / "src", "llama")
    run(RunOptions(prune=PruneConfig(method="wanda"), offload="disk", save=str(tmp_path / "out"),
                   **_opts(src, tiny_corpus)), echo=lambda line: None)
    index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 3  # 2 decoder layers + the resident tensors
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["pruning_config"]["global_sparsity"] == pytest.approx(0.5)
    model, info = AutoModelForCausalLM.from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.dtype == torch.bfloat16
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_streamed_prune_never_holds_more_than_one_layer(tmp_path, tiny_corpus, monkeypatch):
    src = _save(tmp_path / "src", "llama")
    model = open_streamed(src)
    store = model.crepe_layer_store
    resident_layers = []
    original = store.load

    def spy(index, layer):
        layers = model.model.layers
        resident_layers.append(sum(any(p.device.type != "meta" for p in l.parameters()) for l in layers))
        original(index, layer)

    monkeypatch.setattr(store, "load", spy)
    run(RunOptions(prune=PruneConfig(), **_opts(src, tiny_corpus, eval_dataset="none")), model=model,
        tokenizer=tiny_tokenizer(), echo=lambda line: None)
    assert resident_layers and max(resident_layers) == 0


def test_eval_ppl_streamed_equals_in_memory(tmp_path, tiny_corpus, cli, capsys):
    src = _save(tmp_path / "src", "gpt2")
    lines = {}
    for offload in ("none", "disk"):
        assert cli("eval.ppl", ["--model", str(src), "--dataset", tiny_corpus, "--seqlen", "32", "--max-windows", "4",
                                "--offload", offload]) == 0
        lines[offload] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PPL")][0]
    assert lines["none"] == lines["disk"] and "layerwise" in lines["disk"]
