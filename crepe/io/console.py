"""What every command-line entry point shares: logging setup and one-line errors with exit code 2."""

from __future__ import annotations

import logging
import sys
from typing import Callable


def setup_logging(level: str = "INFO") -> None:
    """Configure root logging for a CLI run (library modules never do this)."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("transformers").setLevel(logging.ERROR)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a library's multi-line message joined with spaces)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def run_cli(prog: str, main: Callable[[], int | None]) -> None:
    """Run ``main``; bad input (ValueError, FileNotFoundError) becomes one line on stderr and exit 2."""
    try:
        code = main()
    except (ValueError, FileNotFoundError) as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
