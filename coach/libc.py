"""The C library's few calls Python lacks (heap trimming, malloc tuning, parent-death
signal), looked up once: glibc on Linux, None elsewhere (macOS, Windows, musl), where the
callers do without."""

from __future__ import annotations

import ctypes
import functools

__all__ = ["glibc"]


@functools.cache
def glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.malloc_trim  # noqa: B018 -- glibc's own: proves it is glibc
    except (OSError, AttributeError):
        return None
    return libc
