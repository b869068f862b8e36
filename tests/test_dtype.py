"""Half-precision weights: scores and masks are computed in float32, weights keep their dtype."""

import torch
from tiny_models import tiny_model, tiny_windows

from crepe.config import PruneConfig
from crepe.methods.registry import score
from crepe.methods.scorers import InputStats
from crepe.prune.model import prune_model


def test_ria_scores_of_wide_fp16_rows_are_computed_in_float32():
    # an 11008-wide row of small weights: |w| / rowsum sits near fp16's subnormals (RIA's reference
    # code scores in fp16); ours must match the float32 computation exactly and never flush to zero
    gen = torch.Generator().manual_seed(0)
    w = (torch.randn(8, 11008, generator=gen) * 1e-3).half()
    stats = InputStats(sq_sum=torch.rand(11008, generator=gen) + 0.5, tokens=1)
    ours = score("ria", w, stats)
    reference = score("ria", w.float(), stats)
    assert ours.dtype == torch.float32 and torch.equal(ours, reference)
    in_fp16 = (w.abs() / w.abs().sum(1, keepdim=True)) + (w.abs() / w.abs().sum(0, keepdim=True))
    assert (in_fp16[w != 0] < torch.finfo(torch.float16).tiny).any()  # fp16 arithmetic would be subnormal
    assert (ours[w != 0] > 0).all()


def test_bf16_model_prunes_like_float32_and_stays_bf16():
    half = tiny_model("llama").to(torch.bfloat16)
    full = tiny_model("llama").to(torch.bfloat16).float()  # the same values, held in float32
    windows = tiny_windows()
    for model in (half, full):
        prune_model(model, windows, PruneConfig(method="crepe", update="none"), progress=False)  # the mask: bitwise
    assert all(p.dtype == torch.bfloat16 for p in half.parameters())
    for (name, a), (_, b) in zip(half.named_parameters(), full.named_parameters()):
        assert torch.equal(a == 0, b == 0), name
