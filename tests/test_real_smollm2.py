"""Real-model checks on SmolLM2-135M (4-bit GGUF dequantised), small settings, CPU. Marked slow."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from crepe.config import PruneConfig
from crepe.data.prepare import calibration_set, eval_set
from crepe.evaluation.perplexity import perplexity
from crepe.methods.masks import is_valid_nm
from crepe.methods.params import Pattern
from crepe.models.adapters import decoder_linears, weight_view
from crepe.models.loading import load_model
from crepe.output.folder import pruning_record, save_pruned
from crepe.prune.model import prune_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data():
    model, tok = load_model("smollm2-135m")
    calib, _ = calibration_set(tok, "wikivital", 8, 128, seed=0)
    windows, _ = eval_set(tok, "wikivital", "test", 256, max_windows=6)
    return tok, calib, windows, perplexity(model, windows, progress=False)


def pruned(method: str, calib, pattern: Pattern = Pattern(), sparsity: float = 0.5):
    model, _ = load_model("smollm2-135m")
    summary = prune_model(model, calib, PruneConfig(method=method, sparsity=sparsity, pattern=pattern), progress=False)
    return model, summary


def test_real_model_prunes_to_the_requested_sparsity_and_magnitude_is_worse_than_wanda(data):
    tok, calib, windows, dense_ppl = data
    ppl = {}
    for method in ("magnitude", "wanda"):
        model, summary = pruned(method, calib)
        assert len(summary.linears) == 210
        assert summary.realised_sparsity == pytest.approx(0.5, abs=1e-3)
        ppl[method] = perplexity(model, windows, progress=False)
    assert 5 < dense_ppl < ppl["wanda"] < ppl["magnitude"]


def test_real_model_nm_pruning_is_valid_in_every_linear(data):
    _, calib, windows, dense_ppl = data
    model, summary = pruned("crepe", calib, Pattern(2, 4))
    assert all(is_valid_nm(weight_view(m), 2, 4) for m in decoder_linears(model).values())
    assert dense_ppl < perplexity(model, windows, progress=False) < 1e4


def test_real_model_zeros_stay_zero_after_save_and_reload(data, tmp_path):
    tok, calib, windows, _ = data
    model, summary = pruned("ria", calib, sparsity=0.6)
    cfg = PruneConfig(method="ria", sparsity=0.6)
    save_pruned(model, tok, tmp_path / "m", pruning_record(cfg.to_dict(), summary.realised_sparsity, "unstructured"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.float32).eval()
    for name, module in decoder_linears(loaded).items():
        assert torch.equal(weight_view(module) == 0, weight_view(decoder_linears(model)[name]) == 0)
    assert perplexity(loaded, windows, progress=False) == pytest.approx(perplexity(model, windows, progress=False), rel=1e-5)


@pytest.mark.parametrize("cfg", [PruneConfig(method="crepe"), PruneConfig(method="sparsegpt", pattern=Pattern(2, 4), sparsity=0.5)],
                         ids=["crepe-50", "sparsegpt-2:4"])
def test_real_model_streamed_prune_is_bit_identical_to_in_memory(tmp_path, cfg):
    from crepe.models.loading import local_folder
    from crepe.run.job import run
    from crepe.run.options import RunOptions

    common = dict(model=local_folder("smollm2-135m"), prune=cfg, nsamples=4, seqlen=128, eval_seqlen=128,
                  max_eval_windows=4, skip_dense_eval=True)
    results = {mode: run(RunOptions(offload=mode, save=str(tmp_path / mode), **common), echo=lambda line: None)
               for mode in ("none", "disk")}
    assert results["none"].report["ppl_pruned"] == results["disk"].report["ppl_pruned"]
    a, b = (AutoModelForCausalLM.from_pretrained(tmp_path / mode).state_dict() for mode in ("none", "disk"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
