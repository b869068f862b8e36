"""Mixture-of-experts: every routed expert pruned with the statistics of the tokens routed to it,
routers and gates never pruned, streamed == in memory bit for bit, and honest accounting read back
from the saved folder."""

import math
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import (
    MOE_FAMILIES,
    save_tiny_folder,
    tiny_model,
    tiny_tokenizer,
    tiny_windows,
)

from crepe.config import PermuteConfig, PruneConfig
from crepe.engine.layerwise import run_layerwise
from crepe.methods.masks import is_valid_nm
from crepe.methods.params import Pattern
from crepe.methods.scorers import InputStats
from crepe.models.adapters import Adapter, get_adapter
from crepe.output.accounting import EXCLUDED
from crepe.prune.linear import prune_linear
from crepe.prune.model import EXPERT_FALLBACK, check_prunable, prune_model
from crepe.run.job import run
from crepe.run.options import RunOptions

ROUTER = re.compile(r"\.(gate|shared_expert_gate)\.weight$")  # routers and gates, as checkpoints name them
EXPERT = re.compile(r"\.experts\.\d+\.")


def _opts(src: Path, corpus: str, **kw) -> dict:
    return {**dict(model=str(src), calib_dataset=corpus, eval_dataset=corpus, nsamples=4, seqlen=32, eval_seqlen=32,
                   max_eval_windows=4), **kw}


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for shard in sorted(folder.glob("*.safetensors")):
        out.update(load_file(shard))
    return out


def _sparsity(t: torch.Tensor) -> float:
    return float((t == 0).sum()) / t.numel()


@pytest.mark.parametrize("pattern", [Pattern(), Pattern(2, 4)], ids=str)
@pytest.mark.parametrize("family", MOE_FAMILIES)
def test_every_expert_is_pruned_routers_are_not_and_streamed_equals_in_memory(tmp_path, tiny_corpus, family, pattern):
    src = save_tiny_folder(tmp_path / "src", family)
    source = _tensors(src)
    saved, reports = {}, {}
    for offload in ("none", "disk"):
        result = run(RunOptions(prune=PruneConfig(pattern=pattern), offload=offload, save=str(tmp_path / offload),
                                **_opts(src, tiny_corpus)), echo=lambda line: None)
        saved[offload], reports[offload] = _tensors(tmp_path / offload), result.report
    mem, disk = saved["none"], saved["disk"]
    assert mem.keys() == disk.keys() == source.keys()
    assert all(torch.equal(mem[k], disk[k]) for k in mem)  # streamed == in memory, bitwise
    experts = [k for k in mem if EXPERT.search(k)]
    routers = [k for k in mem if ROUTER.search(k)]
    assert len(experts) == 2 * 4 * 3 and routers  # 2 layers x 4 experts x gate/up/down
    for key in experts:  # every expert matrix, read back from the saved folder
        assert _sparsity(mem[key]) == pytest.approx(0.5), key
        assert not pattern.structured or is_valid_nm(mem[key], 2, 4), key
    assert all(torch.equal(mem[k], source[k]) for k in routers)  # routers and gates untouched
    for report in reports.values():
        assert math.isfinite(report["ppl_pruned"])
        assert report["realised_sparsity"] == pytest.approx(0.5)
        assert report["decoder_weights"]["read_from"] == "saved folder"
        assert len(report["decoder_weights"]["skipped"]) == len(routers)


def test_expert_statistics_come_from_the_tokens_routed_to_it_only():
    model = tiny_model("qwen3_moe")
    routed: list[tuple[torch.Tensor, torch.Tensor]] = []  # (hidden [T, H], top_k_index [T, k]) of layer 0

    def spy(module, args):
        routed.append((args[0].detach().clone(), args[1].clone()))

    seen = {}

    def record(index, layer, linears, stats):
        if index == 0:
            seen.update(stats)
        return False

    experts = model.model.layers[0].mlp.experts
    handle = experts.register_forward_pre_hook(spy)
    try:
        run_layerwise(model, tiny_windows(), {"sq_sum"}, record, progress=False)
    finally:
        handle.remove()
    hidden, top_k = routed[0]
    for e in range(4):
        x = hidden[(top_k == e).any(-1)].float()
        gate, up = (x @ experts.gate_up_proj.data[e].float().t()).chunk(2, dim=-1)
        for name, inputs in (("gate_proj", x), ("up_proj", x), ("down_proj", experts.act_fn(gate) * up)):
            stats = seen[f"mlp.experts.{e}.{name}"]
            assert stats.tokens == x.shape[0] < hidden.shape[0]
            torch.testing.assert_close(stats.sq_sum, inputs.pow(2).sum(0))


def _never_route_to(model: torch.nn.Module, expert: int) -> None:
    """Make every router skip ``expert``: its logit is -inf before the top-k (same renormalisation)."""
    def hook(module, args, out):
        logits = out[0].clone()
        logits[:, expert] = float("-inf")
        top, index = torch.softmax(logits.float(), dim=-1).topk(module.top_k, dim=-1)
        return logits, top / top.sum(-1, keepdim=True), index

    for layer in model.model.layers:
        layer.mlp.gate.register_forward_hook(hook)


