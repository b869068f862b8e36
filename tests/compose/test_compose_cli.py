"""crepe.prune's composition flags end to end on a tiny model folder: recorded in the report and
in the saved model's pruning_config; the saved folder reproduces the pruned PPL; bad input exits 2."""

import json

import pytest
import torch
from tiny_models import FAST_PRUNE_ARGS as FAST

from crepe.compose.permuted_linears import (
    PERMUTATIONS_FILE,
    PermutedLinear,
    load_permuted,
)


def test_all_three_flags_are_recorded_and_the_saved_model_reproduces_the_ppl(tiny_folder, tiny_corpus, tmp_path, cli):
    save, report = tmp_path / "pruned", tmp_path / "report.json"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", tiny_corpus, *FAST, "--method", "ria",
            "--pattern", "4:8", "--permute", "--allocation", "owl", "--owl-lambda", "0.2", "--repruning", "dsnot",
            "--repruning-scope", "all", "--save", str(save), "--report", str(report)]
    assert cli("crepe.prune", argv) == 0
    rep = json.loads(report.read_text())
    cfg = rep["config"]
    assert cfg["permute"]["block_groups"] == 256 and cfg["allocation"]["method"] == "owl"
    assert cfg["allocation"]["owl_lambda"] == 0.2 and cfg["repruning"] == {**cfg["repruning"], "method": "dsnot", "scope": "all"}
    assert rep["realised_sparsity"] == pytest.approx(0.5, abs=1 / 8) and 0 < rep["kept_score_fraction"] < 1
    # an OWL plan under 4:8 gives every linear k/8 (whether it differs per block depends on the tiny
    # model's outlier ratios; non-uniformity is tested deterministically in test_allocation.py)
    assert all(abs(v * 8 - round(v * 8)) < 1e-6 for v in rep["per_layer_sparsity"].values())
    saved = json.loads((save / "config.json").read_text())["pruning_config"]
    assert saved["config"]["permute"] == cfg["permute"] and saved["config"]["repruning"]["method"] == "dsnot"
    assert saved["config"]["allocation"]["method"] == "owl" and (save / PERMUTATIONS_FILE).is_file()
    assert cli("eval.ppl", ["--model", str(save), "--dataset", tiny_corpus, "--seqlen", "32", "--max-windows", "4",
                            "--json", str(tmp_path / "ppl.json")]) == 0
    assert json.loads((tmp_path / "ppl.json").read_text())["ppl"] == pytest.approx(rep["ppl_pruned"], rel=1e-4)
    assert any(isinstance(m, PermutedLinear) for m in load_permuted(save, dtype=torch.float32).modules())


def test_json_allocation_plan_is_taken_from_a_file(tiny_folder, tiny_corpus, tmp_path, cli):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"layers.0": 0.3, "default": 0.7}))
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST, "--method", "ria",
            "--sparsity", "0.5", "--allocation", str(plan), "--report", str(tmp_path / "r.json")]
    assert cli("crepe.prune", argv) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["config"]["allocation"]["path"] == str(plan)
    assert rep["per_layer_sparsity"]["layers.0.mlp.up_proj"] == pytest.approx(0.3, abs=1e-3)
    assert rep["per_layer_sparsity"]["layers.1.mlp.up_proj"] == pytest.approx(0.7, abs=1e-3)


BAD = [
    (["--permute"], "only applies to N:M"),
    (["--allocation", "owls"], "unknown allocation"),
    (["--allocation", "{tmp}/missing.json"], "cannot read allocation plan"),
    (["--repruning", "sparse"], "unknown repruning 'sparse'"),
    (["--repruning", "dsnot", "--repruning-scope", "mlp"], "unknown repruning scope"),
    (["--repruning", "dsnot", "--method", "sparsegpt"], "sparsegpt updates them"),
    (["--allocation", "owl", "--owl-lambda", "0.7"], "owl_lambda"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_composition_flags_give_one_line_and_exit_2(extra, message, tiny_folder, tiny_corpus, tmp_path, cli, capsys):
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST, *extra,
            "--save", str(tmp_path / "out")]
    assert cli("crepe.prune", argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "out").exists()
