"""The replay JSON API and pages over a real store (SQLite; a set on PostgreSQL), served
by a real uvicorn server on a free port and spoken to over real HTTP (http.client)."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coach.errors import CoachError
from coach.io.httprange import ByteRange, RangeError, parse_range
from coach.io.hub import Hub
from coach.io.replay import AUDIO_CHUNK, STATIC, run_serve
from coach.io.server import ServerThread, create_app
from coach.store import open_store
from coach.store.importer import save_analysis
from tests.replay_data import DEMO, SAMPLES, manifest_events, noise_flac

TOKEN = "s3cret-token"
STARTED = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)


# -- fixtures -------------------------------------------------------------------------------


def _fill(store) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The calls every API test sees: the demo call (real audio), a call without audio,
    and a call with several MB of audio."""
    demo = save_analysis(store, SAMPLES / f"{DEMO}.flac", manifest_events(),
                         {"agent": "Dana", "started_at": STARTED, "model": "tiny.en"})
    store.set_score(demo, 41.5)
    bare = store.add_call(
        meta={"agent": "Sam", "started_at": "2025-03-06T15:00:00Z", "source": "live",
              "status": "recovered"},
        events=[{"type": "word", "speaker": "agent", "text": "hello", "start": 0.5,
                 "end": 0.9, "final": True}],
        audio_path=None)
    store.set_score(bare, 88)
    return {"demo": demo, "bare": bare}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay-store")
    s = open_store(f"sqlite:///{tmp / 'coach.db'}")
    ids = _fill(s)
    big = noise_flac(tmp / "noise.flac", 150)
    ids["big"] = s.add_call(meta={"agent": "Noor", "started_at": "2025-02-01T08:00:00Z",
                                  "source": "noise.flac"}, events=[], audio_path=big)
    s.ids = ids  # type: ignore[attr-defined]
    yield s
    s.close()


