"""The 7B-shape cost benchmark's plan, memory probe and table, without a prune."""

import json

from benchmarks import cost_7b
from benchmarks.common import record


def test_plan_names_one_record_per_setting_with_every_row_and_the_shape(tmp_path):
    model = tmp_path / "ckpt"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"hidden_size": 4096, "intermediate_size": 11008}))
    plan = cost_7b.planned(["--model", str(model), "--settings", "2:4,0.7", "--out-dir", str(tmp_path)])
    assert sorted(plan) == [str(tmp_path / "0.7.json"), str(tmp_path / "2-4.json")]
    cfg = plan[str(tmp_path / "2-4.json")]["config"]
    assert list(cfg["rows"]) == list(cost_7b.ROWS) and cost_7b.ROWS[0] == "SparseGPT"
    assert cfg["shape"]["hidden_size"] == 4096 and cfg["rows"]["ALPS"]["prune_config"]["method"] == "alps"


def test_missing_checkpoint_shape_is_recorded_as_missing(tmp_path):
    assert cost_7b.shape(str(tmp_path)) == {"config.json": "missing"}


def test_peak_memory_probe_reads_this_process():
    rss = cost_7b._rss_kib("VmRSS")
    assert rss is None or rss > 0
    if cost_7b._reset_peak():
        assert cost_7b._rss_kib("VmHWM") >= 0


def test_table_gives_each_rows_ratio_to_sparsegpt(tmp_path):
    seconds = dict(zip(cost_7b.ROWS, (100.0, 150.0, 400.0, 20.0, 260.0)))
    rec = record(cost_7b.config(str(tmp_path), "2:4"), seconds=seconds, threads=1, calibration="16 x 512 wikivital",
                 peak_added_gib={label: 1.5 for label in cost_7b.ROWS})
    (tmp_path / "2-4.json").write_text(json.dumps(rec))
    text = cost_7b.table(tmp_path)
    assert "| crepe default (--update admm-grad) | 260 | – | 2.60 | – | 1.50 | – |" in text
    assert "| SparseGPT | 100 | – | 1.00 | – | 1.50 | – |" in text
