"""The headline table's rendering, without a prune: rows not run at a setting are named, not dashed."""

import dataclasses
import json

import pytest

from benchmarks import headline, headline_cells, headline_table
from benchmarks.common import record


def _cell(tmp_path, label: str, setting: str, ppl: float, cpu: float) -> None:
    rec = record({"cell": label}, ppl={"wikivital": ppl, "python-reference": 2 * ppl}, prune_cpu_seconds=cpu,
                 calibration="c", eval={"wikivital": "w", "python-reference": "p"})
    (tmp_path / f"{headline_cells.cell_name(label, setting)}.json").write_text(json.dumps(rec))


def test_rows_without_a_record_are_named_under_their_block(tmp_path):
    _cell(tmp_path, "SparseGPT", "2:4", 50.0, 10.0)
    _cell(tmp_path, "crepe default (--update admm-grad)", "2:4", 40.0, 15.0)
    text = headline_table.table(tmp_path)
    assert "| SparseGPT | 50.00 | 100.00 | 100.00 | 1.00 |" in text
    assert "| crepe default (--update admm-grad) | 40.00 | 80.00 | 80.00 | 1.50 |" in text
    assert "| ALPS |" not in text and "–" not in text.split("**2:4**")[1].split("Not run")[0]
    assert "Not run at 2:4 with this calibration: ADMM-Grad, ALPS," in text


def test_cpu_times_of_different_machines_are_not_divided(tmp_path):
    from benchmarks import common

    _cell(tmp_path, "SparseGPT", "2:4", 50.0, 10.0)
    _cell(tmp_path, "crepe default (--update admm-grad)", "2:4", 40.0, 15.0)
    path = tmp_path / f"{headline_cells.cell_name('crepe default (--update admm-grad)', '2:4')}.json"
    rec = json.loads(path.read_text())
    rec["provenance"]["versions"]["cpu"] = "another CPU"
    path.write_text(json.dumps(rec))
    assert "| crepe default (--update admm-grad) | 40.00 | 80.00 | 80.00 | – |" in headline_table.table(tmp_path)
    old = {"provenance": {"versions": {"platform": "Linux-a"}}}
    assert common.same_machine(old, old) and not common.same_machine(old, {"provenance": {"versions": {"platform": "Linux-b"}}})
    assert not common.same_machine({}, {})  # unknown never matches
    named = {"provenance": {"versions": {"platform": "Linux-a", "cpu": "EPYC", "cpu_capability": "AVX512"}}}
    assert common.same_machine(named, old) and common.same_machine(old, named)  # one older record: the platforms decide
    assert not common.same_machine(named, {"provenance": {"versions": {"platform": "Linux-b"}}})


def test_every_row_has_its_own_record_name_and_the_float32_row_its_option():
    """Cell names carry the fields that tell rows of one method apart (crepe_none, crepe_float32), so
    no two rows share a record; the float32 row is the default with only its products and dense forward changed."""
    names = [headline_cells.cell_name(label, "2:4") for label in headline_cells.CELLS]
    assert len(set(names)) == len(names)
    assert headline_cells.cell_name(headline_cells.FLOAT32_ROW, "0.7") == "crepe_float32__0.7"
    assert headline_cells.cell_name(headline_cells.DEFAULT_ROW, "0.7") == "crepe__0.7"
    cells = headline_cells.cells("smollm2-135m", ("2:4",), rows=(headline_cells.DEFAULT_ROW, headline_cells.FLOAT32_ROW))
    default, low = (cells[headline_cells.cell_name(label, "2:4")].prune for label in (headline_cells.DEFAULT_ROW, headline_cells.FLOAT32_ROW))
    assert low.admm_grad_products == "float32" and low.dense_precision == "float32"
    assert low == dataclasses.replace(default, admm_grad_products="float32", dense_precision="float32")


def _seed_cell(folder, label: str, setting: str, wikivital: float, unseen: float) -> None:
    folder.mkdir(exist_ok=True)
    rec = record({"cell": label, "options": {"model": headline_cells.SECOND_MODEL}},
                 ppl={"wikivital": wikivital, "python-reference": unseen / 2, "python-docstrings": unseen * 2},
                 prune_cpu_seconds=1.0, calibration="c", eval={})
    (folder / f"{headline_cells.cell_name(label, setting)}.json").write_text(json.dumps(rec))


