import copy

import pytest
import torch

from crepe.vit.config import HeadPruneConfig
from crepe.vit.heads import (
    coupled_scores,
    head_dim_masks,
    median_score,
    top_indices,
    whole_head_masks,
)
from crepe.vit.surgery import compute_head_masks, load_pruned, prune_heads, save_pruned

from .tiny import logits, tiny_deit, tiny_vit


def test_median_score_is_the_distance_to_the_column_median():
    w = torch.randn(3, 8, 10, generator=torch.Generator().manual_seed(0))
    for h in range(3):
        med = w[h].median(dim=0).values
        expected = torch.stack([torch.linalg.vector_norm(w[h, i] - med) for i in range(8)])
        torch.testing.assert_close(median_score(w)[h], expected)


def test_coupled_scores_concatenate_q_with_k_and_v_with_o_transposed():
    g = torch.Generator().manual_seed(0)
    wq, wk, wv, wo = (torch.randn(8, 8, generator=g) for _ in range(4))
    qk, vo = coupled_scores(wq, wk, wv, wo, heads=2, score="l1")
    assert qk.shape == vo.shape == (2, 4)
    torch.testing.assert_close(qk[1, 2], wq[6].abs().sum() + wk[6].abs().sum())
    torch.testing.assert_close(vo[0, 3], wv[3].abs().sum() + wo[:, 3].abs().sum())


def test_top_indices_break_ties_towards_the_lower_index():
    assert top_indices(torch.tensor([1.0, 2.0, 2.0, 2.0]), 2).tolist() == [1, 2]


def test_every_head_keeps_the_same_count():
    g = torch.Generator().manual_seed(0)
    qk, vo = head_dim_masks(torch.rand(4, 16, generator=g), torch.rand(4, 16, generator=g), keep=5)
    assert qk.sum(-1).tolist() == [5] * 4 and vo.sum(-1).tolist() == [5] * 4


def test_whole_head_masks_keep_entire_heads():
    qk, vo = whole_head_masks(torch.tensor([[1.0, 1.0], [5.0, 5.0], [2.0, 2.0]]), torch.ones(3, 2), 2)
    assert qk.tolist() == [[False, False], [True, True], [True, True]] and torch.equal(qk, vo)


def test_ratio_zero_is_an_exact_no_op(model, pixels):
    before = logits(model, pixels)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    prune_heads(model, HeadPruneConfig(0.0), dense=True)
    assert torch.equal(before, logits(model, pixels))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.75])
def test_masks_are_tied_and_realised_sparsity_matches_request(model, sparsity):
    prune_heads(model, HeadPruneConfig(sparsity))
    for i, layer in enumerate(model.vit.layers):
        att = layer.attention
        q_alive = (att.q_proj.weight != 0).any(1)
        k_alive = (att.k_proj.weight != 0).any(1)
        v_alive = (att.v_proj.weight != 0).any(1)
        o_alive = (att.o_proj.weight != 0).any(0)
        assert torch.equal(q_alive, k_alive) and torch.equal(v_alive, o_alive)
        per_head = q_alive.view(4, -1).sum(-1)
        expected = 8 if i == 0 else round(8 * (1 - sparsity))  # block 0 skipped by default
        assert per_head.tolist() == [expected] * 4
        assert torch.equal(att.q_proj.bias != 0, q_alive)


@pytest.mark.parametrize("mode", ["dim", "head"])
@pytest.mark.parametrize("score", ["median", "l1", "l2"])
def test_masked_and_repacked_heads_agree(pixels, mode, score):
    masked, dense = tiny_vit(), tiny_vit()
    cfg = HeadPruneConfig(0.5, score=score, mode=mode)
    prune_heads(masked, cfg)
    prune_heads(dense, cfg, dense=True)
    torch.testing.assert_close(logits(masked, pixels), logits(dense, pixels), atol=1e-5, rtol=0)
    assert dense.vit.layers[1].attention.q_proj.out_features == 16
    assert dense.vit.layers[0].attention.q_proj.out_features == 32


def test_rescaled_scale_is_an_explicit_choice_that_changes_outputs(pixels):
    a, b = tiny_vit(), tiny_vit()
    prune_heads(a, HeadPruneConfig(0.5), dense=True)
    prune_heads(b, HeadPruneConfig(0.5, scale="rescaled"), dense=True)
    assert a.vit.layers[1].attention.scaling == pytest.approx(8**-0.5)
    assert b.vit.layers[1].attention.scaling == pytest.approx(4**-0.5)
    assert not torch.allclose(logits(a, pixels), logits(b, pixels))


def test_repacked_model_saves_and_loads_back_with_its_shapes(tmp_path, pixels):
    model = tiny_vit()
    prune_heads(model, HeadPruneConfig(0.5, mode="head", skip_blocks=()), dense=True)
    save_pruned(model, tmp_path)
    loaded = load_pruned(tmp_path)
    assert loaded.config.pruning_config["format"] == "repacked"
    assert loaded.vit.layers[0].attention.num_attention_heads == 2
    torch.testing.assert_close(logits(loaded, pixels), logits(model, pixels), atol=0, rtol=0)


def test_deit_adapter_prunes_and_repacks(pixels):
    masked, dense = tiny_deit(), tiny_deit()
    prune_heads(masked, HeadPruneConfig(0.5))
    prune_heads(dense, HeadPruneConfig(0.5), dense=True)
    torch.testing.assert_close(logits(masked, pixels), logits(dense, pixels), atol=1e-5, rtol=0)


def test_unsupported_models_fail_with_the_supported_list():
    with pytest.raises(ValueError, match="supported: .*ViTForImageClassification"):
        compute_head_masks(torch.nn.Linear(2, 2), HeadPruneConfig(0.5))


def test_head_pruning_does_not_modify_a_deep_copy_source(model):
    original = copy.deepcopy(model.state_dict())
    clone = copy.deepcopy(model)
    prune_heads(clone, HeadPruneConfig(0.5))
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())
