"""Real-model ecosystem checks, fully offline (no hub): the README's Python example as written, and
zero-shot accuracy of dense against 50%-pruned SmolLM2-135M on the shipped local task. Marked slow."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_models import HANG_GUARD_S

from crepe.models.loading import cache_root

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TASK = "wikivital_describe"


def offline_env(tmp_path: Path) -> dict[str, str]:
    """No hub, an empty Hugging Face cache; the crepe model cache is kept (it is not the hub)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
            "CREPE_CACHE": str(cache_root()), "PYTHONPATH": str(ROOT)}


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- python-example:start -->\s*```python\n(.*?)```\s*<!-- python-example:end -->", text, re.S)
    assert block, "README.md has no python-example block"
    return block.group(1)


def run(argv: list[str], tmp_path: Path, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=offline_env(tmp_path),
                          cwd=cwd, timeout=HANG_GUARD_S)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_readme_python_example_runs_offline_as_written(tmp_path):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 10
    assert "max_eval_windows=" in code and "num_calibration_samples=" in code  # the work is bounded, not the time
    proc = run(["-c", code], tmp_path, tmp_path)
    dense, pruned, sparsity = map(float, re.search(r"PPL ([\d.]+) -> ([\d.]+), sparsity ([\d.]+)", proc.stdout).groups())
    assert 5 < dense < pruned and sparsity == pytest.approx(0.5, abs=1e-3)
    folder = tmp_path / "smollm2-crepe50"
    meta = yaml.safe_load((folder / "README.md").read_text().split("---", 2)[1])
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and "sparsity-50" in meta["tags"]
    assert yaml.safe_load((folder / "recipe.yaml").read_text())["prune"]["method"] == "crepe"


def test_zeroshot_dense_and_pruned_on_the_local_task_offline(tmp_path):
    save, report = tmp_path / "pruned", tmp_path / "report.json"
    run(["-m", "crepe.prune", "--model", "smollm2-135m", "--sparsity", "0.5", "--nsamples", "8", "--seqlen", "256",
         "--eval-dataset", "none", "--zeroshot", TASK, "--zeroshot-limit", "60", "--save", str(save),
         "--report", str(report)], tmp_path, ROOT)
    zs = json.loads(report.read_text())["zeroshot"]
    acc = {stage: next(r for r in zs[stage]["rows"] if r["metric"] == "acc") for stage in ("dense", "pruned")}
    dense = acc["dense"]
    assert dense["n"] == 60 and dense["chance"] == 0.25 and dense["stderr"] > 0
    assert dense["value"] > dense["chance"] + 3 * dense["stderr"]  # well above chance
    out = tmp_path / "folder.json"
    run(["-m", "eval.zeroshot", "--model", str(save), "--tasks", TASK, "--limit", "60", "--json", str(out)], tmp_path, tmp_path)
    folder_acc = next(r for r in json.loads(out.read_text())["rows"] if r["metric"] == "acc")
    assert folder_acc["value"] == pytest.approx(acc["pruned"]["value"], abs=1e-9)  # the saved folder is the pruned model
    assert folder_acc["stderr"] == pytest.approx(acc["pruned"]["stderr"], abs=1e-9)
