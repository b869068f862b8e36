"""From a dataset spec and a tokenizer to calibration or evaluation windows plus their protocol."""

from __future__ import annotations

from functools import lru_cache

import torch

from crepe.data.corpora import canonical_split, load_text
from crepe.data.memory import MemoryData, is_memory, memory_windows
from crepe.data.windows import WindowSpec, calibration_windows, eval_windows, tokenize


@lru_cache(maxsize=8)
def _tokens(tokenizer, dataset: str, split: str) -> torch.Tensor:
    return tokenize(tokenizer, load_text(dataset, split))


def dataset_tokens(tokenizer, dataset: str, split: str) -> torch.Tensor:
    """Token ids [T] of ``dataset``/``split`` (memoised per tokenizer)."""
    return _tokens(tokenizer, dataset, canonical_split(split) if not dataset.startswith(("text:", "jsonl:")) else split)


def check_data(dataset: str, split: str) -> None:
    """Read ``dataset``/``split`` once, so a missing file or an unreachable hub fails before any work (hub
    texts are memoised: the run reads them again for free)."""
    if is_memory(dataset):
        raise ValueError(f"data {dataset!r} was passed in memory and cannot be read again: pass it to "
                         "crepe.oneshot(dataset=...), or use a corpus name, text:PATH or jsonl:PATH")
    load_text(dataset, canonical_split(split) if not dataset.startswith(("text:", "jsonl:")) else split)


def eval_set(tokenizer, dataset: str, split: str, seqlen: int, max_windows: int | None = None,
             bos_per_window: bool = False) -> tuple[torch.Tensor, WindowSpec]:
    """Evaluation windows [w, seqlen] and the protocol that describes them."""
    tokens = dataset_tokens(tokenizer, dataset, split)
    windows = eval_windows(tokens, seqlen, max_windows, tokenizer.bos_token_id, bos_per_window)
    return windows, WindowSpec(dataset, split, seqlen, windows.shape[0], windows.numel(), bos_per_window)


def calibration_set(tokenizer, dataset: str, nsamples: int, seqlen: int, seed: int,
                    bos_per_window: bool = False, data: MemoryData | None = None) -> tuple[torch.Tensor, WindowSpec]:
    """Calibration windows [nsamples, seqlen] from the calibration split of ``dataset``, or from ``data``
    passed in memory (``dataset`` is then its description)."""
    if data is not None:
        windows = memory_windows(data, tokenizer, nsamples, seqlen, seed, bos_per_window)
    else:
        tokens = dataset_tokens(tokenizer, dataset, "calibration")
        windows = calibration_windows(tokens, nsamples, seqlen, seed, tokenizer.bos_token_id, bos_per_window)
    return windows, WindowSpec(dataset, "calibration", seqlen, nsamples, windows.numel(), bos_per_window)
