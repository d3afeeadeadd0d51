"""Keeping the resident set close to live memory, so a memory budget can hold.

glibc raises its mmap threshold each time a large block is freed, after which
blocks of up to 32 MiB come from the heap and stay resident when freed. A
capture or reader that allocates a batch-sized tensor per step then grows its
RSS by several batches of dead memory. :func:`return_freed_memory` fixes the
threshold (``mallopt(M_MMAP_THRESHOLD)``), so large blocks are mapped on
allocation and unmapped on free, for as long as its ``with`` block lasts: the
store writer holds it for a capture, a reader given a memory budget until it
is closed. Elsewhere than glibc it does nothing.

The setting is scoped because it is not free: every large tensor is then a
fresh mapping whose pages fault in on first touch, and a process that kept it
after writing a store ran the forward passes of small models ~1.6x slower (the
atlas's correlation pass after a capture, an SAE trained in the same process).
glibc cannot be put back into its dynamic mode, so the last block to leave sets
the values that mode climbs to in any process that has freed a 32 MiB block
(mmap threshold 32 MiB, trim threshold twice that).

:func:`rss`, :func:`peak_rss` and :func:`reset_peak_rss` read the resident set
from ``/proc`` (Linux), for the memory-budget test and the benchmarks.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Iterator

__all__ = ["return_freed_memory", "rss", "peak_rss", "reset_peak_rss"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
_DYNAMIC_MAX = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: where its dynamic threshold stops
_lock = threading.Lock()
_holders = 0


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def _mallopt(param: int, value: int) -> bool:
    libc = _libc()
    return bool(libc is not None and libc.mallopt(param, value))


@contextlib.contextmanager
def return_freed_memory(threshold: int = 1 << 20) -> Iterator[bool]:
    """Within the block, blocks of ``threshold`` bytes or more go back to the OS when freed.

    Yields True where the setting applies (glibc). Blocks nest, across threads too;
    the last one to leave sets glibc's fast steady state (see the module docstring).
    """
    global _holders
    with _lock:
        applied = _mallopt(_M_MMAP_THRESHOLD, threshold) if _holders == 0 else _libc() is not None
        _holders += 1
    try:
        yield applied
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and applied:
                _mallopt(_M_MMAP_THRESHOLD, _DYNAMIC_MAX)
                _mallopt(_M_TRIM_THRESHOLD, 2 * _DYNAMIC_MAX)


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
