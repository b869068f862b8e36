"""benchmarks.gpu_check: options over the variant's sizes, failed or skipped steps recorded (not fatal),
and the CPU-sized variant end to end (slow), as CI runs it so the GPU check does not rot."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_check import VARIANTS, parse_args, run_step, table
from crepe.config import PruneConfig

ROOT = Path(__file__).resolve().parents[2]


def test_options_override_the_variant_sizes():
    args, variant = parse_args(["--variant", "cpu", "--nsamples", "2", "--tokens", "8,1"])
    assert (variant.nsamples, variant.tokens) == (2, "8,1")
    assert variant.seqlen == VARIANTS["cpu"].seqlen and variant.device == "cpu"
    assert parse_args(["--variant", "gpu"])[1] == VARIANTS["gpu"]


def test_a_failed_or_skipped_step_is_recorded_and_tabled():
    failed = run_step([sys.executable, "-c", "import sys; print('last words'); sys.exit(3)"], timeout=60)
    assert failed["returncode"] == 3 and "last words" in failed["output_tail"]
    skipped = run_step([sys.executable, "-c", "pass"], timeout=0)
    assert skipped["returncode"] is None and "no time left" in skipped["skipped"]
    summary = {"checkpoint": {"shape": "tiny"}, "prune": [{"update": "none", "calibration": "4 x 64", **failed}],
               "speed": [{"dtype": "float16", **skipped}]}
    text = table(summary)
    assert "failed (exit 3): last words" in text and "skipped: no time left" in text


@pytest.mark.slow
def test_the_cpu_variant_runs_end_to_end_and_writes_its_json(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--variant", "cpu", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    names = {p.name for p in tmp_path.glob("*.json")}
    assert {"environment.json", "checkpoint.json", "prune-default.json", "prune-none.json", "speed-float32.json",
            "summary.json"} <= names
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [p["resolved_update"] for p in summary["prune"]] == ["none", PruneConfig().resolved_update]
    assert all(p["streamed"] and p["realised_sparsity"] == pytest.approx(0.5, abs=1e-3) for p in summary["prune"])
    rows = json.loads((tmp_path / "speed-float32.json").read_text())["rows"]
    shapes, tokens = VARIANTS["cpu"].speed_shapes.split(","), [int(t) for t in VARIANTS["cpu"].tokens.split(",")]
    assert [(r["what"], r["tokens"]) for r in rows] == [(f"random {s}", t) for s in shapes for t in tokens]
    assert all(r["ratio"] > 0 for r in rows) and not list(tmp_path.glob("pruned-*"))  # pruned folders removed


def test_unknown_steps_exit_with_one_line(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--steps", "speed,warp"])
    assert "unknown --steps warp" in capsys.readouterr().err


def test_the_cost_step_is_recorded_as_skipped_off_a_gpu(tmp_path):
    """--steps cost on the CPU variant writes no checkpoint and times nothing: each cost run is recorded
    as skipped (a 7B shape on CUDA only), which is not a failure."""
    from benchmarks import gpu_check

    assert gpu_check.main(["--variant", "cpu", "--steps", "cost", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [(c["group"], c["setting"]) for c in summary["cost"]] == [
        (g, s) for g in gpu_check.COST_GROUPS for s in gpu_check.COST_SETTINGS]
    assert all("GPU variant only" in c["skipped"] for c in summary["cost"])
    assert not (tmp_path / "checkpoint").exists() and (tmp_path / "cost-default-2-4.json").is_file()
    assert "skipped: the cost step times a 7B shape on CUDA" in summary["table"]


def test_a_cost_run_is_tabled_by_its_second_layer_against_sparsegpts():
    run = {"group": "default", "setting": "2:4", "returncode": 0, "seconds": {"SparseGPT": 10.0, "D": 14.0},
           "layer_seconds": {"SparseGPT": [4.0, 5.0], "D": [5.0, 6.5]}, "peak_added_gib": {}}
    text = table({"prune": [], "speed": [], "cost": [run]})
    assert "| cost 2:4 D | 7B-shaped, 2 layers | 14.0 s wall, second layer 1.30× SparseGPT's |" in text
