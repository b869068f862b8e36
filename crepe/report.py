"""Run reports: environment versions, peak memory (and the atomic JSON helpers, from crepe.files)."""

from __future__ import annotations

import platform
import resource
import sys

from crepe.files import read_json, write_json_atomic  # noqa: F401  (re-exported: callers import them from here)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def versions() -> dict[str, str]:
    import torch
    import transformers

    import crepe

    return {"crepe": crepe.__version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "platform": platform.platform(),
            "threads": str(__import__("torch").get_num_threads())}
