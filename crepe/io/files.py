"""Atomic file and folder writes, output-path checks and JSON reads: the one copy every module uses.

A write goes to a temporary file in the target's folder and is renamed into place with
``os.replace``, so a reader never sees a half-written file and a failed write loses nothing.
Temporary names are crepe's own (``.NAME.crepe-tmp-PID-XXXX``, ``.NAME.crepe-old-PID``): what a killed
run (SIGKILL) leaves is swept by the next write into the same folder (:func:`sweep_stale`), and a
replaced folder caught between its two renames is put back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMP_MARK = ".crepe-"
_TEMP = re.compile(rf"^\.(?P<name>.+){re.escape(TEMP_MARK)}(?P<kind>tmp|old)-(?P<pid>\d+)(-.*)?$")


def temp_prefix(path: Path) -> str:
    """The name prefix of this process's temporary siblings of ``path``."""
    return f".{path.name}{TEMP_MARK}tmp-{os.getpid()}-"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (signal 0 probes without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_stale(folder: str | Path) -> list[Path]:
    """Remove the temporary files and folders crepe left in ``folder`` from a process that is gone (a
    killed run); a replaced folder whose new copy was never installed is renamed back. Returns what it removed."""
    folder = Path(folder)
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:  # unreadable: the output checks say so in their own words
        return []
    removed = []
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or _alive(int(match["pid"])):
            continue
        original = folder / match["name"]
        try:
            if match["kind"] == "old" and not original.exists():
                os.replace(entry, original)
                continue
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink(missing_ok=True)
        except OSError:  # best effort: a read-only folder keeps its leftovers
            continue
        removed.append(entry)
    return removed


def temp_folder(target: Path) -> Path:
    """A new empty temporary sibling folder of ``target`` (stale ones swept first)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target.parent)
    return Path(tempfile.mkdtemp(prefix=temp_prefix(target), dir=target.parent))


def writable_parent(path: str | Path, what: str) -> Path:
    """The nearest existing ancestor of ``path``; ValueError naming ``what`` if it is not a writable folder."""
    parent = Path(path).expanduser().absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot write {what} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {what} {path}: {parent} is not writable")
    return parent


def check_output_file(path: str | Path | None, what: str) -> None:
    """Fail before any work unless ``path`` (None: no output) can take a file: not empty, not a folder,
    not read-only, in a folder that exists or can be made and is writable. ``what`` names it (``--report``)."""
    if path is None:
        return
    if not str(path).strip():
        raise ValueError(f"{what} needs a file path, got an empty one")
    file = Path(path).expanduser()
    if file.is_dir() or str(path).endswith(("/", os.sep)):
        raise ValueError(f"{what} {path} is a folder; give a file path")
    if file.exists() and not os.access(file, os.W_OK):
        raise ValueError(f"cannot write {what} {path}: the file is read-only")
    writable_parent(file, what)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds it replaces ``path``,
    otherwise it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
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
        old = path.with_name(f".{path.name}{TEMP_MARK}old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
