"""The C allocator's settings for a process that makes arrays of the same large sizes over and over."""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
"""Allocations below this come from the heap: glibc's largest mmap threshold on a 64-bit system."""
TRIM_THRESHOLD = 128 << 20
"""Free memory at the heap's top that glibc keeps rather than gives back to the system."""


def keep_freed_memory() -> bool:
    """Serve large allocations from the heap and keep freed memory for the next ones (glibc); False elsewhere.

    By default glibc maps every allocation of 128 KiB or more afresh and unmaps it when freed
    (the threshold adapts, but a request of the size just freed is mapped again). A backfill
    makes a few such arrays per batch (a batch's lines, its samples), so each batch touched
    new pages and page-faulted on them: about half of the encoding's time. Kept, those pages
    are reused warm. Peak memory grows by at most the largest batch's arrays. Only for
    backfills: in real time a run with freed memory kept showed one stall of 50-65 ms a
    minute in two runs of three (at most 6 ms without), so real time keeps the defaults.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): its own allocator's defaults stay
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
