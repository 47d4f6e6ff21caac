"""Where the overlay sits and how big it is: ``--geometry`` and the remembered place.

The window's size and position are kept in ``$XDG_CONFIG_HOME/coach/overlay.json``
(``~/.config/coach/overlay.json`` by default) whenever the agent moves or resizes it, and
restored on the next start, clamped to the screen so a window left on a monitor that is
gone comes back into view. An explicit ``--geometry`` wins over the remembered place. A
prefs file that cannot be read is ignored with a one-line note.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coach.errors import CoachError

__all__ = [
    "DEFAULT_SIZE",
    "MIN_SIZE",
    "Geometry",
    "clamp",
    "load_prefs",
    "parse_geometry",
    "prefs_path",
    "save_prefs",
]

DEFAULT_SIZE = (380, 150)
MIN_SIZE = (260, 120)
MAX_SIDE = 10_000

_GEOMETRY = re.compile(r"^(?:(\d+)[xX](\d+))?(?:([+-])(\d+)([+-])(\d+))?$")
_EXAMPLE = "WIDTHxHEIGHT+X+Y, e.g. 380x150+40+40 (or 380x150, or +40+40; -X-Y counts from " \
           "the right and bottom edges)"


@dataclass(frozen=True, slots=True)
class Geometry:
    """A window's size and place in pixels. ``x``/``y`` None: not given (the window
    manager places it). ``from_right``/``from_bottom``: X11's ``-X-Y``, offsets from the
    screen's right and bottom edges."""

    width: int | None = None
    height: int | None = None
    x: int | None = None
    y: int | None = None
    from_right: bool = False
    from_bottom: bool = False

    def __str__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width is not None else ""
        if self.x is None or self.y is None:
            return size
        sx = "-" if self.from_right else "+"
        sy = "-" if self.from_bottom else "+"
        return f"{size}{sx}{self.x}{sy}{self.y}"


def parse_geometry(text: str) -> Geometry:
    """``WxH+X+Y`` (any part of it) as a :class:`Geometry`; CoachError in one line."""
    m = _GEOMETRY.match(text.strip())
    if not text.strip() or m is None:
        raise CoachError(f"--geometry {text!r}: expected {_EXAMPLE}")
    w, h, sx, x, sy, y = m.groups()
    if w is not None:
        width, height = int(w), int(h)
        if not (MIN_SIZE[0] <= width <= MAX_SIDE and MIN_SIZE[1] <= height <= MAX_SIDE):
            raise CoachError(f"--geometry {text!r}: the overlay needs at least "
                             f"{MIN_SIZE[0]}x{MIN_SIZE[1]} pixels")
    else:
        width = height = None
    if x is None:
        return Geometry(width, height)
    return Geometry(width, height, int(x), int(y), from_right=sx == "-",
                    from_bottom=sy == "-")


def clamp(g: Geometry, screen: tuple[int, int], default: tuple[int, int] = DEFAULT_SIZE
          ) -> Geometry:
    """``g`` made to fit the visible screen: size within [MIN_SIZE, screen], and the whole
    window on screen; offsets from the right/bottom edges become plain positions."""
    sw, sh = max(1, screen[0]), max(1, screen[1])
    w = g.width if g.width is not None else default[0]
    h = g.height if g.height is not None else default[1]
    w = max(min(w, sw), min(MIN_SIZE[0], sw))
    h = max(min(h, sh), min(MIN_SIZE[1], sh))
    if g.x is None or g.y is None:
        return Geometry(w, h)
    x = sw - w - g.x if g.from_right else g.x
    y = sh - h - g.y if g.from_bottom else g.y
    return Geometry(w, h, min(max(0, x), sw - w), min(max(0, y), sh - h))


def prefs_path() -> Path:
    """``$XDG_CONFIG_HOME/coach/overlay.json`` (``~/.config/...`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "coach" / "overlay.json"


def load_prefs(path: Path | None = None) -> tuple[Geometry | None, str | None]:
    """The remembered geometry (None when there is none) and a one-line note when the
    file is there but unusable."""
    path = path or prefs_path()
    try:
        raw = path.read_text("utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not readable text"
        return None, f"ignored {path} ({why}); the overlay starts at its default place"
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return None, f"ignored {path} (not valid JSON); the overlay starts at its default place"
    fields = ("width", "height", "x", "y")
    if not isinstance(data, dict) or not all(
            isinstance(data.get(k), int) and not isinstance(data.get(k), bool) for k in fields):
        return None, (f"ignored {path} (expected whole numbers for width, height, x and y); "
                      "the overlay starts at its default place")
    w, h, x, y = (data[k] for k in fields)
    if w <= 0 or h <= 0 or w > MAX_SIDE or h > MAX_SIDE:
        return None, (f"ignored {path} (a size of {w}x{h} pixels); the overlay starts at its "
                      "default place")
    return Geometry(w, h, x, y), None


def save_prefs(g: Geometry, path: Path | None = None) -> str | None:
    """Remember ``g`` (atomically); a one-line note when it cannot be written."""
    path = path or prefs_path()
    if g.width is None or g.height is None or g.x is None or g.y is None:
        return None
    data = {"width": g.width, "height": g.height, "x": g.x, "y": g.y}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data) + "\n", "utf-8")
        tmp.replace(path)
    except OSError as exc:
        return f"cannot remember the overlay's place in {path} ({exc.strerror or exc})"
    return None
