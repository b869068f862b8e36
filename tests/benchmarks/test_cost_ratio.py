"""The cost-ratio benchmark's order, plan and table, without a prune."""

from benchmarks import cost_ratio
from benchmarks.common import record


def test_abba_order_weighs_a_drift_alike():
    s, d = cost_ratio.ROWS
    assert cost_ratio.abba(3) == [s, d, d, s, s, d]


def test_plan_names_one_record_per_setting_with_both_rows_config(tmp_path):
    plan = cost_ratio.planned(["--settings", "0.5,2:4", "--out-dir", str(tmp_path)])
    assert sorted(plan) == [str(tmp_path / "0.5.json"), str(tmp_path / "2-4.json")]
    cfg = plan[str(tmp_path / "2-4.json")]["config"]
    assert set(cfg["rows"]) == set(cost_ratio.ROWS) and cfg["repeats"] == cost_ratio.REPEATS
    assert cfg["rows"]["SparseGPT"]["prune_config"]["method"] == "sparsegpt"


def test_table_gives_the_ratio_of_medians_and_the_pairs_range(tmp_path):
    s, d = cost_ratio.ROWS
    rec = record(cost_ratio.config("smollm2-135m", "0.5", 3), seconds={s: [60.0, 62.0, 70.0], d: [90.0, 93.0, 91.0]},
                 threads=1)
    (tmp_path / "0.5.json").write_text(__import__("json").dumps(rec))
    text = cost_ratio.table(tmp_path)
    assert "| 50% | 62.0 | 91.0 | 1.47 | 1.30–1.50 | yes | not recorded |" in text


def test_other_load_is_the_machines_busy_time_less_our_own_over_its_capacity():
    # 2 CPUs for 100 s: 200 CPU s; the machine was busy 150 s of which the prune took 100 s
    assert cost_ratio.others_load((1000.0, 5.0), (1150.0, 15.0), 100.0, 100.0, 2) == {"others": 0.25,
                                                                                      "stolen": 0.05}
    assert cost_ratio.others_load(None, (1.0, 0.0), 1.0, 1.0, 2) is None
    reading = cost_ratio.machine_seconds()
    assert reading is None or (reading[0] > 0 and reading[1] >= 0)


def test_table_gives_the_median_other_load_of_a_records_prunes(tmp_path):
    s, d = cost_ratio.ROWS
    quiet, busy = {"others": 0.02, "stolen": 0.0}, {"others": 0.5, "stolen": 0.01}
    rec = record(cost_ratio.config("smollm2-135m", "0.5", 2), seconds={s: [60.0, 62.0], d: [90.0, 93.0]},
                 load={s: [quiet, busy], d: [quiet, None]}, threads=1)
    (tmp_path / "0.5.json").write_text(__import__("json").dumps(rec))
    assert "| yes | 2% / 0% |" in cost_ratio.table(tmp_path)


def test_another_model_gets_its_own_folder_and_is_named_in_the_table(tmp_path):
    plan = cost_ratio.planned(["--model", "gemma-3-270m", "--settings", "2:4"])
    assert list(plan) == [str(cost_ratio.common.RESULTS / "cost_ratio_gemma-3-270m" / "2-4.json")]
    assert list(cost_ratio.planned(["--settings", "2:4"])) == [str(cost_ratio.OUT / "2-4.json")]
    s, d = cost_ratio.ROWS
    rec = record(cost_ratio.config("gemma-3-270m", "2:4", 1), seconds={s: [100.0], d: [140.0]}, threads=1)
    (tmp_path / "2-4.json").write_text(__import__("json").dumps(rec))
    assert "\n\ngemma-3-270m, the headline's calibration" in cost_ratio.table(tmp_path)


def test_another_calibration_size_gets_its_own_folder_and_is_named_in_the_table(tmp_path):
    plan = cost_ratio.planned(["--nsamples", "128", "--settings", "2:4", "--repeats", "2"])
    assert list(plan) == [str(cost_ratio.common.RESULTS / "cost_ratio_c128" / "2-4.json")]
    rows = next(iter(plan.values()))["config"]["rows"]
    assert {r["options"]["nsamples"] for r in rows.values()} == {128}
    s, d = cost_ratio.ROWS
    rec = record(cost_ratio.config("smollm2-135m", "2:4", 1, 128), seconds={s: [300.0], d: [420.0]}, threads=1)
    (tmp_path / "2-4.json").write_text(__import__("json").dumps(rec))
    assert "calibration (128 x 512 wikivital)" in cost_ratio.table(tmp_path) and "| 1.40 |" in cost_ratio.table(tmp_path)


def test_settings_run_with_different_repeats_each_say_their_count(tmp_path):
    s, d = cost_ratio.ROWS
    for setting, n in (("2:4", 2), ("0.5", 1)):
        rec = record(cost_ratio.config("smollm2-135m", setting, n, 128), seconds={s: [300.0] * n, d: [420.0] * n}, threads=1)
        (tmp_path / f"{cost_ratio.common.setting_name(setting)}.json").write_text(__import__("json").dumps(rec))
    text = cost_ratio.table(tmp_path)
    assert "| prunes each |" in text and "| 2:4 | 2 | 300.0 |" in text and "| 50% | 1 | 300.0 |" in text
