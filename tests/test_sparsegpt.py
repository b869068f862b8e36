import pytest
import torch

from crepe.methods.masks import is_valid_nm, unstructured_mask
from crepe.methods.params import Pattern
from crepe.methods.sparsegpt import sparsegpt_prune


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


def test_linears_that_read_one_input_share_its_hessian_computed_once(monkeypatch):
    """q/k/v (and gate/up) read the same tensor: the engine computes X^T X once per batch for them,
    and every linear still gets its full statistics, equal to a per-linear X^T X of its own input."""
    from tiny_models import tiny_model, tiny_windows

    from crepe.engine import statistics as engine_stats
    from crepe.engine.layerwise import run_layerwise

    calls = []
    key, fn = engine_stats._PARTS["hessian"]
    monkeypatch.setitem(engine_stats._PARTS, "hessian", (key, lambda x: calls.append(1) or fn(x)))
    model, windows = tiny_model(), tiny_windows(n=4)
    inputs, seen = {}, {}
    handles = [m.register_forward_hook(lambda mod, inp, out, n=n: inputs.setdefault(n, []).append(inp[0].detach()))
               for n, m in model.model.layers[0].named_modules() if isinstance(m, torch.nn.Linear)]

    def record(index, layer, linears, stats):
        if index == 0:
            seen.update(stats)
        return False

    run_layerwise(model, windows, {"sq_sum", "hessian"}, record, batch_size=2, progress=False)
    for h in handles:
        h.remove()
    assert len(calls) == 2 * 4 * 2  # 2 layers x 4 distinct inputs (qkv, o, gate/up, down) x 2 batches
    for name, stats in seen.items():
        x = torch.cat([t.reshape(-1, t.shape[-1]) for t in inputs[name][:2]])  # the collect pass's 2 batches
        torch.testing.assert_close(stats.hessian, x.t() @ x)
        assert stats.tokens == x.shape[0]
    assert torch.equal(seen["self_attn.q_proj"].hessian, seen["self_attn.v_proj"].hessian)
