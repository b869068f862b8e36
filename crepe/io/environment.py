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
    float results) move with the CPU and the vector instructions torch uses on it, and whether it
    multiplies bfloat16 natively decides what the default ``--admm-grad-products auto`` runs."""
    import torch
    import transformers

    found = {"crepe": VERSION, "python": sys.version.split()[0], "torch": torch.__version__,
             "transformers": transformers.__version__, "platform": platform.platform(),
             "threads": str(torch.get_num_threads()), "cpu": cpu_name(),
             "cpu_capability": torch.backends.cpu.get_cpu_capability(),
             "cpu_bfloat16_native": str(bfloat16_native("cpu"))}  # what --admm-grad-products auto ran on the CPU
    if torch.cuda.is_available():
        found["cuda_bfloat16_native"] = str(bfloat16_native("cuda"))
    return found


def bfloat16_native(device_type: str) -> bool | None:
    """Whether ``device_type`` ("cpu", "cuda") multiplies bfloat16 matrices natively: a CUDA GPU that
    supports bfloat16 (Ampere on), a CPU with AVX512-BF16 or AMX tiles; None where torch cannot tell
    (the CPU checks are private torch functions). Elsewhere bfloat16 products are emulated, and slower
    than float32."""
    import torch

    if device_type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False) if torch.cuda.is_available() else None
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if device_type != "cpu" or None in checks:
        return None
    return any(check() for check in checks)
