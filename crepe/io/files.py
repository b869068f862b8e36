"""Atomic file and folder writes and JSON reads: the one copy every module uses.

A write goes to a temporary file in the target's folder and is renamed into place with
``os.replace``, so a reader never sees a half-written file and a failed write loses nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds it replaces ``path``,
    otherwise it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file, then move it onto ``path`` (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (non-JSON values are written with ``str``)."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text))


def read_json(path: str | Path, what: str = "JSON") -> Any:
    """Parse the JSON file at ``path``; a missing or corrupt file raises ValueError naming ``what``."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {what} {path}: {exc}") from exc


def install_folder(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` folder to ``path``, replacing an existing one only at the last step."""
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
