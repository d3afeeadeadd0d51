"""Keeping the resident set close to live memory, so a memory budget can hold.

glibc raises its mmap threshold each time a large block is freed, after which
blocks of up to 32 MiB come from the heap and stay resident when freed. A
capture or reader that allocates a batch-sized tensor per step then grows its
RSS by several batches of dead memory. :func:`return_freed_memory` fixes the
threshold (``mallopt(M_MMAP_THRESHOLD)``), so large blocks are mapped on
allocation and unmapped on free; it is called by the store writer and by a
reader given a memory budget. Elsewhere than glibc it does nothing.

:func:`rss`, :func:`peak_rss` and :func:`reset_peak_rss` read the resident set
from ``/proc`` (Linux), for the memory-budget test and the benchmarks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["return_freed_memory", "rss", "peak_rss", "reset_peak_rss"]

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h


@functools.cache
def return_freed_memory(threshold: int = 1 << 20) -> bool:
    """Make blocks of ``threshold`` bytes or more go back to the OS when freed; True if applied."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def _status(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes (``None`` where there is no such file)."""
    try:
        with open("/proc/self/status") as f:
            return next((int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":")), None)
    except OSError:
        return None


def rss() -> int | None:
    """Resident set of this process now, in bytes, mapped file pages included (Linux)."""
    return _status("VmRSS")


def peak_rss() -> int | None:
    """Peak resident set since the process started or :func:`reset_peak_rss`, in bytes (Linux)."""
    return _status("VmHWM")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter to the current level; False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