def test_an_expert_without_routed_tokens_falls_back_to_magnitude_and_the_report_says_so(tiny_corpus):
    model = tiny_model("mixtral")
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    _never_route_to(model, 3)
    result = run(RunOptions(prune=PruneConfig(), **_opts(Path("unused"), tiny_corpus, eval_dataset="none")),
                 model=model, tokenizer=tiny_tokenizer(), echo=lambda line: None)
    fallback = result.report["expert_fallback"]
    assert fallback["rule"] == EXPERT_FALLBACK
    assert sorted(fallback["matrices"]) == sorted(f"layers.{i}.mlp.experts.3.{n}" for i in range(2)
                                                  for n in ("gate_proj", "up_proj", "down_proj"))
    for i in range(2):  # expert 3's matrices are exactly what magnitude pruning gives
        expected = dense[f"model.layers.{i}.mlp.experts.down_proj"][3].clone()
        prune_linear(expected, InputStats(), PruneConfig(method="magnitude"))
        assert torch.equal(model.model.layers[i].mlp.experts.down_proj.data[3], expected)


def test_the_accounting_counts_every_decoder_weight_and_names_the_skipped_ones(tmp_path, tiny_corpus):
    src = save_tiny_folder(tmp_path / "src", "qwen2_moe")
    report = run(RunOptions(prune=PruneConfig(method="wanda"), save=str(tmp_path / "out"),
                            **_opts(src, tiny_corpus, eval_dataset="none")), echo=lambda line: None).report
    saved = _tensors(tmp_path / "out")
    decoder = {k: v for k, v in saved.items() if k.startswith("model.layers.") and v.dim() >= 2}
    skipped = {k for k in decoder if ROUTER.search(k)}
    counted = [v for k, v in decoder.items() if k not in skipped]
    accounting = report["decoder_weights"]
    assert accounting["counted"] == sum(v.numel() for v in counted)
    assert accounting["zeros"] == sum(int((v == 0).sum()) for v in counted)
    assert set(accounting["skipped"]) == skipped and accounting["excluded"] == EXCLUDED
    assert report["realised_sparsity"] == accounting["zeros"] / accounting["counted"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert all(name in card for name in skipped)
    import json
    assert json.loads((tmp_path / "out" / "config.json").read_text())["pruning_config"]["skipped"] == sorted(skipped)


@pytest.mark.parametrize("offload", ["none", "disk"])
def test_a_run_that_leaves_decoder_weights_unpruned_fails_and_saves_nothing(tmp_path, tiny_corpus, monkeypatch,
                                                                            offload):
    src = save_tiny_folder(tmp_path / "src", "mixtral")
    monkeypatch.setattr(Adapter, "expert_matrices", lambda self, layer: {})  # experts unseen, as before MoE support
    with pytest.raises(ValueError, match=r"realised sparsity 0\.\d+ over the \d+ prunable decoder weights is below "
                                         r"the requested 0\.5000"):
        run(RunOptions(prune=PruneConfig(method="wanda"), offload=offload, save=str(tmp_path / "out"),
                       **_opts(src, tiny_corpus, eval_dataset="none")), echo=lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_moe_adapters_own_the_expert_layout():
    for family in MOE_FAMILIES:
        model = tiny_model(family)
        adapter = get_adapter(model)
        linears = adapter.linears(model.model.layers[0])
        assert not any(adapter.is_skipped(name) for name in linears)
        target = check_prunable(model, PruneConfig())
        roles = {t.name.rpartition(".")[2]: t.role for t in target.per_layer[0].values() if t.expert}
        assert roles == {"gate_proj": "gate", "up_proj": "up", "down_proj": "down"}
        shape = model.model.layers[0].mlp.experts.gate_up_proj.shape
        assert target.per_layer[0]["mlp.experts.1.up_proj"].weight.shape == (shape[1] // 2, shape[2])
    with pytest.raises(ValueError, match="--permute is not supported on mixtral"):
        prune_model(tiny_model("mixtral"), tiny_windows(), PruneConfig(pattern=Pattern(2, 4), permute=PermuteConfig()))


def test_the_target_of_a_plan_is_its_weighted_mean_not_the_global_sparsity(tmp_path, tiny_corpus):
    import json

    from crepe.config import AllocationConfig

    src = save_tiny_folder(tmp_path / "src", "llama")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"layers.0": 0.25, "default": 0.5}))
    cfg = PruneConfig(method="wanda", allocation=AllocationConfig(method="file", path=str(plan)))
    report = run(RunOptions(prune=cfg, **_opts(src, tiny_corpus, eval_dataset="none")), echo=lambda line: None).report
    accounting = report["decoder_weights"]
    assert accounting["targeted_sparsity"] == pytest.approx(0.375)  # two equal layers at 0.25 and 0.5
    assert accounting["sparsity"] == pytest.approx(0.375, abs=0.01)


def test_one_shot_pruning_from_cached_statistics_uses_the_same_fallback():
    from crepe.prune.cached import collect_input_stats, prune_from_stats

    model = tiny_model("mixtral")
    expected = model.model.layers[1].mlp.experts.gate_up_proj.data[3].clone()
    _never_route_to(model, 3)
    stats = collect_input_stats(model, tiny_windows(), progress=False)
    assert stats["layers.1.mlp.experts.3.up_proj"].tokens == 0 < stats["layers.1.mlp.experts.2.up_proj"].tokens
    prune_from_stats(model, stats, PruneConfig(method="wanda"))
    rows = expected.shape[0] // 2
    for part in (expected[:rows], expected[rows:]):  # gate rows, up rows: each its own matrix
        prune_linear(part, InputStats(), PruneConfig(method="magnitude"))
    assert torch.equal(model.model.layers[1].mlp.experts.gate_up_proj.data[3], expected)
