import pytest

from crepe.vit.config import HeadPruneConfig
from crepe.vit.macs import (
    deit_spec,
    model_macs,
    spec_from_model,
    toast_head_keep,
    vit_macs,
)
from crepe.vit.surgery import prune_heads

from .tiny import tiny_vit


def test_mac_counter_reproduces_the_published_deit_figures():
    small = deit_spec("small")
    assert vit_macs(small).gmacs == pytest.approx(4.599, abs=5e-4)
    assert vit_macs(small, toast_head_keep(small, 0.9)).gmacs == pytest.approx(3.144, abs=5e-4)
    released = vit_macs(small, toast_head_keep(small, 0.9), fc1_ratios=[0.0] * 11 + [0.3],
                        fc2_ratios=[0.0] * 10 + [0.9, 0.9])
    assert released.gmacs == pytest.approx(2.8997, abs=5e-5)
    assert vit_macs(deit_spec("tiny")).gmacs == pytest.approx(1.254, abs=5e-4)
    assert vit_macs(deit_spec("base")).gmacs == pytest.approx(17.564, abs=5e-4)


def test_mac_counter_rejects_wrong_length_schedules():
    with pytest.raises(ValueError, match="12 blocks"):
        vit_macs(deit_spec("small"), fc2_ratios=[0.5, 0.5])


@pytest.mark.parametrize("dense", [False, True])
def test_model_macs_match_the_analytic_head_pruned_count(dense):
    model = tiny_vit()
    spec = spec_from_model(model)
    assert model_macs(model).total == vit_macs(spec).total
    prune_heads(model, HeadPruneConfig(0.75), dense=dense)
    assert model_macs(model).total == pytest.approx(vit_macs(spec, toast_head_keep(spec, 0.75)).total)
