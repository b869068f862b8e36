"""Open a model for a run: resident in memory, or streamed from its checkpoint one decoder layer at a
time when it would not fit (see :func:`crepe.models.loading.should_stream`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from crepe.models.loading import (
    load_error,
    load_model,
    load_tokenizer,
    local_folder,
    resolve_dtype,
    should_stream,
)
from crepe.streaming.checkpoint import INDEX_NAME, SINGLE_NAME, Checkpoint
from crepe.streaming.open import check_folder, open_streamed


@dataclass
class OpenedModel:
    """model: resident or a streamed skeleton (``streamed``); folder: where its weights are read from."""

    model: object
    tokenizer: object
    streamed: bool
    dtype: torch.dtype
    folder: str


def open_model(spec: str, dtype: str | None = "auto", offload: str = "auto",
               device: str | None = None) -> OpenedModel:
    """Open ``spec`` in memory or streamed from disk (see :func:`should_stream`); ``device`` is where
    streamed layers are computed. Hub ids are downloaded (safetensors only) before streaming."""
    where = local_folder(spec)
    if offload == "disk" and not Path(where).is_dir():  # a hub id: stream from a local snapshot
        where = _download(spec, where)
    has_safetensors = (Path(where) / INDEX_NAME).is_file() or (Path(where) / SINGLE_NAME).is_file()
    if Path(where).is_dir() and offload != "none":
        torch_dtype = resolve_dtype(dtype, where)
        if offload == "disk" or has_safetensors:  # auto falls back to memory for .bin-only folders
            checkpoint = Checkpoint.open(where)
            if should_stream(offload, checkpoint.nbytes, torch_dtype, checkpoint.dtype):
                model = open_streamed(where, torch_dtype, device)
                return OpenedModel(model, load_tokenizer(spec, where), True, torch_dtype, where)
    if has_safetensors:
        check_folder(where)  # weights that disagree with the config: one line before any work
    model, tokenizer = load_model(spec, dtype)
    return OpenedModel(model, tokenizer, False, next(model.parameters()).dtype, where)


def _download(spec: str, repo: str) -> str:
    """A local snapshot of a hub model's safetensors, config and tokenizer files."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo, allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt"])
    except Exception as exc:
        raise load_error(spec, exc) from exc
