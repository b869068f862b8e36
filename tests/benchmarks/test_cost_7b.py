"""The 7B-shape cost benchmark's plan, rows, memory probe and table, without a prune."""

import json

import pytest
import torch

from benchmarks import cost_7b
from benchmarks.common import record
from crepe.models.adapters import get_adapter

DEFAULT = "crepe default (--update admm-grad)"


def test_plan_names_one_record_per_setting_with_every_row_and_the_shape(tmp_path):
    plan = cost_7b.planned(["--settings", "2:4,0.7", "--out-dir", str(tmp_path)])
    assert sorted(plan) == [str(tmp_path / "0.7.json"), str(tmp_path / "2-4.json")]
    cfg = plan[str(tmp_path / "2-4.json")]["config"]
    assert list(cfg["rows"]) == list(cost_7b.ROWS) and cost_7b.ROWS[0] == "SparseGPT" and DEFAULT not in cost_7b.ROWS
    assert cfg["shape"] == {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 1,
                            "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 49152}
    assert cfg["rows"]["ALPS"]["options"]["model"] == "/work/scale/llama-2-7b-1layer"


def test_two_layer_plan_has_its_own_records_rows_and_folder(tmp_path):
    plan = cost_7b.planned(["--layers", "2", "--settings", "2:4", "--rows", DEFAULT, "--out-dir", str(tmp_path)])
    cfg = plan[str(tmp_path / "2-4__2layers.json")]["config"]
    assert list(cfg["rows"]) == ["SparseGPT", DEFAULT] and cfg["shape"]["num_hidden_layers"] == 2
    assert cfg["rows"][DEFAULT]["options"]["model"] == "/work/scale/llama-2-7b-2layer"


def test_unknown_row_exits_with_one_line():
    with pytest.raises(SystemExit, match="unknown --rows"):
        cost_7b.chosen_rows("SparseGPT,Magic")


def test_another_checkpoint_shape_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**cost_7b.shape(1), "hidden_size": 256}))
    with pytest.raises(SystemExit, match="not the synthetic llama-2-7b shape"):
        cost_7b.ensure_checkpoint(str(tmp_path), 1)


def test_peak_memory_probe_sees_an_allocation_after_its_reset():
    if cost_7b._rss_kib("VmRSS") is None or not cost_7b._reset_peak():
        pytest.skip("no /proc/self/status or clear_refs here (not Linux)")
    before = cost_7b._rss_kib("VmRSS")
    assert cost_7b._rss_kib("VmHWM") - before < 16 * 1024  # the reset brought the peak down to about now
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, every page touched
    assert cost_7b._rss_kib("VmHWM") - before > 48 * 1024
    del block


def _write(tmp_path, setting, layers, seconds):
    rows = tuple(seconds)
    rec = record(cost_7b.config(cost_7b.default_model(layers), setting, layers, rows), seconds=seconds, threads=1,
                 calibration="16 x 512 wikivital", peak_added_gib={label: 1.5 for label in rows})
    (tmp_path / f"{cost_7b.record_name(setting, layers, rows)}.json").write_text(json.dumps(rec))


def test_table_gives_each_rows_ratio_and_the_second_layers(tmp_path):
    _write(tmp_path, "2:4", 1, dict(zip(cost_7b.TABLE_ROWS, (100.0, 150.0, 400.0, 20.0, 260.0))))
    text = cost_7b.table(tmp_path)
    assert f"| {DEFAULT} | 260 | – | 2.60 | – | 1.50 | – |" in text
    assert "| SparseGPT | 100 | – | 1.00 | – | 1.50 | – |" in text and "Two decoder layers" not in text
    _write(tmp_path, "2:4", 2, {"SparseGPT": 210.0, DEFAULT: 590.0})
    text = cost_7b.table(tmp_path)
    assert f"| {DEFAULT} | 590 | – | 2.81 | – | – | – | 3.00 | – |" in text  # (590 - 260) / (210 - 100)


