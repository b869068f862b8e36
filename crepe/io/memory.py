"""Process memory knobs for layer-by-layer work (glibc only; no-ops elsewhere).

A 7B layer's scores and masks are tensors of ~180 MB. glibc serves such blocks with fresh ``mmap``
pages and unmaps them on free, so every new tensor pays its page faults again (abs() of an
[11008, 4096] tensor: 0.089 s CPU, against 0.014 s when the memory is reused). Raising the mmap and
trim thresholds lets the heap reuse freed blocks; :func:`release_freed_memory` (called after each
layer) hands the free heap back to the OS, so peak RSS stays about one layer's working set.

Each layer then faults its working set in again, 4 KiB at a time. :func:`reexec_with_hugepage_malloc`
restarts a command line once with glibc's ``glibc.malloc.hugetlb=1`` tunable, so the heap is backed by
transparent huge pages (2 MiB) and a layer's large tensors fault in far fewer pages; partly used
huge pages stay resident, so the peak RSS is somewhat higher. Tunables are read at process start only, hence the re-exec; set ``CREPE_HUGEPAGES=0`` to
turn it off (``CREPE_HUGEPAGES=0 python -m benchmarks.scale ...`` measures the difference).
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
_THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def reuse_freed_memory() -> None:
    """Let glibc keep large freed blocks on the heap for reuse (until :func:`release_freed_memory`)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc keeps them otherwise, inflating RSS)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def hugepages_available() -> bool:
    """True on Linux with transparent huge pages in ``always`` or ``madvise`` mode."""
    try:
        mode = _THP_MODE.read_text()
    except OSError:
        return False
    return "[always]" in mode or "[madvise]" in mode


def reexec_with_hugepage_malloc() -> None:
    """Restart this process's command line (``sys.orig_argv``) with :data:`HUGEPAGE_TUNABLE` added to
    ``GLIBC_TUNABLES``, once; a no-op when it is set already, when ``CREPE_HUGEPAGES=0``, or without THP.
    Call it first thing in a ``__main__`` block, never from library code (it replaces the process)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables or os.environ.get("CREPE_HUGEPAGES") == "0" or not hugepages_available():
        return
    env = dict(os.environ, GLIBC_TUNABLES=f"{tunables}:{HUGEPAGE_TUNABLE}" if tunables else HUGEPAGE_TUNABLE)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