class CountingStore:
    """The store, counting the audio bytes read from it (to see a stream stop)."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self._inner = inner
        self.audio_read = 0

    def read_audio(self, call_id: str, start: int, end: int) -> bytes:
        data = self._inner.read_audio(call_id, start, end)
        self.audio_read += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture(scope="module")
def counting(store):
    return CountingStore(store)


@pytest.fixture(scope="module")
def server(counting):
    with ServerThread(create_app(Hub(), store=counting), "127.0.0.1", 0) as st:
        yield st


@pytest.fixture(scope="module")
def token_server(store):
    with ServerThread(create_app(Hub(), token=TOKEN, store=store), "127.0.0.1", 0) as st:
        yield st


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def request(st: ServerThread, method: str, path: str, *, body: Any = None,
            headers: dict[str, str] | None = None, raw: bytes | None = None) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10)
    hdrs = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        res = conn.getresponse()
        return Reply(res.status, res.headers, res.read())
    finally:
        conn.close()


def get(st: ServerThread, path: str, **kw: Any) -> Reply:
    return request(st, "GET", path, **kw)


# -- Range header (pure) --------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("items=0-5", None), ("bytes=0-1,4-5", None),
    ("bytes=0-99", (0, 100)), ("bytes=10-", (10, 1000)), ("bytes=-100", (900, 1000)),
    ("bytes=-5000", (0, 1000)), ("bytes=990-5000", (990, 1000)), ("bytes=999-999", (999, 1000)),
    ("BYTES = 5 - 9", (5, 10)),
])
def test_parse_range(header, expected):
    got = parse_range(header, 1000)
    assert (None if got is None else (got.start, got.end)) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=9-2",
                                    "bytes=x-", "bytes=-", "bytes=1.5-3"])
def test_parse_range_refuses(header):
    with pytest.raises(RangeError):
        parse_range(header, 1000)


def test_parse_range_empty_body_and_content_range():
    with pytest.raises(RangeError, match="empty"):
        parse_range("bytes=0-", 0)
    assert ByteRange(0, 100, 1000).content_range == "bytes 0-99/1000"


# -- reading --------------------------------------------------------------------------------


def test_list_calls_newest_first_with_counts(server, store):
    r = get(server, "/api/calls")
    assert r.status == 200
    data = r.json()
    assert data["total"] == 3
    assert [c["id"] for c in data["calls"]] == [store.ids["bare"], store.ids["demo"],
                                                store.ids["big"]]
    demo = data["calls"][1]
    assert demo["agent"] == "Dana" and demo["score"] == 41.5
    assert demo["cue_counts"] == {"name-frustration": 1, "pace-fast": 1, "qualified-apology": 1}
    assert 60 < demo["duration_s"] < 61 and demo["n_words"] > 80
    assert datetime.fromisoformat(demo["started_at"]) == STARTED


@pytest.mark.parametrize(("query", "which"), [
    ("agent=Dana", ["demo"]),
    ("cue=pace-fast", ["demo"]),
    ("cue=laughter", []),
    ("q=delivery%20company", ["demo"]),
    ("q=hello", ["bare"]),
    ("q=zebra", []),
    ("min_score=50", ["bare"]),
    ("max_score=50", ["demo"]),
    ("min_score=40&max_score=42", ["demo"]),
    ("since=2025-03-05", ["bare"]),
    ("until=2025-03-05T00:00:00Z", ["demo", "big"]),
    ("since=2025-03-04T00:00:00%2B00:00&until=2025-03-04T23:59:59Z", ["demo"]),
])
def test_list_filters(server, store, query, which):
    data = get(server, "/api/calls?" + query).json()
    assert [c["id"] for c in data["calls"]] == [store.ids[w] for w in which]
    assert data["total"] == len(which)


def test_list_paginates(server, store):
    first = get(server, "/api/calls?limit=2").json()
    rest = get(server, "/api/calls?limit=2&offset=2").json()
    assert first["total"] == rest["total"] == 3
    assert len(first["calls"]) == 2 and len(rest["calls"]) == 1
    assert rest["calls"][0]["id"] == store.ids["big"]


@pytest.mark.parametrize("query", ["limit=0", "limit=1000", "offset=-1", "min_score=abc",
                                   "min_score=80&max_score=20", "since=yesterday",
                                   "since=2025-03-05&until=2025-03-01", "max_score=101"])
def test_list_bad_query_is_422(server, query):
    r = get(server, "/api/calls?" + query)
    assert r.status == 422
    assert r.json()["detail"]


def test_agents_and_cue_types(server):
    assert get(server, "/api/agents").json() == ["Dana", "Noor", "Sam"]
    types = {t["id"]: t for t in get(server, "/api/cue-types").json()}
    assert types["qualified-apology"]["severity"] in ("info", "nudge", "warn")
    assert {"pace-fast", "no-follow-up", "empathy-shown"} <= set(types)


def test_get_call(server, store):
    call = get(server, f"/api/calls/{store.ids['demo']}").json()
    assert call["id"] == store.ids["demo"]
    speakers = {w["speaker"] for w in call["words"]}
    assert speakers == {"agent", "customer"}
    starts = [w["start"] for w in call["words"]]
    assert starts == sorted(starts)
    cues = {c["id"]: c for c in call["cues"]}
    assert [w["text"] for w in cues["qualified-apology"]["evidence"]["words"]] == ["sorry,", "but"]
    assert cues["pace-fast"]["feedback"] == "dismissed"  # the agent's dismiss, as recorded
    assert cues["qualified-apology"]["feedback"] is None
    assert all(c["withdrawn"] is None for c in call["cues"])  # none withdrawn on this call
    # the evidence as a person reads it (coach.evidence), next to the raw dict
    but = cues["qualified-apology"]["evidence"]["words"][0]
    assert cues["qualified-apology"]["evidence_text"] == (
        f"“sorry, but” at {int(but['start']) // 60}:{int(but['start']) % 60:02d}")
    assert cues["pace-fast"]["evidence_text"] == "pace 190 words/min, limit 175 words/min"
    assert len(call["prosody"]) == 2 * 60
    assert {"speaker", "t", "f0_hz", "wpm"} <= set(call["prosody"][0])


def test_unknown_call_is_404_with_one_line(server):
    for path in ("/api/calls/nope", "/api/calls/nope/audio", "/api/calls/nope/peaks",
                 "/api/calls/nope/export.vtt"):
        r = get(server, path)
        assert r.status == 404, path
        detail = r.json()["detail"]
        assert detail == "no call nope", path
    page = get(server, "/calls/nope")
    assert page.status == 404 and b"No such call" in page.body


def test_peaks_per_speaker(server, store):
    p = get(server, f"/api/calls/{store.ids['demo']}/peaks?n=600").json()
    assert p["speakers"] == ["agent", "customer"]
    assert len(p["channels"]) == 2
    assert 590 <= len(p["channels"][0]) <= 600
    assert abs(p["duration_s"] - 60.34) < 0.05
    agent, customer = (np.array(c) for c in p["channels"])
    # The customer speaks first (0.5-9 s): the agent's channel is silent there.
    first = slice(10, 80)
    assert customer[first].max() > 0.05 and agent[first].max() < 0.01
    assert get(server, f"/api/calls/{store.ids['demo']}/peaks?n=5").status == 422


def test_call_without_audio(server, store):
    bare = store.ids["bare"]
    for path in (f"/api/calls/{bare}/audio", f"/api/calls/{bare}/peaks"):
        r = get(server, path)
        assert r.status == 404 and r.json()["detail"] == f"call {bare} has no audio"
    call = get(server, f"/api/calls/{bare}").json()
    assert call["status"] == "recovered" and call["words"][0]["text"] == "hello"


def test_undecodable_stored_audio(server, store, tmp_path):
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"this is not audio at all " * 100)
    cid = store.add_call(meta={"agent": "Junk", "started_at": "2020-01-01T00:00:00Z"},
                         events=[], audio_path=junk)
    try:
        r = get(server, f"/api/calls/{cid}/peaks")
        assert r.status == 500
        assert r.json()["detail"].startswith("the stored audio cannot be decoded")
        assert get(server, f"/api/calls/{cid}/audio").body == junk.read_bytes()
    finally:
        store.delete_call(cid)


# -- audio and ranges (real HTTP) -----------------------------------------------------------


def _audio(store, key: str) -> bytes:  # type: ignore[no-untyped-def]
    cid = store.ids[key]
    return store.read_audio(cid, 0, store.audio_size(cid))


def test_audio_whole(server, store):
    want = _audio(store, "demo")
    r = get(server, f"/api/calls/{store.ids['demo']}/audio")
    assert r.status == 200
    assert r.body == want and want[:4] == b"fLaC"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Type"] == "audio/flac"
    assert int(r.headers["Content-Length"]) == len(want)


@pytest.mark.parametrize(("spec", "span"), [
    ("bytes=0-99", lambda n: (0, 100)),
    ("bytes=1000-", lambda n: (1000, n)),
    ("bytes=-512", lambda n: (n - 512, n)),
    ("bytes=1048000-1049600", lambda n: (1048000, 1049601)),   # across a 1 MiB store chunk
    ("bytes=100-99999999", lambda n: (100, n)),
])
def test_audio_ranges(server, store, spec, span):
    want = _audio(store, "big")
    n = len(want)
    assert n > 3 * (1 << 20)
    a, b = span(n)
    r = get(server, f"/api/calls/{store.ids['big']}/audio", headers={"Range": spec})
    assert r.status == 206
    assert r.headers["Content-Range"] == f"bytes {a}-{b - 1}/{n}"
    assert int(r.headers["Content-Length"]) == b - a
    assert r.body == want[a:b]


@pytest.mark.parametrize("spec", ["bytes=99999999-", "bytes=5-2", "bytes=abc", "bytes=-0"])
def test_audio_bad_range_is_416(server, store, spec):
    n = store.audio_size(store.ids["demo"])
    r = get(server, f"/api/calls/{store.ids['demo']}/audio", headers={"Range": spec})
    assert r.status == 416
    assert r.headers["Content-Range"] == f"bytes */{n}"
    assert r.json()["detail"].startswith("range not satisfiable")


def test_audio_head_multirange_and_if_range(server, store):
    cid = store.ids["demo"]
    n = store.audio_size(cid)
    head = request(server, "HEAD", f"/api/calls/{cid}/audio", headers={"Range": "bytes=10-19"})
    assert head.status == 206 and head.body == b""
    assert head.headers["Content-Range"] == f"bytes 10-19/{n}"
    etag = head.headers["ETag"]
    multi = get(server, f"/api/calls/{cid}/audio", headers={"Range": "bytes=0-1,5-6"})
    assert multi.status == 200 and len(multi.body) == n
    stale = get(server, f"/api/calls/{cid}/audio",
                headers={"Range": "bytes=0-9", "If-Range": '"another-version"'})
    assert stale.status == 200 and len(stale.body) == n
    fresh = get(server, f"/api/calls/{cid}/audio", headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status == 206 and fresh.body == b"fLaC" + fresh.body[4:] and len(fresh.body) == 10


def test_client_leaving_mid_stream_stops_the_stream(server, store, counting):
    cid = store.ids["big"]
    n = store.audio_size(cid)
    before = counting.audio_read
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.sendall(f"GET /api/calls/{cid}/audio HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    got = b""
    while len(got) < 64 * 1024:
        got += sock.recv(16 * 1024)
    assert got.startswith(b"HTTP/1.1 200")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # RST: the client is gone
    time.sleep(1.0)
    read = counting.audio_read - before
    assert read < n // 2, f"the server read {read} of {n} bytes for a client that left"
    # ...and it serves everyone else as before.
    assert get(server, "/health").json()["ok"] is True
    whole = get(server, f"/api/calls/{cid}/audio")
    assert whole.status == 200 and len(whole.body) == n
    assert read <= AUDIO_CHUNK * 16


def test_many_clients_leaving_at_once(server, store):
    cid = store.ids["big"]

    def leave() -> None:
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(f"GET /api/calls/{cid}/audio HTTP/1.1\r\nHost: localhost\r\n"
                      "Range: bytes=0-\r\n\r\n".encode())
            s.recv(4096)

    threads = [threading.Thread(target=leave) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    r = get(server, f"/api/calls/{cid}/audio", headers={"Range": "bytes=0-3"})
    assert r.status == 206 and r.body == b"fLaC"


# -- exports --------------------------------------------------------------------------------


def test_exports(server, store):
    cid = store.ids["demo"]
    j = get(server, f"/api/calls/{cid}/export.json")
    assert j.status == 200 and j.json()["id"] == cid
    assert "attachment" in j.headers["Content-Disposition"]
    assert j.headers["Content-Disposition"].endswith('.json"')
    vtt = get(server, f"/api/calls/{cid}/export.vtt")
    assert vtt.headers["Content-Type"].startswith("text/vtt")
    assert vtt.body.startswith(b"WEBVTT") and b"<v Agent>" in vtt.body
    srt = get(server, f"/api/calls/{cid}/export.srt")
    assert b" --> " in srt.body and b"CUSTOMER: " in srt.body
    csv = get(server, f"/api/calls/{cid}/export.csv")
    lines = csv.body.decode().splitlines()
    assert lines[0].startswith("call_id,idx,id,t") and len(lines) == 4
    assert get(server, f"/api/calls/{cid}/export.pdf").status == 404


# -- writing --------------------------------------------------------------------------------


def test_note_round_trip(server, store):
    cid = store.ids["demo"]
    r = request(server, "POST", f"/api/calls/{cid}/notes",
                body={"t": 12.5, "text": "  Blame starts here  ", "author": "Kim"})
    assert r.status == 201
    note = r.json()
    assert note["t"] == 12.5 and note["text"] == "Blame starts here" and note["author"] == "Kim"
    nid = note["id"]
    assert any(n["id"] == nid for n in get(server, f"/api/calls/{cid}").json()["notes"])
    r = request(server, "PATCH", f"/api/calls/{cid}/notes/{nid}", body={"text": "Edited"})
    assert r.status == 200 and r.json()["text"] == "Edited" and r.json()["t"] == 12.5
    r = request(server, "PATCH", f"/api/calls/{cid}/notes/{nid}", body={"t": 3})
    assert r.json()["t"] == 3 and r.json()["text"] == "Edited"
    assert request(server, "DELETE", f"/api/calls/{cid}/notes/{nid}").status == 204
    gone = request(server, "DELETE", f"/api/calls/{cid}/notes/{nid}")
    assert gone.status == 404 and gone.json()["detail"] == f"call {cid} has no note {nid}"
    assert request(server, "PATCH", f"/api/calls/{cid}/notes/{nid}",
                   body={"text": "x"}).status == 404
    assert all(n["id"] != nid for n in get(server, f"/api/calls/{cid}").json()["notes"])


@pytest.mark.parametrize("body", [
    {"text": "no time"}, {"t": 1.0}, {"t": 1.0, "text": "   "}, {"t": -1, "text": "x"},
    {"t": "soon", "text": "x"}, {"t": 1.0, "text": "x" * 4001}, {"t": 1, "text": "x", "extra": 1},
    {"t": 500.0, "text": "after the end of a one-minute call"}, [1, 2],
])
def test_bad_note_is_422(server, store, body):
    r = request(server, "POST", f"/api/calls/{store.ids['demo']}/notes", body=body)
    assert r.status == 422
    assert r.json()["detail"]


@pytest.mark.parametrize("raw", [b'{"t": NaN, "text": "x"}', b'{"t": Infinity, "text": "x"}',
                                 b"not json", b""])
def test_unparseable_note_is_422(server, store, raw):
    r = request(server, "POST", f"/api/calls/{store.ids['demo']}/notes", raw=raw,
                headers={"Content-Type": "application/json"})
    assert r.status == 422


def test_note_patch_needs_a_field_and_call_must_exist(server, store):
    cid = store.ids["demo"]
    note = request(server, "POST", f"/api/calls/{cid}/notes", body={"t": 1, "text": "a"}).json()
    r = request(server, "PATCH", f"/api/calls/{cid}/notes/{note['id']}", body={})
    assert r.status == 422
    r = request(server, "POST", "/api/calls/nope/notes", body={"t": 1, "text": "a"})
    assert r.status == 404 and r.json()["detail"] == "no call nope"
    # a note of one call cannot be changed through another
    other = store.ids["bare"]
    r = request(server, "PATCH", f"/api/calls/{other}/notes/{note['id']}", body={"text": "b"})
    assert r.status == 404
    request(server, "DELETE", f"/api/calls/{cid}/notes/{note['id']}")


def test_feedback(server, store):
    cid = store.ids["demo"]
    idx = next(c["idx"] for c in get(server, f"/api/calls/{cid}").json()["cues"]
               if c["id"] == "qualified-apology")
    r = request(server, "PUT", f"/api/calls/{cid}/cues/{idx}/feedback",
                body={"feedback": "flagged"})
    assert r.status == 200 and r.json()["feedback"] == "flagged"
    cue = next(c for c in get(server, f"/api/calls/{cid}").json()["cues"] if c["idx"] == idx)
    assert cue["feedback"] == "flagged" and cue["feedback_at"]
    assert request(server, "PUT", f"/api/calls/{cid}/cues/{idx}/feedback",
                   body={"feedback": None}).json()["feedback"] is None
    assert request(server, "PUT", f"/api/calls/{cid}/cues/{idx}/feedback",
                   body={"feedback": "liked"}).status == 422
    assert request(server, "PUT", f"/api/calls/{cid}/cues/{idx}/feedback", body={}).status == 422
    r = request(server, "PUT", f"/api/calls/{cid}/cues/99/feedback", body={"feedback": None})
    assert r.status == 404 and r.json()["detail"] == f"no cue 99 in call {cid}"


# -- access ---------------------------------------------------------------------------------


def test_token_required_everywhere_but_static(token_server, store):
    cid = store.ids["demo"]
    r = get(token_server, "/api/calls")
    assert r.status == 401
    assert "token" in r.json()["detail"] and r.headers["WWW-Authenticate"].startswith("Bearer")
    r = get(token_server, "/api/calls", headers={"Authorization": "Bearer wrong"})
    assert r.status == 403 and r.json()["detail"] == "forbidden: wrong access token"
    assert get(token_server, "/api/calls",
               headers={"Authorization": f"Bearer {TOKEN}"}).json()["total"] == 3
    assert get(token_server, f"/api/calls?token={TOKEN}").status == 200
    for path in ("/", f"/calls/{cid}", "/docs"):
        page = get(token_server, path)
        assert page.status == 401 and b"access token" in page.body, path
        assert get(token_server, f"{path}?token={TOKEN}").status == 200, path
    assert get(token_server, "/openapi.json").status == 401
    audio = get(token_server, f"/api/calls/{cid}/audio?token={TOKEN}", headers={"Range": "bytes=0-3"})
    assert audio.status == 206 and audio.body == b"fLaC"
    assert get(token_server, f"/api/calls/{cid}/audio?token=nope").status == 403
    assert get(token_server, "/static/replay/replay.css").status == 200
    assert get(token_server, "/health").status == 200  # the live service's own routes


def test_loopback_without_token_refuses_other_hosts_and_origins(server, store):
    cid = store.ids["demo"]
    r = get(server, "/api/calls", headers={"Host": "attacker.example:8765"})
    assert r.status == 403 and "localhost" in r.json()["detail"]
    assert get(server, "/api/calls", headers={"Host": "localhost:1"}).status == 200
    assert get(server, "/api/calls", headers={"Host": "[::1]:1"}).status == 200
    body = {"t": 1, "text": "from a web page"}
    for origin in ("https://attacker.example", "null"):
        r = request(server, "POST", f"/api/calls/{cid}/notes", body=body,
                    headers={"Origin": origin})
        assert r.status == 403 and "origin" in r.json()["detail"]
    ok = request(server, "POST", f"/api/calls/{cid}/notes", body=body,
                 headers={"Origin": f"http://127.0.0.1:{server.port}"})
    assert ok.status == 201
    request(server, "DELETE", f"/api/calls/{cid}/notes/{ok.json()['id']}")


# -- documentation, pages, assets ------------------------------------------------------------


def test_openapi_documents_the_api(server):
    spec = get(server, "/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/calls", "/api/agents", "/api/calls/{call_id}", "/api/calls/{call_id}/audio",
              "/api/calls/{call_id}/notes", "/api/calls/{call_id}/notes/{note_id}",
              "/api/calls/{call_id}/cues/{idx}/feedback", "/api/calls/{call_id}/export.{fmt}"):
        assert p in paths, p
    schemas = spec["components"]["schemas"]
    assert {"CallList", "CallDetail", "CueOut", "NoteIn", "NoteOut", "Message"} <= set(schemas)
    ok = paths["/api/calls/{call_id}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/CallDetail")
    assert "206" in paths["/api/calls/{call_id}/audio"]["get"]["responses"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "/" not in paths and "/calls/{call_id}" not in paths


def test_docs_use_local_assets_only(server):
    page = get(server, "/docs")
    assert page.status == 200
    html = page.body.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "https://" not in html.replace("https://fastapi", "")
    js = get(server, "/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert js.status == 200 and len(js.body) > 500_000


def test_pages_and_their_headers(server, store):
    for path in ("/", f"/calls/{store.ids['demo']}"):
        r = get(server, path)
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert r.headers["Referrer-Policy"] == "no-referrer"
    assert get(server, "/static/replay/call.js").headers["Content-Type"].startswith(
        ("text/javascript", "application/javascript"))


def test_front_end_loads_nothing_from_elsewhere():
    for f in (STATIC / "replay").iterdir():
        text = f.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http://" not in text and "https://" not in text, f
    vendor = STATIC / "vendor"
    notes = (vendor / "VERSIONS.md").read_text()
    for lib in ("wavesurfer", "uplot", "swagger-ui"):
        assert (vendor / lib / "LICENSE").is_file(), lib
        assert lib in notes.lower()
    for rel in ("wavesurfer/wavesurfer.esm.js", "uplot/uPlot.esm.js", "uplot/uPlot.min.css",
                "swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css"):
        assert (vendor / rel).is_file(), rel


def test_live_routes_still_served_with_a_store(server):
    from websockets.sync.client import connect

    assert get(server, "/health").json()["protocol"] == 1
    assert b"live overlay" in get(server, "/overlay").body
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"


# -- coach serve ----------------------------------------------------------------------------


def test_serve_refuses_public_bind_without_token(tmp_path):
    with pytest.raises(CoachError, match="without --token"):
        run_serve("0.0.0.0", 0, None, f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    assert not (tmp_path / "x.db").exists()


def test_serve_bad_database_is_one_line(tmp_path):
    with pytest.raises(CoachError, match="unsupported database"):
        run_serve("127.0.0.1", 0, None, "mysql://nobody@nowhere/db", tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _record_a_call(live: Path) -> None:
    from coach.live import Recorder

    rec = Recorder(live / "2025-03-07T10-00-00", customer_channel=True,
                   meta={"agent": "Rec", "started_at": 1_741_341_600.0})
    t = np.arange(16000 * 2) / 16000
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    rec.audio(tone, np.zeros_like(tone))
    rec.event({"type": "call", "state": "start", "t": 0.0, "started_at": 1_741_341_600.0})
    rec.event({"type": "word", "speaker": "agent", "text": "recorded", "start": 0.2,
               "end": 0.7, "final": True})
    rec.close()


@pytest.mark.slow  # a fresh interpreter importing the service, then a transcode: ~7 s
def test_serve_imports_recordings_then_serves(tmp_path):
    _record_a_call(tmp_path / "live")
    port = _free_port()
    code = ("import sys; from pathlib import Path; from coach.io.replay import run_serve; "
            f"sys.exit(run_serve('127.0.0.1', {port}, None, None, Path({str(tmp_path)!r})))")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/calls")
                data = json.loads(conn.getresponse().read())
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "coach serve did not start"
                time.sleep(0.2)
        assert data["total"] == 1 and data["calls"][0]["agent"] == "Rec"
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "imported 1 recorded call" in err and f"http://127.0.0.1:{port}/" in err
    assert (tmp_path / "coach.db").is_file()


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_replay(pg_server):
    """The API over a store on the session's PostgreSQL server (tests/conftest.py)."""
    s = open_store(pg_server.create_database("replay_api"))
    try:
        s.ids = _fill(s)  # type: ignore[attr-defined]
        with ServerThread(create_app(Hub(), store=s), "127.0.0.1", 0) as st:
            yield st, s
    finally:
        s.close()
        pg_server.drop_database("replay_api")


