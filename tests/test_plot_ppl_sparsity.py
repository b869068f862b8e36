"""benchmarks.tools.plot_ppl_sparsity reads bench reports and writes a PNG; bad input is one line."""

import json
import subprocess
import sys
from pathlib import Path

from tiny_models import HANG_GUARD_S

ROOT = Path(__file__).resolve().parents[1]


def report(method, sparsity, pattern, ppl, dense=None):
    return {"model": "tiny", "eval_protocol": "tiny protocol", "ppl_dense": dense, "ppl_pruned": ppl,
            "config": {"method": method, "sparsity": sparsity, "pattern": pattern}}


def test_plot_is_written_from_reports_of_every_setting(tmp_path):
    cells = [("ria", 0.5, "unstructured", 30.0, 14.0), ("ria", 0.7, "unstructured", 900.0, None),
             ("ria", 0.5, "2:4", 120.0, None), ("wanda", 0.5, "unstructured", 35.0, None), ("wanda", 0.5, "4:8", 60.0, None)]
    for i, cell in enumerate(cells):
        (tmp_path / f"{i}.json").write_text(json.dumps(report(*cell)))
    (tmp_path / "skip.json").write_text(json.dumps({"ppl_pruned": None}))
    out = tmp_path / "plots" / "p.png"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.tools.plot_ppl_sparsity", "--reports", str(tmp_path), "--out", str(out)],
                          capture_output=True, text=True, timeout=HANG_GUARD_S, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "5 cells, 2 methods" in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_reports_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.tools.plot_ppl_sparsity", "--reports", str(tmp_path), "--out", str(tmp_path / "p.png")],
                          capture_output=True, text=True, timeout=HANG_GUARD_S, cwd=ROOT)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "p.png").exists()
