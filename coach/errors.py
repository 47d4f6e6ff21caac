"""The exception tree. Every error the user can cause is a ``CoachError``.

    CoachError
     +-- AudioError          unreadable, empty or unsupported audio
     +-- PlaybookError       a malformed playbook (file, line and reason)
     +-- ModelError          a model that cannot be found or loaded
     +-- MissingDependency   an optional package is not installed
"""

from __future__ import annotations

__all__ = ["AudioError", "CoachError", "MissingDependency", "ModelError", "PlaybookError"]


class CoachError(Exception):
    """Base of every error coach reports to the user as one line."""


class AudioError(CoachError):
    """Audio that cannot be read, is empty, or has an unsupported layout."""


class PlaybookError(CoachError):
    """A playbook file that does not parse or does not validate."""

    def __init__(self, reason: str, *, path: str | None = None, line: int | None = None):
        self.reason = reason
        self.path = path
        self.line = line
        where = path or "<playbook>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {reason}")


class ModelError(CoachError):
    """A speech model that cannot be found or loaded."""


class MissingDependency(CoachError):
    """An optional package is needed; the message names it."""