def test_a_later_pair_run_times_the_default_and_its_second_layer(tmp_path):
    _write(tmp_path, "2:4", 1, dict(zip(cost_7b.TABLE_ROWS, (100.0, 150.0, 400.0, 20.0, 260.0))))
    _write(tmp_path, "2:4", 1, {"SparseGPT": 110.0, DEFAULT: 165.0})  # the default alone, beside its SparseGPT
    assert (tmp_path / "2-4__pair.json").is_file() and (tmp_path / "2-4.json").is_file()
    text = cost_7b.table(tmp_path)
    assert f"| {DEFAULT} | 165 | – | 1.50 | – | 1.50 | – |" in text  # 165 / 110, not / 100
    assert "| SparseGPT | 100 | – | 1.00 |" in text and "| ALPS | 400 | – | 4.00 |" in text
    assert "2:4 110 s at" in text
    _write(tmp_path, "2:4", 2, {"SparseGPT": 210.0, DEFAULT: 365.0})
    assert f"| {DEFAULT} | 365 | – | 1.74 | – | – | – | 2.00 | – |" in cost_7b.table(tmp_path)  # (365 - 165) / (210 - 110)


def test_a_baselines_record_holding_the_default_too_is_current_on_its_baselines(tmp_path):
    """Older one-layer records timed the default beside the baselines; the table reads the default from
    the pair record, so the staleness check compares only the rows the command plans now."""
    argv = ["--settings", "2:4", "--out-dir", str(tmp_path)]
    _write(tmp_path, "2:4", 1, dict(zip(cost_7b.TABLE_ROWS, (100.0, 150.0, 400.0, 20.0, 260.0))))
    found = cost_7b.recorded(argv)[str(tmp_path / "2-4.json")]["config"]
    assert list(found["rows"]) == list(cost_7b.ROWS)
    assert found == cost_7b.planned(argv)[str(tmp_path / "2-4.json")]["config"]


def test_the_pair_plan_has_its_own_record(tmp_path):
    plan = cost_7b.planned(["--settings", "0.7", "--rows", f"SparseGPT,{DEFAULT}", "--out-dir", str(tmp_path)])
    assert list(plan) == [str(tmp_path / "0.7__pair.json")]
    assert list(plan[str(tmp_path / "0.7__pair.json")]["config"]["rows"]) == ["SparseGPT", DEFAULT]


def test_the_second_layer_ratio_reads_each_prunes_own_layer_times(tmp_path):
    _write(tmp_path, "2:4", 1, dict(zip(cost_7b.TABLE_ROWS, (100.0, 150.0, 400.0, 20.0, 260.0))))
    rec = record(cost_7b.config(cost_7b.default_model(2), "2:4", 2, cost_7b.TWO_LAYER_ROWS),
                 seconds={"SparseGPT": 210.0, DEFAULT: 400.0}, threads=1, calibration="16 x 512 wikivital",
                 layer_seconds={"SparseGPT": [100.0, 110.0], DEFAULT: [150.0, 250.0]},
                 peak_added_gib={"SparseGPT": 1.0, DEFAULT: 1.0})
    (tmp_path / "2-4__2layers.json").write_text(json.dumps(rec))
    assert f"| {DEFAULT} | 400 | – | 1.90 | – | 150 / 250 | – | 2.27 | – |" in cost_7b.table(tmp_path)  # 250 / 110


def test_the_layer_clock_times_each_layer_of_a_real_prune():
    from tiny_models import tiny_model, tiny_windows

    from crepe.config import PruneConfig
    from crepe.prune.model import prune_model

    model = tiny_model()
    layers = get_adapter(model).layers(model)
    with cost_7b.layer_clock(model) as per_layer:
        prune_model(model, tiny_windows(), PruneConfig(sparsity=0.5), progress=False)
    assert len(per_layer) == len(layers) == 2 and all(t > 0 for t in per_layer)
    assert all(not layer._forward_pre_hooks for layer in layers)  # the hooks are gone


