"""Write a model as an ordinary sharded HF folder, one shard per call, atomically.

Shards go into a hidden temporary sibling of the target; ``finish`` adds the index, config,
tokenizer and extra files and renames the folder into place. Any failure (including a full disk)
removes the temporary folder, so no partial output is ever left behind.
"""

from __future__ import annotations

import errno
import json
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import save_file

from crepe.io.files import install_folder, temp_folder
from crepe.streaming.checkpoint import INDEX_NAME


def check_free_space(target: str | Path, needed: int) -> None:
    """Refuse before any work when the target's file system has less than ``needed`` bytes free."""
    parent = Path(target).resolve().parent
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise ValueError(f"not enough space for the output at {target}: {needed / 2**30:.1f} GiB needed, "
                         f"{free / 2**30:.1f} GiB free")


class ShardWriter:
    """Collects shards ``model-XXXXX-of-NNNNN.safetensors`` for ``total`` shards under a temporary folder.

    Each shard is written by a background thread while the caller goes on (the next layer computes);
    at most one shard is pending, so the extra memory is one layer in storage dtype. A failed write
    surfaces at the next ``write``, ``wait`` or ``finish``."""

    def __init__(self, target: str | Path, total: int):
        self.target = Path(target)
        self.total = total
        self.tmp = temp_folder(self.target)
        self.weight_map: dict[str, str] = {}
        self.nbytes = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crepe-shard-writer")
        self._pending: tuple[str, Future] | None = None

    def write(self, number: int, tensors: dict[str, torch.Tensor]) -> None:
        """Queue shard ``number`` (1-based) holding ``tensors``, after the previous shard is on disk."""
        self.wait()
        name = f"model-{number:05d}-of-{self.total:05d}.safetensors"
        shard = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        self._pending = name, self._pool.submit(save_file, shard, str(self.tmp / name), metadata={"format": "pt"})
        self.weight_map.update({k: name for k in shard})
        self.nbytes += sum(v.numel() * v.element_size() for v in shard.values())

    def wait(self) -> None:
        """Block until the pending shard is written; a failed write aborts (no folder is left)."""
        if self._pending is None:
            return
        (name, future), self._pending = self._pending, None
        try:
            future.result()
        except OSError as exc:
            self.abort()
            if exc.errno == errno.ENOSPC:
                raise ValueError(f"no space left on device while writing {name} for {self.target}; "
                                 f"nothing was saved") from exc
            raise

    def finish(self, write_rest: Callable[[Path], Any], overwrite: bool = False) -> Path:
        """Write the index, call ``write_rest(tmp)`` for config/tokenizer/reports, rename into place."""
        self.wait()
        try:
            index = {"metadata": {"total_size": self.nbytes}, "weight_map": dict(sorted(self.weight_map.items()))}
            (self.tmp / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
            write_rest(self.tmp)
            if self.target.exists() and not overwrite:
                raise ValueError(f"--save folder {self.target} already exists; pass --overwrite to replace it")
            install_folder(self.tmp, self.target)
            self._pool.shutdown()
        except OSError as exc:
            self.abort()
            if exc.errno == errno.ENOSPC:
                raise ValueError(f"no space left on device while finishing {self.target}; nothing was saved") from exc
            raise
        except BaseException:
            self.abort()
            raise
        return self.target

    def abort(self) -> None:
        """Stop writing and remove the temporary folder (a pending shard is waited for first)."""
        self._pending = None
        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
