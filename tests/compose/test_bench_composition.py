"""The composition bench builds its cells from validated configs and its table from reports only."""

import json

import pytest

import benchmarks.composition as bench


def test_all_means_permutation_owl_and_dsnot_and_every_grid_cell_has_its_baseline():
    cfg = bench.cell_config("ria", "4:8", "all")
    assert cfg.permute is not None and cfg.allocation.method == "owl" and cfg.repruning.method == "dsnot"
    cells = bench.grid_cells(list(bench.GRID))
    assert all((setting, "plain") in cells for setting, _ in cells) and len(cells) == len(set(cells))
    with pytest.raises(ValueError, match="unknown technique"):
        bench.parse_cells("2:4/bogus")


def test_table_ratios_come_from_the_reports_and_missing_cells_say_not_run(tmp_path):
    (tmp_path / "dense.json").write_text(json.dumps({"model": "m", "calibration": "c", "eval_protocol": "e", "ppl_dense": 10.0}))
    for technique, ppl, seconds in (("plain", 100.0, 10.0), ("perm", 80.0, 15.0)):
        bench.cell_path(tmp_path, "ria", "2:4", technique).write_text(json.dumps(
            {"ppl_pruned": ppl, "prune_seconds": seconds, "kept_score_fraction": 0.75}))
    text = bench.table(tmp_path, [("2:4", "plain"), ("2:4", "perm"), ("0.7", "owl")], ["ria"])
    assert "| ria | 2:4 | perm | 80.000 | 0.800 | 0.7500 | 15.0 | 1.50 |" in text
    assert "| ria | 0.7 | owl | not run |" in text
