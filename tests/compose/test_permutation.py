"""Channel permutation for N:M: search invariants on random scores, and model-level equivalence of
the physically permuted, gathered and masked-in-place forms (also after save and load)."""

import dataclasses

import pytest
import torch
from tiny_models import tiny_model, tiny_tokenizer, tiny_windows
from transformers import AutoModelForCausalLM

from crepe.compose.permutation import (
    find_permutation,
    inverse_permutation,
    kept_score,
    permuted_nm_mask,
    snake_reallocation,
)
from crepe.compose.permuted_linears import PermutedLinear, load_permuted
from crepe.config import PermuteConfig, PruneConfig
from crepe.methods.masks import is_valid_nm, nm_mask
from crepe.methods.params import Pattern
from crepe.models.adapters import decoder_linears, weight_view
from crepe.output.folder import pruning_record, save_pruned
from crepe.prune.model import prune_model


def _scores(rows: int, cols: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(rows, cols, generator=g) * torch.rand(cols, generator=g).pow(3)


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (1, 4)])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("block", [0, 4])
def test_permutation_never_lowers_the_kept_score_and_is_a_permutation(n, m, seed, block):
    s = _scores(24, 64, seed)
    perm = find_permutation(s, n, m, PermuteConfig(block_groups=block))
    assert torch.equal(perm.sort().values, torch.arange(64))
    assert kept_score(s, n, m, perm) >= kept_score(s, n, m)


def test_permutation_gains_on_structured_scores_and_refinement_adds_to_reallocation():
    s = _scores(64, 128, 7)
    base, snake = kept_score(s, 2, 4), kept_score(s, 2, 4, snake_reallocation(s, 4))
    refined = kept_score(s, 2, 4, find_permutation(s, 2, 4))
    assert base < snake <= refined


def test_identity_is_kept_when_no_order_keeps_more():
    s = torch.ones(8, 16)  # every order keeps the same score
    assert torch.equal(find_permutation(s, 2, 4), torch.arange(16))


def test_permuted_mask_prunes_exact_nm_groups_in_permuted_order():
    s = _scores(16, 32, 3)
    perm = find_permutation(s, 2, 4)
    mask = permuted_nm_mask(s, 2, 4, perm)
    assert torch.equal(mask[:, perm], nm_mask(s[:, perm], 2, 4))
    assert int(mask.sum()) == 16 * 32 // 2
    assert torch.equal(inverse_permutation(perm)[perm], torch.arange(32))


def test_search_returns_on_the_device_of_the_scores():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        assert find_permutation(_scores(8, 16, 0).to(device), 2, 4).device.type == device


def test_width_not_divisible_by_m_is_rejected():
    with pytest.raises(ValueError, match="multiple of 4"):
        find_permutation(torch.rand(4, 10), 2, 4)


def _pruned(model_type: str, method: str, physical: bool, pattern=Pattern(2, 4), update: str | None = None,
            dtype: torch.dtype = torch.float32):
    model = tiny_model(model_type).to(dtype)
    cfg = PruneConfig(method=method, sparsity=pattern.n / pattern.m, pattern=pattern,
                      permute=PermuteConfig(physical=physical), update=update)
    return model, prune_model(model, tiny_windows(), cfg, progress=False)


@pytest.mark.parametrize("method", ["wanda", "ria", "crepe", "magnitude"])
def test_permutation_keeps_at_least_the_score_of_plain_nm_in_every_linear(method):
    plain = prune_model(tiny_model(), tiny_windows(), PruneConfig(method=method, sparsity=0.5, pattern=Pattern(2, 4), update="none"),
                        progress=False)
    _, permuted = _pruned("llama", method, physical=True, update="none")  # kept scores: mask-only
    for key, result in plain.linears.items():
        assert permuted.linears[key].kept_score_fraction >= result.kept_score_fraction - 1e-12
    assert permuted.kept_score_fraction > plain.kept_score_fraction


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "opt", "gemma2"])
@pytest.mark.parametrize("method", ["crepe", "sparsegpt"])
def test_physically_permuted_model_computes_what_the_masked_in_place_model_computes(model_type, method):
    """In float64: the permuted MLP sums in another order, and in float32 that rounding (1e-7 in the
    next layer's inputs) can flip a near-tied choice later (a mask inside ADMM, a permutation)."""
    physical, summary = _pruned(model_type, method, physical=True, dtype=torch.float64)
    masked, _ = _pruned(model_type, method, physical=False, dtype=torch.float64)
    assert summary.physical  # the MLP consumer of every layer was realised physically
    with torch.no_grad():
        torch.testing.assert_close(physical(tiny_windows()).logits, masked(tiny_windows()).logits, rtol=1e-4, atol=1e-4)
    assert next(physical.parameters()).dtype == torch.float64
    for key in summary.physical:
        assert is_valid_nm(weight_view(decoder_linears(physical)[key]), 2, 4)


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_saved_permuted_model_loads_plain_and_gathered_with_the_masked_models_outputs(tmp_path, model_type):
    model, summary = _pruned(model_type, "ria", physical=True, pattern=Pattern(4, 8))
    masked, _ = _pruned(model_type, "ria", physical=False, pattern=Pattern(4, 8))
    cfg = PruneConfig(method="ria", sparsity=0.5, pattern=Pattern(4, 8), permute=PermuteConfig())
    out = save_pruned(model, tiny_tokenizer(), tmp_path / "m", pruning_record(cfg.to_dict(), summary.realised_sparsity, "4:8"),
                      permutations=summary.gathered_permutations())
    plain = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    gathered = load_permuted(out, dtype=torch.float32)
    swapped = [m for m in gathered.modules() if isinstance(m, PermutedLinear)]
    assert len(swapped) == len(summary.gathered_permutations()) > 0
    assert all(is_valid_nm(m.weight, 4, 8) for m in swapped)  # stored N:M valid: ready for sparse kernels
    windows = tiny_windows()
    with torch.no_grad():
        expected = masked(windows).logits
        torch.testing.assert_close(plain(windows).logits, expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(gathered(windows).logits, expected, rtol=1e-4, atol=1e-4)
    assert plain.config.pruning_config["config"]["permute"] == dataclasses.asdict(PermuteConfig())
    assert plain.config.pruning_config["permutations"]["file"] == "permutations.safetensors"


def test_permutation_needs_an_nm_pattern():
    with pytest.raises(ValueError, match="N:M"):
        PruneConfig(sparsity=0.5, permute=PermuteConfig())
