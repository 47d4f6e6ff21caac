"""Runs the shared display cases (display_cases.json) through coach.display.

The browser overlay's display.js runs the same cases (tests/test_overlay_browser.py), so
the two overlays are held to one policy. A case starts connected, on a call whose audio
time 0 is at Unix time STARTED_AT and whose audio time runs with the overlay's clock: a
step at ``at`` seconds has ``wall = STARTED_AT + at`` unless it gives ``wall_skew``.
"""

from __future__ import annotations

from typing import Any

from coach.display import DisplayOptions, DisplayPolicy

STARTED_AT = 1_000_000.0


def observe(policy: DisplayPolicy, now: float, want: dict[str, Any],
            decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields of the screen at ``now`` that ``want`` names, as plain values."""
    s = policy.screen(now)
    got: dict[str, Any] = {}
    for key in want:
        if key == "cue":
            got[key] = None if s.cue is None else s.cue.id
        elif key in ("late_s", "withdrawn", "severity", "title"):
            v = None if s.cue is None else getattr(s.cue, key)
            got[key] = round(v, 2) if isinstance(v, float) else v
        elif key in ("status", "tag", "headline", "alert", "degraded", "talk"):
            got[key] = getattr(s, key)
        elif key == "lag_s":
            got[key] = None if s.lag_s is None else round(s.lag_s, 2)
        elif key == "pace":
            got[key] = [s.pace.wpm, s.pace.zone]
        elif key == "decisions":
            got[key] = {cid: [d["decision"] for d in decisions if d["cue_id"] == cid]
                        for cid in want[key]}
        else:
            raise KeyError(f"unknown expectation {key!r}")
    return got


def run_case(case: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    policy = DisplayPolicy(DisplayOptions(**case.get("options", {})))
    decisions: list[dict[str, Any]] = []
    policy.connected(0.0)
    for msg in ({"type": "hello", "protocol": 1},
                {"type": "call", "state": "start", "t": 0, "started_at": STARTED_AT,
                 "pace_band": [120, 175]}):
        policy.feed(msg, 0.0, STARTED_AT)
    pairs = []
    for step in case["steps"]:
        now = float(step["at"])
        wall = STARTED_AT + now + float(step.get("wall_skew", 0.0))
        if "msg" in step:
            out = policy.feed(step["msg"], now, wall)
        elif "act" in step:
            out = policy.act(step["act"], now)[1]
        else:
            out = policy.tick(now)
        decisions += [d.to_dict() for d in out]
        if "expect" in step:
            want = step["expect"]
            pairs.append((observe(policy, now, want, decisions), want))
    return pairs
