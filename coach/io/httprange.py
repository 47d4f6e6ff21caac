"""HTTP ``Range`` headers for the replay audio (pure: a header and a size in, a span out).

Browsers seek in an ``<audio>`` element by asking for ``Range: bytes=START-``; only single
byte ranges matter. What we do with each kind of header (RFC 9110, section 14):

- none, another unit (``items=0-3``) or several ranges (``bytes=0-1,5-9``): the whole body,
  200 (a server may always ignore Range; no browser asks for several ranges of media);
- ``bytes=A-B``, ``bytes=A-``, ``bytes=-N``: that span, clamped to the body, 206;
- a span that starts at or beyond the end, ``bytes=-0``, an empty body, or a byte range
  that does not parse (``bytes=9-2``, ``bytes=x-``): :class:`RangeError`, answered 416 with
  ``Content-Range: bytes */SIZE``. Ignoring a broken byte range would send the whole file
  to a client that asked for a piece, and hide the bug that made it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ByteRange", "RangeError", "parse_range"]

_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeError(ValueError):
    """A byte range this body cannot satisfy (the message says why, in one line)."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``[start, end)`` of a body of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` value of a 206 response (inclusive last byte)."""
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The span ``header`` asks for in a body of ``size`` bytes, or None for the whole body.

    Raises :class:`RangeError` when it asks for bytes the body does not have."""
    if not header or not header.strip():
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    m = _SPEC.match(spec)
    if m is None or (not m.group(1) and not m.group(2)):
        raise RangeError(f"malformed byte range {header.strip()!r}")
    first, last = m.group(1), m.group(2)
    if size <= 0:
        raise RangeError("the body is empty: no byte range can be satisfied")
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0:
            raise RangeError("a suffix range of 0 bytes is empty")
        return ByteRange(max(0, size - n), size, size)
    start = int(first)
    if last and int(last) < start:
        raise RangeError(f"malformed byte range {header.strip()!r}: it ends before it starts")
    if start >= size:
        raise RangeError(f"range starts at byte {start}, beyond the end ({size} bytes)")
    end = size if not last else min(int(last) + 1, size)
    return ByteRange(start, end, size)