def test_missing_checkpoint_is_made_beside_and_renamed_into_place(tmp_path, monkeypatch):
    def fake_make(cmd, check):
        out = __import__("pathlib").Path(cmd[cmd.index("--out") + 1])
        out.mkdir()
        (out / "config.json").write_text(json.dumps(cost_7b.shape(1)))

    monkeypatch.setattr(cost_7b.subprocess, "run", fake_make)
    cost_7b.ensure_checkpoint(str(tmp_path / "ckpt"), 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["num_hidden_layers"] == 1


def test_every_row_runs_at_its_declared_config():
    from crepe.config import PruneConfig

    opts = cost_7b.options("/work/scale/llama-2-7b-1layer", "2:4", cost_7b.TABLE_ROWS)
    assert opts[DEFAULT].prune.admm_grad_iterations == PruneConfig.admm_grad_iterations  # the shipped default
    assert opts[DEFAULT].prune.resolved_update == "admm-grad"
    assert opts["crepe mask-only (--update none)"].prune.resolved_update == "none"


def test_the_two_layer_run_times_the_default_with_float32_products_beside_it(tmp_path):
    """The two-layer rows add the default with --admm-grad-products float32; the one-layer pair stays
    SparseGPT and the default, and --rows may name the float32 row though the default run leaves it out."""
    full = cost_7b.FLOAT32_ROW
    assert cost_7b.TWO_LAYER_ROWS == ("SparseGPT", DEFAULT, full) and full not in cost_7b.ROWS
    assert cost_7b.options("/work/scale/llama-2-7b-2layer", "0.7", (full,))[full].prune.admm_grad_products == "float32"
    assert cost_7b.chosen_rows(full) == ("SparseGPT", full)
    assert cost_7b.record_name("2:4", 1, cost_7b.PAIR_ROWS) == "2-4__pair"
    rec = record(cost_7b.config(cost_7b.default_model(2), "2:4", 2, cost_7b.TWO_LAYER_ROWS),
                 seconds={"SparseGPT": 200.0, DEFAULT: 400.0, full: 300.0}, threads=1, calibration="16 x 512 wikivital",
                 layer_seconds={"SparseGPT": [100.0, 100.0], DEFAULT: [180.0, 220.0], full: [130.0, 170.0]},
                 peak_added_gib={label: 1.0 for label in cost_7b.TWO_LAYER_ROWS})
    (tmp_path / "2-4__2layers.json").write_text(json.dumps(rec))
    assert f"| {full} | 300 | – | 1.50 | – | 130 / 170 | – | 1.70 | – |" in cost_7b.table(tmp_path)


def test_the_cuda_variant_has_its_own_folder_config_and_clock(tmp_path):
    plan = cost_7b.planned(["--device", "cuda", "--layers", "2", "--settings", "0.7", "--rows", DEFAULT])
    (path, planned_record), = plan.items()
    assert path.endswith("results/cost_7b_cuda/0.7__2layers.json")
    assert planned_record["config"]["rows"][DEFAULT]["options"]["device"] == "cuda"
    cpu = cost_7b.planned(["--layers", "2", "--settings", "0.7", "--rows", DEFAULT, "--out-dir", str(tmp_path)])
    assert next(iter(cpu.values()))["config"]["rows"][DEFAULT]["options"]["device"] is None  # CPU records unchanged
    assert cost_7b.clock("cpu") is __import__("time").process_time


def test_a_cuda_table_says_wall_time_and_the_gpu(tmp_path):
    rows = ("SparseGPT", "ALPS")
    rec = record(cost_7b.config(cost_7b.default_model(2), "2:4", 2, rows, "cuda"), seconds={"SparseGPT": 4.0, "ALPS": 20.0},
                 layer_seconds={"SparseGPT": [2.0, 2.0], "ALPS": [9.0, 11.0]}, peak_added_gib={"SparseGPT": 1.0, "ALPS": 2.0},
                 threads=16, calibration="16 x 512 wikivital", clock="cuda wall", memory="GPU allocated",
                 device_name="NVIDIA H200")
    (tmp_path / "2-4__2layers.json").write_text(json.dumps(rec))
    text = cost_7b.table(tmp_path)
    assert "NVIDIA H200 (CUDA)" in text and "One decoder layer" not in text
    assert "| ALPS | 20 | – | 5.00 | – | 9 / 11 | – | 5.50 | – |" in text and "2:4 wall s" in text


def test_cuda_without_a_gpu_exits_with_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("sys.argv", ["cost_7b", "--device", "cuda", "--layers", "2", "--settings", "2:4"])
    with pytest.raises(SystemExit, match="no CUDA device here"):
        cost_7b.main()
