import subprocess
import sys

import torch

from crepe.vit.config import HeadPruneConfig, TCSConfig
from crepe.vit.surgery import prune_heads
from crepe.vit.tcs import install_tcs

from .tiny import logits, tiny_vit


def test_importing_does_not_disturb_the_global_rng():
    code = (
        "import torch; torch.manual_seed(0); s = torch.get_rng_state().clone();"
        "import crepe, crepe.vit, crepe.vit.config, crepe.vit.heads, crepe.vit.surgery, crepe.vit.tcs,"
        " crepe.vit.macs, crepe.vit.train, crepe.vit.data, crepe.vit.bench, crepe.vit.__main__;"
        "assert torch.equal(s, torch.get_rng_state()), 'global RNG moved'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_building_pruning_and_running_tcs_leave_the_global_rng_alone(pixels):
    torch.manual_seed(123)
    state = torch.get_rng_state().clone()
    model = tiny_vit()
    prune_heads(model, HeadPruneConfig(0.5), dense=True)
    install_tcs(model, TCSConfig(fc2_ratios=(0.5,), sample_ratio=0.1))
    logits(model, pixels)
    assert torch.equal(state, torch.get_rng_state())
