"""A benchmark cell prunes through the same per-linear path as ``python -m crepe.prune``: same weights."""

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import FAST_PRUNE_ARGS as FAST

from benchmarks.common import open_bench, prune, prune_options
from crepe.methods.registry import get_method
from crepe.models.adapters import decoder_linears, weight_view
from crepe.run.options import RunOptions

CASES = {  # name -> (crepe.prune flags, PruneConfig fields)
    "default update": ([], {}),
    "admm with a fixed mask": (["--update", "admm"], {"update": "admm"}),
    "no update": (["--update", "none"], {"update": "none"}),
}


@pytest.mark.parametrize("case", CASES)
def test_a_benchmark_cell_and_the_cli_give_identical_weights(case, tiny_folder, tiny_corpus, tmp_path, cli):
    flags, fields = CASES[case]
    save = tmp_path / "cli"
    argv = ["--model", str(tiny_folder), "--calib-dataset", tiny_corpus, "--eval-dataset", "none", *FAST,
            "--method", "crepe", "--sparsity", "0.5", *flags, "--save", str(save)]
    assert cli("crepe.prune", argv) == 0
    saved = load_file(save / "model.safetensors")
    base = RunOptions(model=str(tiny_folder), calib_dataset=tiny_corpus, eval_dataset=tiny_corpus, nsamples=4,
                      seqlen=32, eval_seqlen=32, max_eval_windows=4)
    bench = open_bench(base, second_text=False)
    report = prune(bench, prune_options(base, "crepe", "0.5", **fields))
    assert report["config"]["resolved_update"] == (fields.get("update") or get_method("crepe").default_update)
    linears = decoder_linears(bench.model)
    assert linears
    for key, module in linears.items():
        stored = next(v for k, v in saved.items() if k.endswith(f"{key}.weight"))
        assert torch.equal(weight_view(module), stored), key
