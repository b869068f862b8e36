"""What a run records about its environment: the library versions and the peak memory."""

from __future__ import annotations

import platform
import resource
import sys

VERSION = "0.1.0"  # crepe's version (crepe.__version__)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform.processor()`` says, else "unknown"."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    """Library versions and the machine a run's figures came from: timings (and the last digits of
    float results) move with the CPU and the vector instructions torch uses on it."""
    import torch
    import transformers

    return {"crepe": VERSION, "python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "platform": platform.platform(),
            "threads": str(torch.get_num_threads()), "cpu": cpu_name(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
