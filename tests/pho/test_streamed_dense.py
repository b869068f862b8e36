"""pho's one-pass trial carries the dense stream as crepe.prune does: --dense-share reaches the engine."""

import torch
from tiny_models import tiny_model, tiny_windows

from crepe.config import PruneConfig
from pho.streamed import streamed_trial


def test_a_sequential_trial_takes_the_configs_dense_share():
    windows = tiny_windows()
    nll = {share: streamed_trial(tiny_model("llama"), {}, PruneConfig(method="crepe", sparsity=0.5, dense_share=share),
                                 windows, sequential=True, batch_size=2)[0]
           for share in (1.0, 0.5)}
    assert all(torch.isfinite(torch.tensor(v)) for v in nll.values())
    assert nll[1.0] != nll[0.5]