def test_postgresql_store_through_the_api(pg_replay):
    st, s = pg_replay
    cid = s.ids["demo"]
    data = get(st, "/api/calls?cue=qualified-apology&q=delivery").json()
    assert [c["id"] for c in data["calls"]] == [cid]
    call = get(st, f"/api/calls/{cid}").json()
    assert len(call["words"]) > 80 and len(call["cues"]) == 3
    n = s.audio_size(cid)
    r = get(st, f"/api/calls/{cid}/audio", headers={"Range": "bytes=-100"})
    assert r.status == 206 and r.headers["Content-Range"] == f"bytes {n - 100}-{n - 1}/{n}"
    assert r.body == s.read_audio(cid, n - 100, n)
    note = request(st, "POST", f"/api/calls/{cid}/notes", body={"t": 30, "text": "pg note"})
    assert note.status == 201
    nid = note.json()["id"]
    assert request(st, "PATCH", f"/api/calls/{cid}/notes/{nid}",
                   body={"text": "pg edited"}).json()["text"] == "pg edited"
    assert [n["text"] for n in get(st, f"/api/calls/{cid}").json()["notes"]] == ["pg edited"]
    assert request(st, "DELETE", f"/api/calls/{cid}/notes/{nid}").status == 204
    assert get(st, "/api/calls/nope").status == 404
    assert get(st, f"/api/calls/{cid}/peaks?n=100").json()["speakers"] == ["agent", "customer"]
