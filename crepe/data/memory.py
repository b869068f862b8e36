"""Calibration data passed in memory (``crepe.oneshot(dataset=...)``): a ``datasets.Dataset``, a list of
strings, or token ids.

- Text (a list of strings, a Dataset's ``text`` column) is joined with blank lines, as ``jsonl:PATH``
  records are, tokenised once, and the windows are drawn at seeded random offsets as from any corpus.
- One token sequence (a 1D integer tensor, a list of ints) is drawn from the same way.
- Token rows (a 2D integer tensor, a list of lists or 1D tensors, a Dataset's ``input_ids`` column,
  which wins over ``text``) are samples used as given: the first ``nsamples`` rows, each cut to its
  first ``seqlen`` tokens; no BOS is added.

A run records the data by its :attr:`MemoryData.description` (``memory:...``); a recipe cannot replay it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch

from crepe.data.windows import calibration_windows, tokenize

PREFIX = "memory:"
SUPPORTED = ("a dataset name or text:/jsonl: spec (str), a datasets.Dataset with a 'text' or 'input_ids' column, "
             "a list of strings, or token ids (a list of ints or of rows, a 1D or 2D integer tensor)")


@dataclass(frozen=True)
class MemoryData:
    """Calibration data held in memory: ``text`` (one string), ``stream`` ([T] ids) or ``rows`` (1D id tensors)."""

    kind: str
    text: str = ""
    stream: torch.Tensor | None = None
    rows: tuple[torch.Tensor, ...] = ()
    description: str = ""


def is_memory(spec: str) -> bool:
    """Whether a recorded calibration spec names data that was passed in memory."""
    return spec.startswith(PREFIX)


def memory_data(data: Any) -> MemoryData:
    """Read ``data`` (see the module doc) without a tokenizer, so a bad type fails before any work."""
    dataset_types = _dataset_types()
    if dataset_types and isinstance(data, dataset_types[1]):
        raise ValueError(f"calibration data is a datasets.DatasetDict with splits {sorted(data)}: pass one, "
                         f"e.g. dataset=data[{sorted(data)[0]!r}]")
    if dataset_types and isinstance(data, dataset_types[0]):
        return _from_dataset(data)
    if isinstance(data, torch.Tensor):
        return _from_tensor(data, "tensor")
    if isinstance(data, (list, tuple)) and data:
        return _from_list(list(data), f"list of {len(data)}")
    raise ValueError(f"unsupported calibration data {_kind(data)}; pass {SUPPORTED}")


def memory_windows(data: MemoryData, tokenizer: Any, nsamples: int, seqlen: int, seed: int,
                   bos_per_window: bool = False) -> torch.Tensor:
    """Calibration windows [nsamples, seqlen] from ``data``."""
    if data.kind == "rows":
        if len(data.rows) < nsamples or min(r.numel() for r in data.rows[:nsamples]) < seqlen:
            raise ValueError(f"calibration token rows: need {nsamples} rows of at least {seqlen} tokens, got "
                             f"{len(data.rows)} rows of {min(r.numel() for r in data.rows)}+ tokens; lower "
                             "num_calibration_samples / max_seq_length")
        return torch.stack([r[:seqlen] for r in data.rows[:nsamples]])
    tokens = tokenize(tokenizer, data.text) if data.kind == "text" else data.stream
    return calibration_windows(tokens, nsamples, seqlen, seed, tokenizer.bos_token_id, bos_per_window)


def _dataset_types() -> tuple[type, type] | None:
    """(Dataset, DatasetDict) when ``datasets`` is imported: a caller holding one has imported it."""
    module = sys.modules.get("datasets")
    return (module.Dataset, module.DatasetDict) if module is not None else None


def _from_dataset(data: Any) -> MemoryData:
    name = f"datasets.Dataset of {data.num_rows} rows"
    if "input_ids" in data.column_names:
        return _from_list(list(data["input_ids"]), f"{name}, input_ids", rows_only=True)
    if "text" in data.column_names:
        return _from_list(list(data["text"]), f"{name}, text")
    raise ValueError(f"calibration datasets.Dataset needs a 'text' or 'input_ids' column; it has {data.column_names}")


def _from_list(items: list[Any], name: str, rows_only: bool = False) -> MemoryData:
    if not items:
        raise ValueError(f"calibration data ({name}) is empty")
    if all(isinstance(x, str) for x in items):
        return MemoryData("text", text="\n\n".join(items), description=f"{PREFIX}{name} texts")
    if not rows_only and all(isinstance(x, int) and not isinstance(x, bool) for x in items):
        return _from_tensor(torch.tensor(items), name)
    rows = tuple(_row(x, name) for x in items)
    return MemoryData("rows", rows=rows, description=f"{PREFIX}{name} token rows")


def _from_tensor(data: torch.Tensor, name: str) -> MemoryData:
    if data.dtype.is_floating_point or data.dtype.is_complex or data.dtype == torch.bool or data.dim() not in (1, 2):
        raise ValueError(f"calibration token ids must be a 1D or 2D integer tensor, got {data.dtype} of shape "
                         f"{list(data.shape)}")
    ids = data.long().cpu()
    shape = "x".join(map(str, ids.shape))
    if ids.dim() == 1:
        return MemoryData("stream", stream=ids, description=f"{PREFIX}{name} token ids [{shape}]")
    return MemoryData("rows", rows=tuple(ids), description=f"{PREFIX}{name} token rows [{shape}]")


def _row(item: Any, name: str) -> torch.Tensor:
    """One sample of token ids (a list of ints or a 1D integer tensor)."""
    row = item if isinstance(item, torch.Tensor) else None
    if row is None and isinstance(item, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in item):
        row = torch.tensor(item, dtype=torch.long)
    if row is None or row.dim() != 1 or row.dtype.is_floating_point or row.dtype == torch.bool or not row.numel():
        raise ValueError(f"calibration data ({name}) mixes types or holds {_kind(item)}; pass {SUPPORTED}")
    return row.long().cpu()


def _kind(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
