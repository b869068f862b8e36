"""benchmarks.quality: its tables from stored records, and a composed cell pruned through the library."""

import json
import sys

import benchmarks.quality as quality
from benchmarks.common import write_block
from crepe.io.files import write_json_atomic


def _record(folder, cell, setting, ppl, cpu, tag=""):
    config = {"cell": quality.cell_name(cell, setting, tag), "tag": tag, "compose": "permute" if tag else ""}
    prov = {"command": "python -m benchmarks.quality", "commit": "abc", "config_sha256": "0" * 64,
            "date": "2026-12-01T00:00:00", "config": config}
    write_json_atomic(folder / f"{quality.cell_name(cell, setting, tag)}.json",
                      {"ppl": {"wikivital": ppl}, "prune_cpu_seconds": cpu, "calibration": "calib",
                       "eval": {"wikivital": "test"}, "provenance": prov})


def test_tables_give_ratios_to_sparsegpt_per_setting_and_tag(tmp_path):
    runs = tmp_path / "results" / "runs"
    _record(runs, "sparsegpt", "2:4", 50.0, 16.0)
    _record(runs, "crepe+sweep-admm", "2:4", 40.0, 24.0)
    _record(runs, "crepe+sweep-admm", "0.7", 40.0, 20.0)  # no SparseGPT cell at 0.7: no ratio
    _record(runs, "crepe+sweep-admm", "2:4", 45.0, 20.0, tag="permute")  # ratios to the untagged SparseGPT
    text = quality.table(runs)
    assert "| crepe+sweep-admm | – | – | 40.00 | 40.00 (0.800x) | – |" in text
    assert "| crepe+sweep-admm | – | – | – | 1.50 | – |" in text
    assert "| – | – | – | 45.00 (0.900x) | – |" in quality.table(runs, "permute")
    every = quality.table(runs, None)  # one row per cell and tag
    assert "| crepe+sweep-admm `permute` | – | – | – | 45.00 (0.900x) | – |" in every and "| sparsegpt | " in every
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- quality:runs:start -->\nold\n<!-- quality:runs:end -->\ntail\n")
    write_block(doc, "quality:runs", every)
    written = doc.read_text()
    assert "old" not in written and "40.00 (0.800x)" in written and written.endswith("tail\n")


def test_a_composed_cell_records_its_explicit_config_and_prunes_2_of_4(tiny_folder, tiny_corpus, tmp_path,
                                                                       monkeypatch):
    out = tmp_path / "q"
    argv = ["quality", "--model", str(tiny_folder), "--settings", "2:4", "--cells", "crepe+sweep-admm",
            "--dataset", tiny_corpus, "--nsamples", "2", "--seqlen", "32", "--eval-seqlen", "32",
            "--max-eval-windows", "2", "--no-second-text", "--compose", "permute",
            "--tag", "permute", "--out-dir", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    quality.main()
    report = json.loads((out / "crepe_sweep-admm__2-4__permute.json").read_text())
    config = report["provenance"]["config"]
    assert config["compose"] == "permute" and config["prune_config"]["permute"] is not None
    assert config["prune_config"]["resolved_update"] == "sweep-admm" and report["prune_cpu_seconds"] > 0
    assert config["options"]["nsamples"] == 2 and config["options"]["max_eval_windows"] == 2
    assert "crepe+sweep-admm" in quality.table(out, "permute")
