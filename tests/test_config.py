import pytest

from crepe.config import PruneConfig, load_crepe_params
from crepe.methods.params import CrepeParams, Pattern


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5, float("nan")])
def test_sparsity_outside_unit_interval_is_rejected(sparsity):
    with pytest.raises(ValueError, match="sparsity must be in"):
        PruneConfig(sparsity=sparsity)


@pytest.mark.parametrize("text", ["4:4", "5:4", "0:4", "2:x", "24"])
def test_invalid_nm_patterns_are_rejected(text):
    with pytest.raises(ValueError):
        Pattern.parse(text)


def test_nm_with_a_different_sparsity_is_rejected():
    with pytest.raises(ValueError, match="2/4"):
        PruneConfig(sparsity=0.6, pattern=Pattern(2, 4))


def test_unknown_method_lists_the_choices():
    with pytest.raises(ValueError, match="wanda"):
        PruneConfig(method="obc")


@pytest.mark.parametrize("bad", [dict(kernel=4), dict(kernel=0), dict(gamma=-1), dict(alpha=0, beta=0, gamma=0),
                                 dict(nbr_form="x"), dict(overrides={"zz": {"gamma": 1}}),
                                 dict(overrides={"q": {"kernel": 2}})])
def test_invalid_crepe_params_are_rejected(bad):
    with pytest.raises(ValueError):
        CrepeParams(**bad)


def test_overrides_apply_per_projection_type():
    p = CrepeParams(gamma=0.5, overrides={"down": {"gamma": 2.0, "kernel": 5}})
    assert p.for_projection("down").gamma == 2.0 and p.for_projection("down").kernel == 5
    assert p.for_projection("q") is p


def test_config_round_trips_through_a_dict():
    cfg = PruneConfig(method="crepe", sparsity=0.5, pattern=Pattern(2, 4), crepe=CrepeParams(gamma=1.0, kernel=5))
    assert PruneConfig.from_dict(cfg.to_dict()) == cfg


def test_crepe_params_load_from_a_report_or_a_bare_file(tmp_path):
    cfg = PruneConfig(crepe=CrepeParams(gamma=0.7, kernel=7))
    import json

    (tmp_path / "report.json").write_text(json.dumps({"config": cfg.to_dict()}))
    (tmp_path / "bare.json").write_text(json.dumps({"gamma": 0.7, "kernel": 7}))
    assert load_crepe_params(tmp_path / "report.json") == cfg.crepe == load_crepe_params(tmp_path / "bare.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        load_crepe_params(tmp_path / "bad.json")
