import pytest
import torch

from crepe.vit.config import HeadPruneConfig, TCSConfig
from crepe.vit.surgery import prune_heads
from crepe.vit.tcs import (
    class_attention,
    gathered_linear,
    install_tcs,
    masked_linear,
    sample_patches,
    tcs_scores,
)

from .tiny import logits, tiny_deit, tiny_vit


def test_scores_follow_the_toast_equation_with_all_patches():
    g = torch.Generator().manual_seed(0)
    h, a = torch.randn(2, 5, 3, generator=g), torch.rand(2, 5, generator=g)
    s = tcs_scores(h, a, torch.arange(4), prefix=1, cls_weight=2.0)
    abar = a[:, 1:].mean(0)
    expected = 2 * h[:, 0].abs().mean(0) / 5 + (h[:, 1:].abs() * abar[None, :, None]).mean((0, 1)) * 4 / 5
    torch.testing.assert_close(s, expected)
    per_image = tcs_scores(h, a, torch.arange(4), prefix=1, per_image=True)
    assert per_image.shape == (2, 3)
    torch.testing.assert_close(per_image[1], tcs_scores(h[1:], a[1:], torch.arange(4), prefix=1))


def test_class_attention_averages_row_zero_over_heads():
    p = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(class_attention(p), p[:, :, 0, :].mean(1))


def test_patch_sample_size_and_generator_determinism():
    a = sample_patches(100, 0.02, torch.Generator().manual_seed(3))
    b = sample_patches(100, 0.02, torch.Generator().manual_seed(3))
    assert a.shape == (2,) and torch.equal(a, b) and int(a.max()) < 100
    assert sample_patches(10, 0.01, torch.Generator().manual_seed(0)).shape == (1,)
    assert torch.equal(sample_patches(4, 1.0, None), torch.arange(4))


@pytest.mark.parametrize("keep", [torch.tensor([0, 2, 5]), torch.tensor([[0, 1, 2], [3, 4, 5]])])
def test_masked_and_gathered_linear_agree(keep):
    lin = torch.nn.Linear(6, 4)
    x = torch.randn(2, 3, 6)
    torch.testing.assert_close(masked_linear(x, lin, keep), gathered_linear(x, lin, keep))


def test_ratio_zero_is_an_exact_no_op(model, pixels):
    before = logits(model, pixels)
    handle = install_tcs(model, TCSConfig(fc2_ratios=(0.0,), fc1_ratios=(0.0,)))
    assert handle.modules == {}
    assert torch.equal(before, logits(model, pixels))


@pytest.mark.parametrize("selection", ["batch", "image"])
def test_masked_and_dense_agree_with_fc2_tcs_and_head_pruning(pixels, selection):
    outs = []
    for mode in ("masked", "dense"):
        m = tiny_vit()
        prune_heads(m, HeadPruneConfig(0.5), dense=mode == "dense")
        install_tcs(m, TCSConfig(fc2_ratios=(0.5,), selection=selection, mode=mode, sample_ratio=0.2, seed=7))
        outs.append(logits(m, pixels))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-4, rtol=0)


def test_fc1_side_selection_masked_and_dense_agree(pixels):
    outs = [logits(_with_tcs(TCSConfig(fc1_ratios=(0.3,), fc2_ratios=(0.5,), mode=mode)), pixels)
            for mode in ("masked", "dense")]
    torch.testing.assert_close(outs[0], outs[1], atol=1e-4, rtol=0)


def _with_tcs(cfg, model=None):
    model = tiny_vit() if model is None else model
    install_tcs(model, cfg)
    return model


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_realised_sparsity_matches_request(pixels, ratio):
    model = tiny_vit()
    handle = install_tcs(model, TCSConfig(fc2_ratios=(ratio,), selection="image"))
    out = {}
    for i, module in handle.modules.items():
        module.fc2.register_forward_pre_hook(lambda mod, inp, i=i: out.__setitem__(i, inp[0]))
    logits(model, pixels)
    assert sorted(handle.modules) == [1, 2]  # block 0 skipped by default
    for i, module in handle.modules.items():
        keep = module.last_keep["fc2"]
        assert keep.shape == (6, round(64 * (1 - ratio)))
        zero_units = (out[i] == 0).all(dim=1)  # [B, C]: units zeroed for every token
        assert torch.equal(zero_units.sum(-1), torch.full((6,), 64 - keep.shape[1]))


@pytest.mark.parametrize("selection, changes", [("batch", True), ("image", False)])
def test_batch_mates_matter_only_for_per_batch_selection(selection, changes):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 1, 28, 28, generator=g)
    others = torch.randn(4, 1, 28, 28, generator=g) * 3
    cfg = TCSConfig(fc2_ratios=(0.75,), selection=selection, sample_ratio=1.0)
    model = _with_tcs(cfg)
    alone = logits(model, x[:1])
    with_mates = logits(model, torch.cat([x[:1], others]))[:1]
    assert (not torch.allclose(alone, with_mates, atol=1e-6)) == changes
    if not changes:
        torch.testing.assert_close(alone, with_mates, atol=1e-5, rtol=0)


def test_same_seed_same_selection_and_remove_restores(pixels):
    model = tiny_vit()
    dense = logits(model, pixels)
    handle = install_tcs(model, TCSConfig(fc2_ratios=(0.5,), sample_ratio=0.1, seed=3))
    first = logits(model, pixels)
    handle.reseed()
    torch.testing.assert_close(first, logits(model, pixels), atol=0, rtol=0)
    handle.remove()
    assert torch.equal(dense, logits(model, pixels))


def test_tcs_keeps_state_dict_keys_and_runs_on_deit(pixels):
    model = tiny_deit()
    keys = set(model.state_dict())
    handle = install_tcs(model, TCSConfig(fc2_ratios=(0.5,)))
    assert set(model.state_dict()) == keys
    assert logits(model, pixels).shape == (6, 5)
    assert handle.modules[1].prefix == 2