def test_the_seeds_table_compares_each_draw_and_their_geometric_mean(tmp_path, monkeypatch):
    """Each draw's row gives every row's change against the first (ALPS for the second model); a setting
    with several complete draws gets a mean line of geometric means; an incomplete draw is left out."""
    monkeypatch.setattr(headline_table, "result_dir", lambda model, nsamples=16, seed=0: tmp_path / f"s{seed}")
    alps, default, low = headline_cells.SECOND_MODEL_SEED_ROWS
    for seed, (a, d, f) in enumerate([(20.0, 22.0, 19.0), (20.0, 18.0, 21.0), (10.0, 10.0, 10.0)]):
        for label, value in ((alps, a), (default, d), (low, f)):
            if not (seed == 2 and label == low):  # seed 2 lacks the float32 row
                _seed_cell(tmp_path / f"s{seed}", label, "2:4", value, 2 * value)
    text = headline_table.seeds_table(headline_cells.SECOND_MODEL)
    assert "| setting | seed | ALPS unseen | default unseen | change | default in float32 unseen | change |" in text
    assert "| 2:4 | 0 | 40.00 | 44.00 | +10.0% | 38.00 | -5.0% | 20.00 | 22.00 | +10.0% | 19.00 | -5.0% |" in text
    assert "| 2:4 | 2 |" not in text
    mean_d, mean_f = (22 * 18) ** 0.5, (19 * 21) ** 0.5
    wiki = f"20.00 | {mean_d:.2f} | {mean_d / 20 - 1:+.1%} | {mean_f:.2f} | {mean_f / 20 - 1:+.1%}"
    unseen = f"40.00 | {2 * mean_d:.2f} | {mean_d / 20 - 1:+.1%} | {2 * mean_f:.2f} | {mean_f / 20 - 1:+.1%}"
    assert f"| 2:4 | mean of 2 | {unseen} | {wiki} |" in text


