import pytest
import torch

from crepe.config import Pattern
from crepe.masks import is_valid_nm, unstructured_mask
from crepe.sparsegpt import sparsegpt_prune


def _problem(out=32, inp=64, tokens=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(inp, inp, generator=g) / inp**0.5
    x = torch.randn(tokens, inp, generator=g) @ (torch.eye(inp) + mix)  # correlated inputs
    return torch.randn(out, inp, generator=g), x


@pytest.mark.parametrize("pattern,sparsity", [(Pattern(), 0.5), (Pattern(), 0.7), (Pattern(2, 4), 0.5), (Pattern(4, 8), 0.5)])
def test_sparsegpt_hits_the_requested_sparsity_and_pattern(pattern, sparsity):
    w, x = _problem()
    new, mask = sparsegpt_prune(w, x.t() @ x, sparsity, pattern, blocksize=32)
    assert (new == 0).sum() == mask.sum() == round(w.numel() * sparsity)
    if pattern.structured:
        assert is_valid_nm(new, pattern.n, pattern.m)


def test_obs_update_reconstructs_outputs_better_than_masking_alone():
    w, x = _problem()
    new, mask = sparsegpt_prune(w, x.t() @ x, 0.5, blocksize=16)
    err_obs = (x @ (w - new).t()).pow(2).sum()
    err_mask_only = (x @ (w * mask).t()).pow(2).sum()  # same mask, no update
    err_magnitude = (x @ (w * unstructured_mask(w.abs(), 0.5, "layer")).t()).pow(2).sum()
    assert err_obs < 0.8 * err_mask_only and err_obs < err_magnitude


def test_dead_inputs_are_zeroed_and_handled():
    w, x = _problem()
    x[:, 3] = 0
    new, _ = sparsegpt_prune(w, x.t() @ x, 0.5, blocksize=32)
    assert torch.isfinite(new).all() and (new[:, 3] == 0).all()


def test_blocksize_must_hold_whole_nm_groups():
    w, x = _problem()
    with pytest.raises(ValueError, match="multiple of M"):
        sparsegpt_prune(w, x.t() @ x, 0.5, Pattern(4, 8), blocksize=12)
