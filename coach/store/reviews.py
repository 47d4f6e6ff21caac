"""Agents' reviews of their scores, and the per-agent and per-cue figures of the team pages.

:class:`Reviews` wraps a :class:`coach.store.Store`: an agent acknowledges a call's score
or disputes it (the whole score, one rubric step, or one cue) with a comment; a coach
resolves a dispute as ``upheld`` (the score stands) or ``overturned`` (the agent was
right). The false-cue rate per cue id counts, among the cues fired, those the agent
flagged as wrong on the overlay or disputed (unless a coach upheld the cue).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, select, update

from coach.store import schema as S
from coach.store.db import Store, _guard
from coach.store.schema import StoreError

__all__ = ["RESOLUTIONS", "Reviews"]

KINDS = ("ack", "dispute")
TARGETS = ("score", "step", "cue")
RESOLUTIONS = ("upheld", "overturned")
MAX_COMMENT = 4000


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d is not None else None


def _row(r: Any) -> dict[str, Any]:
    m = dict(r._mapping)
    for k in ("created_at", "resolved_at"):
        m[k] = _iso(m[k])
    return m


class Reviews:
    def __init__(self, store: Store):
        self.store = store

    def _describe(self, exc: BaseException) -> str:  # used by @_guard
        return self.store._describe(exc)

    @_guard
    def add(self, call_id: str, *, kind: str, target: str, comment: str = "",
            step: str | None = None, cue_idx: int | None = None, author: str | None = None
            ) -> dict[str, Any]:
        if kind not in KINDS:
            raise StoreError(f"bad review kind {kind!r} (ack or dispute)")
        if target not in TARGETS:
            raise StoreError(f"bad review target {target!r} (score, step or cue)")
        comment = (comment or "").strip()
        if kind == "dispute" and not comment:
            raise StoreError("bad review: a dispute needs a comment saying why")
        if len(comment) > MAX_COMMENT:
            raise StoreError(f"bad review: a comment is limited to {MAX_COMMENT} characters")
        now = datetime.now(UTC)
        with self.store._write() as conn:
            call = conn.execute(select(S.calls.c.agent).where(S.calls.c.id == call_id)).first()
            if call is None:
                raise StoreError(f"no call {call_id}")
            cue_id = None
            if target == "cue":
                if cue_idx is None:
                    raise StoreError("bad review: which cue? (cue_idx)")
                cue_id = conn.execute(select(S.cues.c.cue_id).where(and_(
                    S.cues.c.call_id == call_id, S.cues.c.idx == cue_idx))).scalar()
                if cue_id is None:
                    raise StoreError(f"call {call_id} has no cue {cue_idx}")
            if target == "step" and not step:
                raise StoreError("bad review: which step? (step)")
            res = conn.execute(S.reviews.insert().values(
                call_id=call_id, agent=call.agent, kind=kind, target=target,
                step=step if target == "step" else None,
                cue_idx=cue_idx if target == "cue" else None, cue_id=cue_id, comment=comment,
                author=author, created_at=now,
                status="acknowledged" if kind == "ack" else "open"))
            rid = res.inserted_primary_key[0]
            return _row(conn.execute(select(S.reviews).where(S.reviews.c.id == rid)).one())

    @_guard
    def get(self, review_id: int) -> dict[str, Any]:
        with self.store._read() as conn:
            r = conn.execute(select(S.reviews).where(S.reviews.c.id == review_id)).first()
        if r is None:
            raise StoreError(f"no review {review_id}")
        return _row(r)

    @_guard
    def list(self, *, call_id: str | None = None, agents: Iterable[str] | None = None,
             status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        r = S.reviews.c
        conds = []
        if call_id is not None:
            conds.append(r.call_id == call_id)
        if agents is not None:
            conds.append(r.agent.in_(sorted(agents)))
        if status is not None:
            conds.append(r.status == status)
        with self.store._read() as conn:
            return [_row(x) for x in conn.execute(
                select(S.reviews).where(*conds).order_by(r.created_at.desc(), r.id.desc())
                .limit(limit))]

    @_guard
    def resolve(self, review_id: int, *, status: str, resolution: str, by: str
                ) -> dict[str, Any]:
        if status not in RESOLUTIONS:
            raise StoreError(f"bad resolution {status!r} (upheld or overturned)")
        resolution = (resolution or "").strip()
        if not resolution:
            raise StoreError("bad resolution: say why, for the agent to read")
        with self.store._write() as conn:
            n = conn.execute(update(S.reviews).where(and_(
                S.reviews.c.id == review_id, S.reviews.c.kind == "dispute")).values(
                status=status, resolution=resolution[:MAX_COMMENT], resolved_by=by,
                resolved_at=datetime.now(UTC))).rowcount
        if not n:
            raise StoreError(f"no dispute {review_id}")
        return self.get(review_id)

    # -- figures ----------------------------------------------------------------------------
    @_guard
    def agent_calls(self, agent: str, *, since: datetime | None, until: datetime | None,
                    limit: int = 10_000) -> list[dict[str, Any]]:
        """The agent's calls in the period, oldest first: id, start, duration, score,
        cue counts."""
        c = S.calls.c
        conds = [c.agent == agent]
        if since is not None:
            conds.append(c.started_at >= since)
        if until is not None:
            conds.append(c.started_at <= until)
        with self.store._read() as conn:
            rows = conn.execute(select(c.id, c.started_at, c.duration_s, c.score, c.cue_counts)
                                .where(*conds).order_by(c.started_at.desc()).limit(limit))
            out = [{"id": r.id, "started_at": _iso(r.started_at), "duration_s": r.duration_s,
                    "score": r.score, "cue_counts": json.loads(r.cue_counts or "{}")}
                   for r in rows]
        out.reverse()
        return out

    @_guard
    def agent_prosody(self, call_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The agent's prosody readings of several calls in one query, per call."""
        p = S.prosody.c
        out: dict[str, list[dict[str, Any]]] = {c: [] for c in call_ids}
        with self.store._read() as conn:
            for cid, f0, loud, wpm in conn.execute(
                    select(p.call_id, p.f0_hz, p.loudness_db, p.wpm).where(and_(
                        p.call_id.in_(call_ids), p.speaker == "agent"))):
                out[cid].append({"speaker": "agent", "f0_hz": f0, "loudness_db": loud,
                                 "wpm": wpm})
        return out

    @_guard
    def agent_notes(self, agent: str, *, limit: int = 10) -> list[dict[str, Any]]:
        n, c = S.notes.c, S.calls.c
        with self.store._read() as conn:
            rows = conn.execute(select(n.call_id, n.t, n.text, n.author, n.created_at)
                                .join(S.calls, c.id == n.call_id).where(c.agent == agent)
                                .order_by(n.created_at.desc()).limit(limit)).mappings()
            return [{**r, "created_at": _iso(r["created_at"])} for r in rows]

    @_guard
    def false_cue_rates(self, *, agents: Iterable[str] | None, since: datetime | None
                        ) -> list[dict[str, Any]]:
        """Per cue id: cues fired, and how many the agents flagged or disputed (disputes a
        coach upheld do not count), over the visible agents' calls since ``since``."""
        cu, c, r = S.cues.c, S.calls.c, S.reviews.c
        disputed = exists(select(r.id).where(and_(
            r.call_id == cu.call_id, r.cue_idx == cu.idx, r.kind == "dispute",
            r.status != "upheld")))
        wrong = func.sum(case((cu.feedback == "flagged", 1), (disputed, 1), else_=0))
        conds = []
        if agents is not None:
            conds.append(c.agent.in_(sorted(agents)))
        if since is not None:
            conds.append(c.started_at >= since)
        q = (select(cu.cue_id, func.count().label("fired"), wrong.label("wrong"))
             .select_from(S.cues.join(S.calls, c.id == cu.call_id)).where(*conds)
             .group_by(cu.cue_id))
        with self.store._read() as conn:
            rows = [{"cue_id": x.cue_id, "fired": int(x.fired), "wrong": int(x.wrong or 0)}
                    for x in conn.execute(q)]
        for x in rows:
            x["rate"] = round(x["wrong"] / x["fired"], 3) if x["fired"] else None
        rows.sort(key=lambda x: (-(x["rate"] or 0), -x["fired"], x["cue_id"]))
        return rows
