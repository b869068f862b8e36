"""A Hugging Face safetensors checkpoint on disk, read tensor by tensor without loading the model.

``Checkpoint.open`` validates the folder before any work: every shard the index names exists, every
shard holds the tensors the index says, and no shard is shorter than its header promises (a
truncated copy), each as one clear ``ValueError``.
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"


def _read_header(path: Path) -> dict:
    """The JSON header of one safetensors file; checks the file holds every byte it announces."""
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size:
                raise ValueError
            header = json.loads(handle.read(length))
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"shard {path.name} is not a readable safetensors file (truncated or corrupt)") from exc
    header.pop("__metadata__", None)
    end = max((info["data_offsets"][1] for info in header.values()), default=0)
    if 8 + length + end > size:
        raise ValueError(f"shard {path.name} is truncated: it holds {size} bytes, its header needs {8 + length + end}")
    return header


@dataclass
class Checkpoint:
    """folder: the HF folder; weight_map: tensor name -> shard file name; shapes/dtypes: from headers."""

    folder: Path
    weight_map: dict[str, str]
    nbytes: int
    dtypes: dict[str, str]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def open(cls, folder: str | Path) -> "Checkpoint":
        folder = Path(folder)
        index = folder / INDEX_NAME
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"cannot read {index}: {exc}") from exc
        elif (folder / SINGLE_NAME).is_file():
            weight_map = {name: SINGLE_NAME for name in _read_header(folder / SINGLE_NAME)}
        else:
            raise ValueError(f"{folder} holds no safetensors weights ({INDEX_NAME} or {SINGLE_NAME}); "
                             f"streaming needs a safetensors checkpoint")
        nbytes, dtypes, shapes = 0, {}, {}
        by_file: dict[str, list[str]] = defaultdict(list)
        for name, shard in weight_map.items():
            by_file[shard].append(name)
        for shard, names in sorted(by_file.items()):
            path = folder / shard
            if not path.is_file():
                raise ValueError(f"checkpoint index names shard {shard}, which is missing from {folder}")
            header = _read_header(path)
            for name in names:
                if name not in header:
                    raise ValueError(f"checkpoint index puts {name} in {shard}, but that shard does not hold it")
                info = header[name]
                nbytes += info["data_offsets"][1] - info["data_offsets"][0]
                dtypes[name] = info["dtype"]
                shapes[name] = tuple(info["shape"])
        return cls(folder, dict(weight_map), nbytes, dtypes, shapes)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype most of the floating tensors are stored in."""
        floating = [d for d in self.dtypes.values() if d.startswith(("F", "BF"))]
        name = max(set(floating), key=floating.count) if floating else "F32"
        return {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}.get(name, torch.float32)

    def read(self, names: list[str]) -> dict[str, torch.Tensor]:
        """The named tensors (CPU, stored dtype), reading each shard once."""
        by_file: dict[str, list[str]] = defaultdict(list)
        for name in names:
            by_file[self.weight_map[name]].append(name)
        out: dict[str, torch.Tensor] = {}
        for shard, members in by_file.items():
            try:
                with safe_open(str(self.folder / shard), framework="pt") as handle:
                    for name in members:
                        out[name] = handle.get_tensor(name)
            except Exception as exc:  # safetensors raises its own error types for a damaged file
                raise ValueError(f"cannot read {members[0]} from shard {shard}: {exc}") from exc
        return out
