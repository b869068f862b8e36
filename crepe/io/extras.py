"""Optional packages (the extras of pyproject.toml): a missing one is one line naming the extra that
installs it, a ValueError, so every command prints it and exits 2 without a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

DISTRIBUTION = "crepe-prune"  # pyproject.toml's [project] name; the import package is crepe


class MissingExtra(ValueError):
    """An optional package is not installed."""


@contextmanager
def needs_extra(what: str, package: str, extra: str, module: str) -> Iterator[None]:
    """Imports inside the block that fail because ``module`` is missing raise :class:`MissingExtra`:
    "<what> needs the optional package <package>: pip install 'crepe-prune[<extra>]'"."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != module:
            raise
        raise MissingExtra(f"{what} needs the optional package {package}: pip install '{DISTRIBUTION}[{extra}]'") from exc
