"""What a run records about its environment: the library versions and the peak memory."""

from __future__ import annotations

import platform
import resource
import sys

VERSION = "0.1.0"  # crepe's version (crepe.__version__)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def versions() -> dict[str, str]:
    import torch
    import transformers

    return {"crepe": VERSION, "python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "platform": platform.platform(),
            "threads": str(torch.get_num_threads())}
