"""Recipes name every choice explicitly; an older recipe's ``update: null`` replays what it recorded, with a warning."""

import logging

import pytest
import torch
import yaml

import crepe
from crepe.config import PruneConfig
from crepe.methods.params import GROUPS
from crepe.methods.registry import method_names
from crepe.models.adapters import decoder_linears, weight_view
from crepe.output.recipe import (
    apply_recipe,
    explicit,
    pinned_update,
    recipe_from_options,
)
from crepe.run.options import RunOptions

SMALL = dict(num_calibration_samples=4, max_seq_length=32)


@pytest.mark.parametrize("method", method_names())
def test_every_method_writes_its_resolved_update_and_group_and_reads_back_the_same_pipeline(method):
    cfg = PruneConfig(method=method)
    written = explicit(cfg)
    assert written["update"] == cfg.resolved_update and written["update"] is not None
    assert written["group"] == (cfg.resolved_group if cfg.method_entry.default_group in GROUPS else None)
    again = PruneConfig.from_dict(written)
    assert (again.resolved_update, again.resolved_group) == (cfg.resolved_update, cfg.resolved_group)
    assert explicit(again) == written
    opts = RunOptions(prune=cfg)  # a run's recipe also holds what the calibration's size resolves (the damping)
    assert recipe_from_options(opts)["prune"] == explicit(cfg.at_calibration(opts.nsamples * opts.seqlen))
    assert recipe_from_options(opts)["prune"]["admm_grad_damp"] is not None


def test_the_repruning_stand_in_is_written_as_the_update_it_is():
    cfg = PruneConfig.from_dict({"method": "crepe", "repruning": {}})
    assert explicit(cfg)["update"] == cfg.resolved_update


def test_an_old_recipe_with_update_null_replays_its_recorded_update_with_one_warning(caplog):
    old = {"method": "crepe", "sparsity": 0.5, "update": None, "resolved_update": "none"}  # as recorded back then
    with caplog.at_level(logging.WARNING, logger="crepe.output.recipe"):
        opts = apply_recipe(RunOptions(), {"prune": old})
    assert opts.prune.update == "none"
    (record,) = caplog.records
    assert "update: null" in record.getMessage() and "\n" not in record.getMessage()


def test_an_admm_grad_recipe_from_before_its_options_replays_the_published_settings(caplog):
    """Written when the admm-grad update had no damping/target options (it ran 0.1 and the usual
    target): it replays those, not today's defaults, and says so in one line."""
    old = {"method": "crepe", "sparsity": 0.5, "update": "admm-grad", "resolved_update": "admm-grad"}
    with caplog.at_level(logging.WARNING, logger="crepe.output.recipe"):
        opts = apply_recipe(RunOptions(), {"prune": old})
    assert (opts.prune.admm_grad_damp, opts.prune.dense_target) == (0.1, 0.0)
    (record,) = caplog.records
    assert "admm-grad" in record.getMessage() and "\n" not in record.getMessage()
    assert opts.prune.dense_share == 1.0
    now = explicit(PruneConfig(method="crepe", admm_grad_damp=0.5))
    assert pinned_update(now) == now  # today's recipes: as written
    before_share = {k: v for k, v in now.items() if k not in ("dense_share", "admm_grad_iterations")}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crepe.output.recipe"):
        assert pinned_update(before_share) == {**before_share, "dense_share": 1.0, "admm_grad_iterations": 20}
    # only what differs from today's default is named: dense_share 1.0 is today's too
    assert "--admm-grad-iterations" in caplog.text and "--dense-share" not in caplog.text
    assert "--dense-target" not in caplog.text


def test_a_recipe_without_update_or_record_assumes_the_current_default_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="crepe.output.recipe"):
        pinned = pinned_update({"method": "crepe"})
    assert pinned["update"] == PruneConfig(method="crepe").resolved_update
    assert "current default" in caplog.text
    caplog.clear()
    assert pinned_update(pinned) == pinned and not caplog.records  # explicit: nothing to say


def test_an_old_saved_recipe_replays_to_identical_weights(tiny_folder, tiny_corpus, tmp_path):
    first = crepe.oneshot(str(tiny_folder), dataset=tiny_corpus, output_dir=str(tmp_path / "a"), **SMALL)
    recipe = yaml.safe_load((tmp_path / "a" / "recipe.yaml").read_text())
    assert all(recipe["prune"][k] is not None for k in ("update", "group", "method", "sparsity", "pattern"))
    recipe["prune"]["update"] = None  # what an older crepe wrote; resolved_update kept its choice
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(recipe))
    again = crepe.oneshot(str(tiny_folder), recipe=str(tmp_path / "old.yaml"))
    for name, module in decoder_linears(first).items():
        assert torch.equal(weight_view(module), weight_view(decoder_linears(again)[name]))
    assert again.pruning_summary["recipe"]["prune"] == recipe["prune"] | {"update": recipe["prune"]["resolved_update"]}


def test_the_cli_refuses_an_llmcompressor_recipe_file_with_one_line(tiny_folder, tmp_path, cli, capsys):
    recipe = {"sparsity_stage": {"sparsity_modifiers": {"SparseGPTModifier": {"sparsity": 0.5, "targets": ["Linear"]}}}}
    (tmp_path / "llmc.yaml").write_text(yaml.safe_dump(recipe))
    assert cli("crepe.prune", ["--model", str(tiny_folder), "--recipe", str(tmp_path / "llmc.yaml")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("crepe.prune: error: not supported: llm-compressor recipes (stages/modifiers) "
                           "(SparseGPTModifier -> method: sparsegpt); crepe reads crepe recipes")