def test_the_figure_draws_each_row_over_sparsegpt_on_both_kinds_of_text(tmp_path):
    """The figure's data: each plotted row's wikivital PPL and unseen mean over SparseGPT's at the same
    setting; settings without SparseGPT, and rows not plotted (the float32 row), are left out. The
    PNG carries what it drew."""
    from benchmarks import headline_plot

    _cell(tmp_path, "SparseGPT", "2:4", 50.0, 10.0)
    _cell(tmp_path, headline_cells.DEFAULT_ROW, "2:4", 40.0, 15.0)
    _cell(tmp_path, headline_cells.FLOAT32_ROW, "2:4", 41.0, 15.0)
    _cell(tmp_path, headline_cells.DEFAULT_ROW, "0.7", 90.0, 15.0)  # no SparseGPT at 70%
    ratios = headline_table.relative_ppl(tmp_path)
    assert list(ratios) == [headline_cells.DEFAULT_ROW] and list(ratios[headline_cells.DEFAULT_ROW]) == ["2:4"]
    assert ratios[headline_cells.DEFAULT_ROW]["2:4"] == pytest.approx((0.8, 0.8))
    path = tmp_path / "figure.png"
    assert headline_table.plot(tmp_path, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert headline_plot.drawn_ratios(path) == {headline_cells.DEFAULT_ROW: {"2:4": list(ratios[headline_cells.DEFAULT_ROW]["2:4"])}}
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    assert not headline_table.plot(tmp_path / "empty", tmp_path / "none.png") and not (tmp_path / "none.png").exists()


def test_the_cpu_column_divides_the_settings_timing_record_where_there_is_one(tmp_path):
    """--cpu-time records (every row pruned once in one process) replace the cells' own cross-record
    ratios, which are "–" across machines; a row the timing lacks keeps the old rule."""
    out = tmp_path / "headline"
    out.mkdir()
    _cell(out, "SparseGPT", "2:4", 50.0, 10.0)
    _cell(out, headline_cells.DEFAULT_ROW, "2:4", 40.0, 15.0)
    _cell(out, "ALPS", "2:4", 45.0, 30.0)
    path = out / f"{headline_cells.cell_name(headline_cells.DEFAULT_ROW, '2:4')}.json"
    rec = json.loads(path.read_text())
    rec["provenance"]["versions"]["cpu"] = "another CPU"
    path.write_text(json.dumps(rec))
    assert f"| {headline_cells.DEFAULT_ROW} | 40.00 | 80.00 | 80.00 | – |" in headline_table.table(out)
    timing = record(headline_cells.timing_config("smollm2-135m", "2:4", 16, 0, (headline_cells.DEFAULT_ROW,)),
                    seconds={"SparseGPT": 80.0, headline_cells.DEFAULT_ROW: 100.0}, threads=1, calibration="c")
    headline_cells.cpu_dir(out).mkdir()
    (headline_cells.cpu_dir(out) / "2-4.json").write_text(json.dumps(timing))
    text = headline_table.table(out)
    assert f"| {headline_cells.DEFAULT_ROW} | 40.00 | 80.00 | 80.00 | 1.25 |" in text
    assert "| ALPS | 45.00 | 90.00 | 90.00 | 3.00 |" in text  # not timed: its own record over SparseGPT's
    assert "--cpu-time" in text and "2:4 at" in text


def test_the_cpu_note_names_the_settings_without_a_timing_record():
    """The table says which settings' column divides a --cpu-time record and which the cells' own records."""
    timed = {"2-4": {"provenance": {"config": {"setting": "2:4"}, "commit": "abc1234"}}}
    where = headline_cells.cpu_dir(headline_cells.OUT)
    partial = headline_table._cpu_note(timed, where, ["0.6"])
    assert "Where the setting has a `--cpu-time` record" in partial and "2:4 at abc1234" in partial
    assert "At 60% it divides the cells' own records" in partial
    full = headline_table._cpu_note(timed, where, [])
    assert full.startswith("It divides the `--cpu-time` records") and "own records" not in full
    none = headline_table._cpu_note({}, where, ["2:4"])
    assert none.startswith("It divides the cells' own records") and "--cpu-time" not in none


def test_cpu_time_plans_one_record_per_setting_with_sparsegpt_first():
    plan = headline.planned(["--cpu-time", "--settings", "2:4,0.7", "--rows", f"ALPS,{headline_cells.DEFAULT_ROW}"])
    assert sorted(p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1] for p in plan) == ["headline_cpu/0.7.json",
                                                                                         "headline_cpu/2-4.json"]
    rows = next(iter(plan.values()))["config"]["rows"]
    assert list(rows) == ["SparseGPT", "ALPS", headline_cells.DEFAULT_ROW]
    gemma = headline.planned(["--model", headline_cells.SECOND_MODEL, "--cpu-time", "--settings", "2:4"])
    assert next(iter(gemma)).endswith(f"headline_{headline_cells.SECOND_MODEL}_cpu/2-4.json")


def test_smollm2s_seeds_table_has_a_section_per_group_of_rows(tmp_path, monkeypatch):
    """The default against ADMM-Grad and mask-only crepe against RIA, each in its own table; a group
    with no complete draw is left out."""
    monkeypatch.setattr(headline_table, "result_dir", lambda model, nsamples=16, seed=0: tmp_path / f"s{seed}")
    ria, crepe = headline_cells.MASK_SEED_ROWS
    for seed, (r, c) in enumerate([(50.0, 55.0), (60.0, 54.0)]):
        _seed_cell(tmp_path / f"s{seed}", ria, "4:8", r, r)
        _seed_cell(tmp_path / f"s{seed}", crepe, "4:8", c, c)
    _seed_cell(tmp_path / "s0", headline_cells.DEFAULT_ROW, "2:4", 30.0, 30.0)  # no ADMM-Grad beside it
    text = headline_table.seeds_table()
    assert "**crepe mask-only against RIA (mask only)**" in text and "against ADMM-Grad" not in text
    assert "| 4:8 | 0 | 50.00 | 55.00 | +10.0% | 50.00 | 55.00 | +10.0% |" in text
    mean_r, mean_c = (50 * 60) ** 0.5, (55 * 54) ** 0.5
    assert f"| 4:8 | mean of 2 | {mean_r:.2f} | {mean_c:.2f} | {mean_c / mean_r - 1:+.1%} |" in text
