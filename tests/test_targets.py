"""The model target: adapter-owned projection roles per family, per-projection overrides that act on
exactly the linear they name, unknown roles refused, and one snapshot that restores a permuted model."""

import pytest
import torch
from tiny_models import MOE_FAMILIES, TINY_CONFIGS, tiny_model, tiny_windows
from transformers import AutoConfig, AutoModelForCausalLM

from crepe.config import PermuteConfig, PruneConfig
from crepe.methods.params import CrepeParams, Pattern
from crepe.models.adapters import model_target, weight_view
from crepe.prune.cached import collect_input_stats, prune_from_stats
from crepe.prune.model import check_prunable, prune_model

# every linear of one decoder layer -> its role, per family (the names each family really uses)
ROLES = {
    "llama": {"self_attn.q_proj": "q", "self_attn.k_proj": "k", "self_attn.v_proj": "v", "self_attn.o_proj": "o",
              "mlp.gate_proj": "gate", "mlp.up_proj": "up", "mlp.down_proj": "down"},
    "opt": {"self_attn.q_proj": "q", "self_attn.k_proj": "k", "self_attn.v_proj": "v", "self_attn.out_proj": "o",
            "fc1": "up", "fc2": "down"},
    "gpt2": {"attn.c_attn": "qkv", "attn.c_proj": "o", "mlp.c_fc": "up", "mlp.c_proj": "down"},
    "gpt_neox": {"attention.query_key_value": "qkv", "attention.dense": "o", "mlp.dense_h_to_4h": "up",
                 "mlp.dense_4h_to_h": "down"},
    "phi3": {"self_attn.qkv_proj": "qkv", "self_attn.o_proj": "o", "mlp.gate_up_proj": "gate_up", "mlp.down_proj": "down"},
}
ATTENTION_OUTPUT = {"opt": "self_attn.out_proj", "gpt2": "attn.c_proj"}


def tiny_phi3() -> torch.nn.Module:
    config = AutoConfig.for_model("phi3", vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                  pad_token_id=0)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()


def build(family: str) -> torch.nn.Module:
    return tiny_phi3() if family == "phi3" else tiny_model(family)


@pytest.mark.parametrize("family", list(ROLES))
def test_adapters_give_every_linear_of_a_family_its_role_and_key(family):
    target = model_target(build(family))
    assert {name: t.role for name, t in target.per_layer[1].items()} == ROLES[family]
    assert sorted(target.linears) == sorted(f"layers.{i}.{name}" for i in range(2) for name in ROLES[family])
    assert all(key == f"layers.{t.layer}.{t.name}" for key, t in target.linears.items())
    assert set(target.roles) == set(ROLES[family].values())
    assert all(t.in_attention == (t.role in ("q", "k", "v", "o", "qkv")) for t in target.linears.values())


@pytest.mark.parametrize("family", sorted(set(TINY_CONFIGS) - set(ROLES) - set(MOE_FAMILIES)))
def test_llama_like_families_use_the_llama_roles(family):
    assert {name: t.role for name, t in model_target(tiny_model(family)).per_layer[0].items()} == ROLES["llama"]


@pytest.mark.parametrize("family", list(ATTENTION_OUTPUT))
@pytest.mark.parametrize("pattern", [Pattern(), Pattern(2, 4)])
def test_an_override_changes_the_mask_of_the_attention_output_projection_and_only_it(family, pattern):
    model = tiny_model(family)
    stats = collect_input_stats(model, tiny_windows(), progress=False)
    target = model_target(model)
    saved = target.snapshot()

    def masks(crepe: CrepeParams) -> dict[str, torch.Tensor]:
        target.restore(saved)
        prune_from_stats(model, stats, PruneConfig(method="crepe", sparsity=0.5, pattern=pattern, crepe=crepe, update="none"))
        return {key: weight_view(t.module) == 0 for key, t in target.linears.items()}

    base = masks(CrepeParams())
    overridden = masks(CrepeParams(overrides={"o": {"alpha": 0.0, "beta": 1.0}}))  # column term only
    changed = {key for key in base if not torch.equal(base[key], overridden[key])}
    assert changed == {f"layers.{i}.{ATTENTION_OUTPUT[family]}" for i in range(2)}


def test_an_override_role_the_model_lacks_is_refused_naming_its_roles():
    model = tiny_model("gpt2")
    cfg = PruneConfig(method="crepe", crepe=CrepeParams(overrides={"q": {"alpha": 2.0}}))
    with pytest.raises(ValueError, match="gpt2 has no projection with role 'q'; its roles are o, up, down, qkv"):
        check_prunable(model, cfg)
    with pytest.raises(ValueError, match="its roles are q, k, v, o, up, down"):
        check_prunable(tiny_model("opt"), PruneConfig(crepe=CrepeParams(overrides={"gate": {"alpha": 2.0}})))
    with pytest.raises(ValueError, match="override projection role 'fc1'"):  # not a role of any adapter
        CrepeParams(overrides={"fc1": {"alpha": 2.0}})


@pytest.mark.parametrize("family", ["opt", "gpt2"])
def test_one_snapshot_restores_everything_a_physical_permutation_moves(family):
    model = tiny_model(family)
    for module in model.modules():  # biases that are not all zero, so moving them shows
        if getattr(module, "bias", None) is not None:
            module.bias.data.normal_(generator=torch.Generator().manual_seed(1))
    target = model_target(model)
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    saved = target.snapshot()
    cfg = PruneConfig(method="ria", sparsity=0.5, pattern=Pattern(2, 4), permute=PermuteConfig())
    summary = prune_model(model, tiny_windows(), cfg, progress=False, target=target)
    assert summary.physical  # MLP producers' rows and biases were permuted
    moved = [k for k, v in model.state_dict().items() if k.endswith("bias") and not torch.equal(v, dense[k])]
    assert moved
    target.restore(saved)
    assert all(torch.equal(v, dense[k]) for k, v in model.state_dict().items())
