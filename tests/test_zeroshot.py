"""eval.zeroshot: lm-eval glue on a tiny random model, the shipped local task, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_models import HANG_GUARD_S

from crepe.evaluation.zeroshot import (
    SHIPPED_TASKS_DIR,
    ZeroShotConfig,
    evaluate_zeroshot,
    format_table,
    render_shipped_tasks,
)

pytest.importorskip("lm_eval")
TASK = "wikivital_describe"


def test_shipped_task_renders_with_an_absolute_existing_data_path(tmp_path):
    assert TASK in render_shipped_tasks(tmp_path)
    spec = yaml.safe_load((tmp_path / f"{TASK}.yaml").read_text())
    data = Path(spec["dataset_kwargs"]["data_files"]["validation"])
    assert data.is_absolute() and data.is_file()
    assert spec["dataset_path"] == "json" and spec["output_type"] == "multiple_choice"
    items = [json.loads(line) for line in data.read_text().splitlines()]
    assert len(items) >= 200 and all(len(i["choices"]) == 4 and 0 <= i["label"] < 4 for i in items)
    assert spec["metadata"]["chance"] == 0.25


def test_shipped_task_items_come_from_the_test_split_only():
    from crepe.data.corpora import wikivital_split_of

    lines = (SHIPPED_TASKS_DIR / TASK / f"{TASK}.jsonl").read_text().splitlines()
    assert {wikivital_split_of(json.loads(line)["title"]) for line in lines} == {"test"}


def test_tiny_model_gets_rows_with_stderr_on_the_local_task(tiny_folder):
    from crepe.models.loading import load_model

    model, tok = load_model(str(tiny_folder))
    result = evaluate_zeroshot(model, tok, ZeroShotConfig(tasks=(TASK,), limit=6, batch_size=4))
    rows = {r["metric"]: r for r in result["rows"]}
    assert set(rows) == {"acc", "acc_norm"}
    assert all(0 <= r["value"] <= 1 and r["stderr"] is not None and r["n"] == 6 and r["chance"] == 0.25 for r in rows.values())
    assert "acc_norm" in format_table(result["rows"])


def test_include_path_task_with_local_json_runs_and_cli_writes_json(tiny_folder, tmp_path, cli, capsys):
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"q": f"the fox {i}", "choices": ["jumps", "sleeps"], "label": 0}) + "\n"
                            for i in range(5)))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "mine.yaml").write_text(yaml.safe_dump({
        "task": "mine", "dataset_path": "json", "dataset_kwargs": {"data_files": {"validation": str(data)}},
        "validation_split": "validation", "output_type": "multiple_choice", "doc_to_text": "{{q}}",
        "doc_to_choice": "choices", "doc_to_target": "label", "metric_list": [{"metric": "acc"}]}))
    out = tmp_path / "zs.json"
    code = cli("eval.zeroshot", ["--model", str(tiny_folder), "--tasks", "mine", "--include-path", str(tasks),
                                 "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert [(r["task"], r["metric"], r["n"]) for r in result["rows"]] == [("mine", "acc", 5)]
    assert result["provenance"]["config"]["tasks"] == ["mine"]
    assert "mine" in capsys.readouterr().out


def test_unknown_task_is_one_line_and_exit_2(tiny_folder, cli, capsys):
    assert cli("eval.zeroshot", ["--model", str(tiny_folder), "--tasks", "no_such_task_xyz"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_task_xyz" in err and TASK in err


def test_bad_limit_is_one_line_before_loading(cli, capsys):
    assert cli("eval.zeroshot", ["--model", "/no/such/model", "--tasks", TASK, "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err


def test_hub_task_offline_fails_with_one_line(tiny_folder, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "eval.zeroshot", "--model", str(tiny_folder), "--tasks", "boolq",
                           "--limit", "2"], capture_output=True, text=True, env=env, timeout=HANG_GUARD_S,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("eval.zeroshot: error: cannot load the data of task(s) boolq") and "--include-path" in line


def test_prune_zeroshot_records_dense_and_pruned_in_report_and_card(tiny_folder, tiny_corpus, tmp_path, cli):
    from tiny_models import FAST_PRUNE_ARGS

    save, report = tmp_path / "m", tmp_path / "r.json"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", tiny_corpus, *FAST_PRUNE_ARGS,
            "--method", "magnitude", "--zeroshot", TASK, "--zeroshot-limit", "4", "--save", str(save), "--report", str(report)]
    assert cli("crepe.prune", argv) == 0
    zs = json.loads(report.read_text())["zeroshot"]
    for stage in ("dense", "pruned"):
        assert {(r["task"], r["metric"], r["n"]) for r in zs[stage]["rows"]} == {(TASK, "acc", 4), (TASK, "acc_norm", 4)}
    meta = yaml.safe_load((save / "README.md").read_text().split("---", 2)[1])
    accs = [m["value"] for r in meta["model-index"][0]["results"] for m in r["metrics"] if m["type"] == "acc"]
    assert accs == [pytest.approx(next(r["value"] for r in zs["pruned"]["rows"] if r["metric"] == "acc"), abs=1e-4)]


def test_prune_with_an_unknown_zeroshot_task_fails_before_any_work(tiny_folder, tiny_corpus, tmp_path, cli, capsys):
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--zeroshot", "no_such_task_xyz",
            "--save", str(tmp_path / "m")]
    assert cli("crepe.prune", argv) == 2
    assert "no_such_task_xyz" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_prune_zeroshot_refuses_a_streamed_run_with_one_line(tiny_folder, tiny_corpus, tmp_path, cli, capsys):
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--offload", "disk", "--zeroshot", TASK,
            "--save", str(tmp_path / "m")]
    assert cli("crepe.prune", argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "streams it from disk" in err[-1] and not (tmp_path / "m").exists()
