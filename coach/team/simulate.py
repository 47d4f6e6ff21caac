"""Replay a recorded call's events to a team server in real time, through the same client
code ``coach live --team`` uses: to load-test a server, or to stand in for agents in tests
and benchmarks (twenty speech recognisers do not fit on two cores; twenty of these do).

    COACH_TEAM_TOKEN=... python -m coach.team.simulate EVENTS.jsonl --team http://host:8765

EVENTS.jsonl: a recording's ``events.jsonl`` (``coach live``) or the output of
``coach analyze --format jsonl``. Each event is offered when the call's audio clock
reaches its time; a ``status`` goes every second as ``coach live`` sends them. With
``--log`` each cue offered is printed as a JSON line with the Unix time it left, so a
benchmark can time its arrival on the board.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from coach.team.client import TeamPublisher, new_call_id

__all__ = ["event_time", "main", "replay_events"]


def event_time(e: dict[str, Any]) -> float:
    """The audio time at which the pipeline would have emitted ``e``."""
    for k in ("end", "t", "at"):
        v = e.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return 0.0


def replay_events(events: list[dict[str, Any]], server: str, token: str, *,
                  speed: float = 1.0, max_seconds: float | None = None,
                  call_id: str | None = None, playbook: Any = None, log: Any = None,
                  agent: str | None = None) -> TeamPublisher:
    """Offer ``events`` in real time (``speed`` times faster) to a new publisher; returns
    it once the call end was offered (call ``finish()`` on it)."""
    body = [e for e in events if e.get("type") not in ("call", "status", "dismiss", "flag",
                                                       "feedback")]
    body.sort(key=event_time)
    duration = max([event_time(e) for e in body] or [0.0])
    if max_seconds is not None:
        duration = min(duration, max_seconds)
        body = [e for e in body if event_time(e) <= duration]
    pub = TeamPublisher(server, token, call_id=call_id or new_call_id(), playbook=playbook)
    pub.start()
    t0 = time.time()
    pub.offer({"type": "call", "state": "start", "t": 0.0, "started_at": round(t0, 3),
               "agent": agent, "pace_band": [120, 175], "channels": ["agent", "customer"]})
    next_status = 1.0
    for e in body:
        at = event_time(e)
        while next_status <= at:
            _wait(t0 + next_status / speed)
            pub.offer({"type": "status", "lag_s": 0.2, "degraded": False, "message": None,
                       "devices": {}})
            next_status += 1.0
        _wait(t0 + at / speed)
        pub.offer(e)
        if log is not None and e.get("type") == "cue":
            log.write(json.dumps({"call": pub.call_id, "id": e.get("id"), "t": e.get("t"),
                                  "offered_at": time.time()}) + "\n")
            log.flush()
    _wait(t0 + duration / speed)
    pub.offer({"type": "call", "state": "end", "t": round(duration, 3),
               "duration": round(duration, 3)})
    return pub


def _wait(until: float) -> None:
    d = until - time.time()
    if d > 0:
        time.sleep(d)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m coach.team.simulate",
                                description="Replay a call's events to a team server in real "
                                            "time, as an agent's coach would send them.")
    p.add_argument("events", help="events.jsonl of a recording, or coach analyze --format jsonl")
    p.add_argument("--team", required=True, help="the team server")
    p.add_argument("--speed", type=float, default=1.0, help="faster than real time")
    p.add_argument("--max-seconds", type=float, default=None, help="stop the call here")
    p.add_argument("--log", action="store_true", help="print each cue offered (JSON lines)")
    args = p.parse_args(argv)
    token = os.environ.get("COACH_TEAM_TOKEN", "")
    if not token:
        print("coach: error: set COACH_TEAM_TOKEN to the agent's token", file=sys.stderr)
        return 2
    from coach.playbook import load_playbook
    from coach.store.importer import read_events

    events, _ = read_events(Path(args.events))
    if not events:
        print(f"coach: error: {args.events}: no events in it", file=sys.stderr)
        return 2
    pub = replay_events(events, args.team, token, speed=args.speed,
                        max_seconds=args.max_seconds, playbook=load_playbook(),
                        log=sys.stdout if args.log else None)
    ok = pub.finish(timeout=30)
    if pub.refusal:
        print(f"coach: error: {pub.refusal}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
