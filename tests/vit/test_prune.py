import torch

from crepe.vit.config import HeadPruneConfig, TCSConfig, ViTPruneConfig
from crepe.vit.prune_vit import apply_pruning, finetune, realised_tcs_ratios

from .tiny import tiny_vit


def test_realised_tcs_ratios_use_the_kept_counts():
    model = tiny_vit(mlp=60)
    fc1, fc2 = realised_tcs_ratios(model, TCSConfig(fc2_ratios=(0.5,), fc1_ratios=(0.0, 0.1, 0.0)))
    assert fc2 == [0.0, 0.5, 0.5]
    assert fc1 == [0.0, 1 - 28 / 32, 0.0]


def test_apply_pruning_reports_fewer_macs_and_finetune_keeps_shapes_and_mode():
    model = tiny_vit()
    cfg = ViTPruneConfig(HeadPruneConfig(0.5), TCSConfig(fc2_ratios=(0.5,), mode="dense"))
    handle, report = apply_pruning(model, cfg, dense=True)
    assert report["macs_after"] < report["macs_before"]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
    before = model.vit.layers[1].mlp.fc2.weight.clone()
    losses = finetune(model, handle, x, y, epochs=1)
    assert len(losses) == 1 and not torch.equal(before, model.vit.layers[1].mlp.fc2.weight)
    assert model.vit.layers[1].attention.q_proj.out_features == 16
    assert handle.modules[1].cfg.mode == "dense"
