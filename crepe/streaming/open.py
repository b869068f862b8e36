"""Open a checkpoint folder streamed: a skeleton with no decoder weights, its resident part loaded."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from crepe.engine.layer_store import default_compute_dtype
from crepe.models.adapters import get_adapter
from crepe.streaming.checkpoint import Checkpoint
from crepe.streaming.store import StreamedLayers, fused_keys, key_map

log = logging.getLogger(__name__)


def build_skeleton(folder: str | Path, dtype: torch.dtype) -> nn.Module:
    """The model of ``folder``'s config with every parameter on the meta device (no memory), built
    under accelerate's ``init_empty_weights`` so non-persistent buffers (rotary frequencies) are real."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)  # never run a folder's own code
    except Exception as exc:  # transformers raises many types for a bad config
        raise ValueError(f"cannot read the config of {folder}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    get_adapter(config.model_type)  # unknown architecture: fail before anything is built
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def check_shapes(model: nn.Module, checkpoint: Checkpoint, names: dict[str, str]) -> None:
    """Refuse a checkpoint whose tensor shapes (from the shard headers) disagree with its config's model:
    a streamed layer is filled tensor by tensor, so nothing else would notice before a method that reads
    no statistics prunes the wrong-shaped weight."""
    expected = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for key, ckpt_name in names.items():
        want, got = tuple(expected[key].shape) if key in expected else None, checkpoint.shapes.get(ckpt_name)
        if want is not None and got is not None and want != got:
            raise ValueError(f"checkpoint tensor {ckpt_name} has shape {list(got)} but {checkpoint.folder}/config.json "
                             f"gives {list(want)}: the weights and the config disagree")


def check_folder(folder: str | Path) -> None:
    """:func:`check_shapes` for a safetensors folder about to be loaded in memory (transformers would print
    its load report before failing); architectures whose checkpoints are converted on load are left to it."""
    checkpoint = Checkpoint.open(folder)
    model = build_skeleton(folder, checkpoint.dtype)
    try:
        names = key_map(model, checkpoint)
    except ValueError:
        return
    check_shapes(model, checkpoint, names)


def open_streamed(folder: str | Path, dtype: torch.dtype | None = None,
                  device: torch.device | str | None = None) -> nn.Module:
    """A model whose decoder layers stay on disk: ``model.crepe_layer_store`` streams them through
    the engine. ``dtype`` None keeps the checkpoint's dtype; layers compute in float32 on CPU."""
    checkpoint = Checkpoint.open(folder)
    storage = dtype or checkpoint.dtype
    device = torch.device(device or "cpu")
    model = build_skeleton(folder, storage)
    names = key_map(model, checkpoint)
    check_shapes(model, checkpoint, names)
    layers_path = get_adapter(model).layers_path + "."
    resident = {k: v for k, v in names.items() if not k.startswith(layers_path)}
    tensors = checkpoint.read(list(resident.values()))
    for key, ckpt_name in resident.items():
        owner, _, name = key.rpartition(".")
        module = model.get_submodule(owner)
        value = tensors[ckpt_name]
        value = value.to(storage) if value.is_floating_point() else value
        if name in module._parameters:
            module._parameters[name] = nn.Parameter(value, requires_grad=False)
        else:
            module._buffers[name] = value
    model.tie_weights()
    left = [k for k, v in model.state_dict().items() if v.device.type == "meta" and not k.startswith(layers_path)]
    if left:
        raise ValueError(f"the checkpoint in {folder} has no tensor for {left[0]} (and {len(left) - 1} more)")
    model.crepe_layer_store = StreamedLayers(model, checkpoint, device, default_compute_dtype(device, storage), names,
                                               fused_keys(model, checkpoint))
    log.info("streaming %s: %.2f GiB of weights on disk, %d decoder layers read one at a time",
             folder, checkpoint.nbytes / 2**30, len(get_adapter(model).layers(model)))
    return model
