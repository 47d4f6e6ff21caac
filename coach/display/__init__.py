"""What the overlays show: the display policy, pure (no Tk, no sockets, no clock).

Both overlays (the Tk window and the browser page, whose ``static/display.js`` follows
this module rule for rule) feed the service's messages to a :class:`DisplayPolicy` with
the time they arrived, and draw the :class:`Screen` it returns. The policy decides
*what is shown*; it never touches what is recorded: the live recorder writes every event
before the hub sends it to any overlay, so a cue the policy drops is still in the call.

The rules (the README's overlay section says the same for users):

- **One cue at a time, by severity** (warn > nudge > info). A new cue replaces the one on
  screen if it is more severe, or as severe and the one on screen has been up
  ``min_show_s``. A less severe cue never replaces one within its display time: it waits
  (at most ``max_wait_s``, and only if the slot frees within that time) and is dropped
  otherwise. So ``info`` praise never hides a warn.
- **Late cues.** A cue's age is the call's audio time when it arrives minus its ``t`` (the
  end of the words that triggered it). Older than ``display_s``: it is late — shown muted
  and labelled with its age, only on an empty slot, replaced by any fresh cue, never
  waiting; older than ``forget_after_s``: not shown at all.
- **Retractions** (``{"type": "retract", "id", "t", ...}``): the cue is struck through for
  ``withdrawn_s`` and then gone; a waiting one is dropped; a retracted cue never shows
  again (not even if it arrives after its retraction). A retraction for a cue that is not
  on screen changes nothing on screen.
- **Lag.** ``status`` messages carry ``lag_s``; with no status for a while, the silence
  counts as lag too. Over ``lag_warn_s`` the overlay says that coaching is behind.
- **Audio time now** comes from the service's clock (``started_at`` of the call start plus
  the wall clock) when it agrees, within ``clock_tolerance_s``, with the estimate from the
  stream itself (the latest prosody reading's ``t`` plus the latest reported lag plus the
  time since the later of the two arrived); otherwise — another machine's clock, a replayed stream — from the
  stream estimate alone.

Times given to the policy (``now``) are seconds of any monotonic clock of the overlay;
``wall`` is Unix time, used only against ``started_at``.
"""

from __future__ import annotations

from .policy import DisplayPolicy
from .screen import (
    CONNECTING_TEXT,
    DISCONNECTED_TEXT,
    IDLE_TEXT,
    Decision,
    DisplayOptions,
    Pace,
    Screen,
    ShownCue,
    severity_rank,
)

__all__ = [
    "CONNECTING_TEXT",
    "DISCONNECTED_TEXT",
    "IDLE_TEXT",
    "Decision",
    "DisplayOptions",
    "DisplayPolicy",
    "Pace",
    "Screen",
    "ShownCue",
    "severity_rank",
]
