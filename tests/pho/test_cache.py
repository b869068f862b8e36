"""The statistics cache: one dense pass, the right numbers, a safetensors round trip keyed by its inputs."""

import pytest
import torch
from tiny_models import tiny_model, tiny_windows

from crepe.models.adapters import decoder_linears
from crepe.prune.cached import collect_input_stats
from pho.cache import (
    CacheKey,
    cache_path,
    collect_layer_data,
    load_cache,
    load_or_collect,
    save_cache,
    token_subsample,
)

KEY = CacheKey("tiny", "w", "text:x", 4, 32, 0, False, 16)


def test_cached_norms_equal_the_engines_and_all_cached_rows_recover_them():
    model, windows = tiny_model(), tiny_windows(4, 32)
    expected = collect_input_stats(model, windows, progress=False)
    data = collect_layer_data(model, windows, x_tokens=windows.numel(), seed=0, progress=False)
    assert set(data) == set(decoder_linears(model)) == set(expected)
    for name, d in data.items():
        assert torch.allclose(d.sq_sum, expected[name].sq_sum)
        assert d.x.shape == (windows.numel(), d.sq_sum.numel())
        assert torch.allclose(d.x.pow(2).sum(0), d.sq_sum, rtol=1e-4, atol=1e-5)


def test_token_subsample_is_small_sorted_distinct_and_seeded():
    a, b = token_subsample(1000, 64, seed=1), token_subsample(1000, 64, seed=1)
    assert torch.equal(a, b) and a.numel() == 64 and a.unique().numel() == 64 and torch.equal(a, a.sort().values)
    assert not torch.equal(a, token_subsample(1000, 64, seed=2))
    assert token_subsample(10, 64, seed=0).numel() == 10


def test_subsampled_rows_are_the_same_positions_for_every_linear_of_a_layer():
    model, windows = tiny_model(), tiny_windows(4, 32)
    data = collect_layer_data(model, windows, x_tokens=16, seed=0, progress=False)
    q, k = data["layers.0.self_attn.q_proj"].x, data["layers.0.self_attn.k_proj"].x
    assert q.shape == (16, 64) and torch.equal(q, k)  # q and k read the same normalised hidden states


def test_save_then_load_round_trips_and_a_different_key_is_refused(tmp_path):
    data = collect_layer_data(tiny_model(), tiny_windows(4, 32), x_tokens=16, seed=0, progress=False)
    path = cache_path(tmp_path, KEY)
    save_cache(path, KEY, data)
    back = load_cache(path, KEY)
    assert set(back) == set(data)
    assert all(torch.equal(back[n].sq_sum, data[n].sq_sum) and torch.equal(back[n].x, data[n].x) for n in data)
    with pytest.raises(ValueError, match="was built for"):
        load_cache(path, CacheKey("tiny", "w", "text:x", 4, 32, 1, False, 16))
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read statistics cache"):
        load_cache(path, KEY)


def test_key_digest_changes_with_every_field_and_the_second_call_hits_the_cache(tmp_path):
    assert KEY.digest() != CacheKey("tiny", "w", "text:x", 4, 32, 0, False, 0).digest()
    assert KEY.digest() != CacheKey("tiny", "v", "text:x", 4, 32, 0, False, 16).digest()
    model, windows = tiny_model(), tiny_windows(4, 32)
    first, hit1 = load_or_collect(model, windows, KEY, tmp_path, progress=False)
    second, hit2 = load_or_collect(model, windows, KEY, tmp_path, progress=False)
    assert (hit1, hit2) == (False, True)
    assert all(torch.equal(first[n].x, second[n].x) for n in first)
    with pytest.raises(ValueError, match="x_tokens"):
        CacheKey("tiny", "w", "d", 1, 2, 0, False, -1)
