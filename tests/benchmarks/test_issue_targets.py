"""benchmarks.targets judges issue 22's targets from records alone: misses are named with their margin."""

import json

import pytest

from benchmarks import headline_cells, targets
from benchmarks.common import record


def _cell(folder, label: str, setting: str, wikivital: float, unseen: float) -> None:
    folder.mkdir(exist_ok=True)
    rec = record({"cell": label}, ppl={"wikivital": wikivital, "python-reference": unseen / 2, "python-docstrings": unseen * 2},
                 prune_cpu_seconds=1.0, calibration="c", eval={})
    (folder / f"{headline_cells.cell_name(label, setting)}.json").write_text(json.dumps(rec))


def test_a_cell_the_default_loses_is_named_with_its_margin(tmp_path):
    for label, (wiki, unseen) in {headline_cells.DEFAULT_ROW: (30.0, 40.0), "ADMM-Grad": (31.0, 50.0), "ALPS": (29.0, 60.0)}.items():
        _cell(tmp_path, label, "2:4", wiki, unseen)
    _cell(tmp_path, headline_cells.DEFAULT_ROW, "0.7", 1.0, 1.0)  # no baselines at 70%: not judged
    met, misses = targets.beaten_cells(targets._cells(tmp_path))
    assert met == 2 and misses == ["wikivital 2:4: 30.00 against ALPS's 29.00 (+3.45%)"]
    assert targets.unseen_margins(targets._cells(tmp_path)) == {"2:4": pytest.approx(40 / 50 - 1)}


def test_mask_only_crepe_is_compared_with_ria_on_the_calibration_text_and_the_unseen_mean(tmp_path):
    _cell(tmp_path, "crepe mask-only (--update none)", "4:8", 50.0, 55.0)
    _cell(tmp_path, "RIA (mask only)", "4:8", 52.0, 54.0)
    assert targets.mask_only_against_ria(targets._cells(tmp_path)) == [
        ("4:8", "wikivital 50.00 against 52.00", True),
        ("4:8", f"unseen mean {55.0:.2f} against {54.0:.2f}", False)]


def test_cost_ratios_are_the_medians_of_the_alternating_prunes(tmp_path):
    rec = record({}, seconds={"SparseGPT": [10.0, 30.0, 11.0], headline_cells.DEFAULT_ROW: [12.0, 13.0, 99.0]})
    (tmp_path / "2-4.json").write_text(json.dumps(rec))
    assert targets.cost_ratios(tmp_path) == {"2:4": pytest.approx(13.0 / 11.0)}
    two = record({}, layer_seconds={"SparseGPT": [5.0, 10.0], headline_cells.DEFAULT_ROW: [6.0, 13.0]})
    (tmp_path / "0.7__2layers.json").write_text(json.dumps(two))
    assert targets.later_layer_ratios(tmp_path) == {headline_cells.DEFAULT_ROW: {"70%": pytest.approx(1.3)}}


def test_draws_are_judged_on_the_geometric_mean_of_the_seeds_with_both_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(headline_cells, "result_dir", lambda model, nsamples=16, seed=0: tmp_path / f"s{seed}")
    alps = headline_cells.SECOND_MODEL_SEED_ROWS[0]
    for seed, (a, d) in enumerate([(20.0, 22.0), (20.0, 18.0)]):
        _cell(tmp_path / f"s{seed}", alps, "2:4", a, a)
        _cell(tmp_path / f"s{seed}", headline_cells.DEFAULT_ROW, "2:4", d, d)
    _cell(tmp_path / "s2", headline_cells.DEFAULT_ROW, "2:4", 1.0, 1.0)  # no ALPS on this draw: left out
    seeds, means, lost = targets.draw_means(headline_cells.SECOND_MODEL, (alps, headline_cells.DEFAULT_ROW))
    assert seeds == [0, 1]
    assert lost == [f"{text} 2:4 seed 0" for text in ("wikivital", "python-reference", "python-docstrings")]  # 22 > 20

    assert means["2:4"]["wikivital"] == pytest.approx(((22 * 18) ** 0.5, 20.0))


def test_mask_only_draws_are_judged_on_the_geometric_mean_of_the_seeds_with_both_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(headline_cells, "result_dir", lambda model, nsamples=16, seed=0: tmp_path / f"s{seed}")
    crepe, ria = "crepe mask-only (--update none)", "RIA (mask only)"
    for seed, (c, r) in enumerate([(50.0, 40.0), (40.0, 60.0)]):  # crepe loses seed 0, wins seed 1 and the mean
        _cell(tmp_path / f"s{seed}", crepe, "4:8", c, c)
        _cell(tmp_path / f"s{seed}", ria, "4:8", r, r)
    _cell(tmp_path / "s2", crepe, "4:8", 1.0, 1.0)  # no RIA on this draw: left out
    _cell(tmp_path / "s0", crepe, "2:4", 1.0, 1.0)  # one draw only: not judged
    _cell(tmp_path / "s0", ria, "2:4", 2.0, 2.0)
    seeds, means, single = targets.mask_only_over_draws()
    mean_c, mean_r = (50.0 * 40.0) ** 0.5, (40.0 * 60.0) ** 0.5
    assert seeds == [0, 1]
    assert means == [("4:8", f"wikivital {mean_c:.2f} against {mean_r:.2f}", True),
                     ("4:8", f"unseen mean {mean_c:.2f} against {mean_r:.2f}", True)]
    assert [ok for *_, ok in single] == [False, False, True, True]
