"""Provenance of a result: the commit, the command and the resolved config that made it.

Every script that writes under ``results/`` puts :func:`provenance` into its JSON (a ``provenance``
key) and :func:`markdown_stamp` on the first line of its markdown tables, so a figure can always be
traced to the code and the flags that produced it, and a test can re-resolve the command through the
current code and see whether the figure is stale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

UNKNOWN = "unknown"


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit(cwd: str | Path | None = None) -> str:
    """Short hash of HEAD, with ``-dirty`` when tracked files outside ``results/`` differ from it (the
    results a run writes are its outputs, not its code); ``"unknown"`` outside a git work tree or
    without git. ``cwd`` defaults to this package's folder."""
    cwd = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    head = _git(["rev-parse", "--short", "HEAD"], cwd)
    if not head:
        return UNKNOWN
    dirty = _git(["status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)results"], cwd)
    return head + ("-dirty" if dirty else "")


def file_commit(path: str | Path, cwd: str | Path | None = None) -> str:
    """Short hash of the last commit that changed ``path`` (``"unknown"`` if none or no git)."""
    cwd = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    return _git(["log", "-1", "--format=%h", "--", str(path)], cwd) or UNKNOWN


def canonical_json(config: Any) -> str:
    """Key-sorted, whitespace-free JSON: the same config always gives the same text."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Any) -> str:
    """sha256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def command_line(command: list[str] | str) -> str:
    """A shell-quoted command line from an argv list (a string is returned unchanged)."""
    return command if isinstance(command, str) else shlex.join(command)


def current_command() -> list[str]:
    """This process's command as a user would type it: ``python path/to/x.py ...`` or ``python -m pkg.mod ...``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return ["python", "-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(Path.cwd())
    except ValueError:
        pass
    return ["python", str(script), *sys.argv[1:]]


def provenance(command: list[str] | str, config: Any, with_versions: bool = True) -> dict[str, Any]:
    """The record stored with a result: commit, command line (and argv), resolved config, its hash,
    UTC date and library versions."""
    record = {"commit": git_commit(), "command": command_line(command),
              "argv": shlex.split(command) if isinstance(command, str) else list(command),
              "config": config, "config_sha256": config_hash(config),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if with_versions:
        from crepe.io.environment import versions

        record["versions"] = versions()
    return record


def markdown_stamp(record: dict[str, Any]) -> str:
    """One line for the top of a markdown table: command, commit and config hash of ``record``."""
    return (f"Made by `{record['command']}` at commit {record['commit']} "
            f"(config sha256 {record['config_sha256'][:12]}, {record['date'][:10]}).")
