import pytest

from crepe.vit.config import (
    HeadPruneConfig,
    TCSConfig,
    ViTPruneConfig,
    keep_count,
    per_block,
)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_ratios_outside_unit_interval_are_rejected(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        HeadPruneConfig(sparsity=bad)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        TCSConfig(fc2_ratios=(0.1, bad))


@pytest.mark.parametrize("kwargs", [{"mode": "foo"}, {"score": "gm2"}, {"scale": "half"}])
def test_unknown_head_choices_are_rejected_with_the_options(kwargs):
    with pytest.raises(ValueError, match="unknown .* choose one of"):
        HeadPruneConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"mode": "sparse"}, {"selection": "token"}, {"sample_ratio": 0.0},
                                    {"cls_weight": -1.0}, {"skip_blocks": (-1,)}])
def test_bad_tcs_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TCSConfig(**kwargs)


def test_config_round_trips_through_a_dict():
    cfg = ViTPruneConfig(HeadPruneConfig(0.5, score="l1"), TCSConfig(fc2_ratios=(0.0, 0.5), selection="image"), 2)
    assert ViTPruneConfig.from_dict(cfg.to_dict()) == cfg


def test_keep_count_follows_toast_truncation():
    assert keep_count(64, 0.9) == 6
    assert keep_count(10, 0.3) == 7
    assert keep_count(8, 0.0) == 8
    assert keep_count(4, 0.99) == 1


def test_per_block_broadcasts_and_skips():
    assert per_block((0.5,), 3, (0,), "r") == [0.0, 0.5, 0.5]
    assert per_block((), 2, (), "r") == [0.0, 0.0]
    with pytest.raises(ValueError, match="3 blocks"):
        per_block((0.1, 0.2), 3, (), "r")
