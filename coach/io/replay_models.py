"""The replay API's request and response models (pydantic): what :mod:`coach.io.replay`
takes and gives, and what its OpenAPI schema documents; and the stored cues put in the
shape of :class:`CueOut` and :class:`CueType`.

The error model ``Message`` stays in :mod:`coach.io.replay`: on a team server its schema
name (``coach__io__replay__Message``, told apart from the team API's own) comes from its
module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from coach.evidence import describe, split_withdrawn

__all__ = ["CallDetail", "CallList", "CallRow", "CueOut", "CueType", "FeedbackIn", "NoteIn",
           "NoteOut", "NotePatch", "PeaksOut", "ProsodyOut", "WordOut"]


class CallRow(BaseModel):
    """One call in the list."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="32-character hex id")
    agent: str | None = None
    started_at: datetime | None = Field(None, description="UTC start of the call")
    duration_s: float | None = None
    source: str | None = Field(None, description='file name, or "live"')
    status: str = Field("complete", description='"complete", "recovered" or "truncated"')
    score: float | None = Field(None, description="QA score 0-100, if scored")
    cue_counts: dict[str, int] = Field(default_factory=dict, description="cue id -> count")
    n_words: int = 0


class CallList(BaseModel):
    total: int = Field(description="calls matching the filters (all pages)")
    calls: list[CallRow]


class WordOut(BaseModel):
    speaker: str
    text: str
    start: float
    end: float
    probability: float | None = None


class CueOut(BaseModel):
    idx: int = Field(description="position of the cue in the call (feedback uses it)")
    id: str = Field(description="cue id from CUES.md")
    t: float = Field(description="audio time (s) when the cue fired")
    speaker: str | None = None
    severity: str = Field(description='"info", "nudge" or "warn"')
    title: str
    advice: str
    evidence: dict[str, Any] = Field(default_factory=dict,
                                     description="triggering words and/or measured figures")
    evidence_text: str = Field("", description="the evidence as a person reads it: words "
                                               "quoted with their time, figures with units")
    withdrawn: str | None = Field(
        None, description="null for a standing cue; for a cue the words after it showed "
                          "wrong, when and why it was withdrawn (\"at 1:03: the agent fixed "
                          "it straight after\"; may be empty)")
    feedback: Literal["dismissed", "flagged"] | None = Field(
        None, description="the agent's reaction to the cue during the call")
    feedback_at: datetime | None = None


class NoteOut(BaseModel):
    id: int
    t: float = Field(description="audio time (s) the note is about")
    text: str
    author: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ProsodyOut(BaseModel):
    speaker: str
    t: float
    f0_hz: float | None = None
    loudness_db: float | None = None
    wpm: float | None = None


class CallDetail(CallRow):
    """A call with everything the call page shows."""

    channels: str | None = Field(None, description='"agent,customer" or "agent" (mono)')
    model: str | None = None
    audio_bytes: int = Field(0, description="size of the stored FLAC; 0: no audio")
    words: list[WordOut]
    cues: list[CueOut]
    notes: list[NoteOut]
    prosody: list[ProsodyOut]


class CueType(BaseModel):
    id: str
    title: str
    severity: str
    enabled: bool


class PeaksOut(BaseModel):
    """Waveform peaks: the loudest |sample| (0..1) of each bucket, one list per channel."""

    duration_s: float
    sample_rate: int
    speakers: list[str] = Field(description='channel order: ["agent", "customer"]')
    channels: list[list[float]]


NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=4000)]
Author = Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t: Seconds = Field(description="audio time (s) the note is about")
    text: NoteText
    author: Author | None = None


class NotePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t: Seconds | None = None
    text: NoteText | None = None

    @model_validator(mode="after")
    def _something(self) -> NotePatch:
        if self.t is None and self.text is None:
            raise ValueError("give text and/or t")
        return self


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feedback: Literal["dismissed", "flagged"] | None = Field(
        description="null clears the feedback")


# -- stored data in the models' shape -------------------------------------------------------


def _cue_out(cue: dict[str, Any]) -> dict[str, Any]:
    """A stored cue for the pages: its evidence in words, and whether it was withdrawn
    (kept apart from the evidence, so the page can mark the cue rather than quote it)."""
    standing, withdrawn = split_withdrawn(cue.get("evidence"))
    return {**cue, "evidence_text": describe(standing, cue_id=cue.get("id")),
            "withdrawn": withdrawn}


def _cue_types() -> list[dict[str, Any]]:
    from coach.playbook import load_playbook

    pb = load_playbook()
    return [{"id": c.id, "title": c.title, "severity": c.severity, "enabled": c.enabled}
            for c in pb.cues.values()]
