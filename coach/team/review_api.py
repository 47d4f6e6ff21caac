"""Per-agent pages and agent self-review: routes added to the replay app of a team server.

| route | who |
|---|---|
| ``GET /team/agents/{name}``, ``GET /api/team/agents/{name}/summary`` | the agent, their coaches |
| ``GET /team/review/{call_id}``, ``GET /api/calls/{call_id}/review`` | whoever may see the call |
| ``POST /api/calls/{call_id}/reviews`` | the agent whose call it is |
| ``GET /team/reviews``, ``GET /api/team/reviews``, ``GET /api/team/false-cues`` | coaches (an agent: their own reviews) |
| ``PUT /api/team/reviews/{id}`` | a coach who may see the call |
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from coach.evidence import is_withdrawn
from coach.store.reviews import Reviews
from coach.team.api import STATIC, require

__all__ = ["extend_reviews"]

Comment = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["ack", "dispute"]
    target: Literal["score", "step", "cue"] = "score"
    step: str | None = Field(None, max_length=32)
    cue_idx: int | None = Field(None, ge=0)
    comment: Comment = ""


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["upheld", "overturned"]
    resolution: Comment


def _utc(d: datetime | None) -> datetime | None:
    return d.replace(tzinfo=UTC) if d is not None and d.tzinfo is None else d


def extend_reviews(app: FastAPI, server: Any) -> None:
    from coach.io.replay_guard import PAGE_HEADERS

    pages = {n: (STATIC / "team" / n).read_text("utf-8")
             for n in ("agent.html", "review.html", "reviews.html")}
    router = APIRouter()
    store, access = server.store, server.access
    reviews = Reviews(store)

    def sees_agent(request: Request, name: str) -> Any:
        p = require(request)
        if not access.can_see(p, name):
            raise HTTPException(403, "forbidden: another agent's page" if p.role == "agent"
                                else "forbidden: not one of your agents")
        return p

    @router.get("/team/agents/{name}", include_in_schema=False)
    def agent_page(request: Request, name: str) -> HTMLResponse:
        sees_agent(request, name)
        return HTMLResponse(pages["agent.html"], headers=PAGE_HEADERS)

    @router.get("/team/review/{call_id}", include_in_schema=False)
    def review_page(request: Request, call_id: str) -> HTMLResponse:
        require(request)  # the call's visibility: the replay app's check
        store.get_call(call_id)
        return HTMLResponse(pages["review.html"], headers=PAGE_HEADERS)

    @router.get("/team/reviews", include_in_schema=False)
    def reviews_page(request: Request) -> HTMLResponse:
        require(request, "coach", "admin")
        return HTMLResponse(pages["reviews.html"], headers=PAGE_HEADERS)

    @router.get("/api/team/agents/{name}/summary", tags=["agents"],
                summary="An agent over a period: scores, cue rates, recurring faults, calls")
    def summary(request: Request, name: str,
                since: Annotated[datetime | None, Query()] = None,
                until: Annotated[datetime | None, Query()] = None) -> dict[str, Any]:
        sees_agent(request, name)
        since, until = _utc(since), _utc(until)
        if since is None and until is None:
            since = datetime.now(UTC) - timedelta(days=90)
        calls = reviews.agent_calls(name, since=since, until=until)
        minutes = sum((c["duration_s"] or 0) for c in calls) / 60
        counts: Counter[str] = Counter()
        present: Counter[str] = Counter()
        for c in calls:
            counts.update(c["cue_counts"])
            present.update(k for k, v in c["cue_counts"].items() if v)
        severity = {c.id: c.severity for c in (server.playbook or _pb()).cues.values()}
        rates = [{"cue_id": k, "count": n, "severity": severity.get(k, "nudge"),
                  "per_minute": round(n / minutes, 3) if minutes else None}
                 for k, n in counts.most_common()]
        recurring = [{"cue_id": k, "calls": n, "share": round(n / len(calls), 3)}
                     for k, n in present.most_common()
                     if severity.get(k) != "info" and len(calls) >= 3 and n / len(calls) >= 0.25]
        scored = [c for c in calls if c["score"] is not None]
        ranked = sorted(scored, key=lambda c: (c["score"], c["started_at"] or ""))
        learned = server.baseline(name)
        return {
            "agent": name, "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None, "calls": len(calls),
            "minutes": round(minutes, 1),
            "mean_score": round(statistics.fmean(c["score"] for c in scored), 1) if scored
            else None,
            "trend": [{"id": c["id"], "started_at": c["started_at"], "score": c["score"]}
                      for c in scored],
            "cue_rates": rates, "recurring": recurring,
            "best": list(reversed(ranked[-3:])), "worst": ranked[:3],
            "notes": reviews.agent_notes(name),
            "baseline": learned.to_dict() if learned is not None else None,
            "reviews": reviews.list(agents=[name], limit=20),
        }

    @router.get("/api/calls/{call_id}/review", tags=["reviews"],
                summary="A call's score with its evidence, its cues, and its reviews")
    def call_review(request: Request, call_id: str) -> dict[str, Any]:
        from coach.rubric import score_events

        require(request)
        call = store.get_call(call_id)
        events = [{"type": "word", "final": True, **w} for w in call["words"]]
        events += [{"type": "cue", **{k: c[k] for k in ("id", "t", "speaker", "severity",
                                                        "title", "advice", "evidence")}}
                   for c in call["cues"] if not is_withdrawn(c.get("evidence"))]
        rubric = score_events(events, server.playbook or _pb(),
                              duration_s=call.get("duration_s")).to_dict()
        return {"id": call_id, "agent": call["agent"], "started_at": call["started_at"],
                "duration_s": call["duration_s"], "score": call["score"], "rubric": rubric,
                "cues": call["cues"], "reviews": reviews.list(call_id=call_id)}

    @router.post("/api/calls/{call_id}/reviews", status_code=201, tags=["reviews"],
                 summary="Acknowledge a call's score, or dispute it, a step or a cue")
    def add_review(request: Request, call_id: str,
                   body: Annotated[ReviewIn, Body()]) -> dict[str, Any]:
        p = require(request, "agent")
        call = store.get_call(call_id)
        if call["agent"] != p.name:
            raise HTTPException(403, "forbidden: this call is another agent's")
        return reviews.add(call_id, kind=body.kind, target=body.target, step=body.step,
                           cue_idx=body.cue_idx, comment=body.comment, author=p.name)

    @router.get("/api/team/reviews", tags=["reviews"],
                summary="Reviews: a coach's agents' (open disputes by default); an agent's own")
    def list_reviews(request: Request,
                     status: Literal["open", "acknowledged", "upheld", "overturned", "all"]
                     = "open") -> list[dict[str, Any]]:
        p = require(request)
        visible = access.visible_agents(p)
        return reviews.list(agents=visible, status=None if status == "all" else status)

    @router.put("/api/team/reviews/{review_id}", tags=["reviews"],
                summary="Resolve a dispute: upheld (the score stands) or overturned")
    def resolve(request: Request, review_id: int,
                body: Annotated[ResolveIn, Body()]) -> dict[str, Any]:
        p = require(request, "coach", "admin")
        r = reviews.get(review_id)
        if not access.can_see(p, r["agent"]):
            raise HTTPException(403, "forbidden: not one of your agents")
        return reviews.resolve(review_id, status=body.status, resolution=body.resolution,
                               by=p.name)

    @router.get("/api/team/false-cues", tags=["reviews"],
                summary="Per cue id: cues fired and the share agents flagged or disputed")
    def false_cues(request: Request,
                   days: Annotated[int, Query(ge=1, le=3650)] = 90) -> list[dict[str, Any]]:
        p = require(request, "coach", "admin")
        since = datetime.now(UTC) - timedelta(days=days)
        return reviews.false_cue_rates(agents=access.visible_agents(p), since=since)

    app.include_router(router)


def _pb() -> Any:
    from coach.playbook import load_playbook

    return load_playbook()
