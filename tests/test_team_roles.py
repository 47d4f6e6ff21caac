"""Roles on a team server, route by route, over real HTTP and websockets (SQLite store).

Every route of the app is listed in ROUTES with who may use it; a test fails if the app
grows a route this table does not cover, so a new route cannot ship without its rule."""

from __future__ import annotations

import asyncio
import json

import pytest

from coach.store import open_store
from coach.team.client import new_call_id
from tests.replay_data import manifest_events, noise_flac
from tests.team_helpers import http, team_server, tokens

ROLES = ("none", "revoked", "dana", "sam", "coach_north", "coach_all", "admin")
SEES = {  # which stored calls each role may read: A is Dana's (north), B is Sam's (south)
    "dana": {"A"}, "sam": {"B"}, "coach_north": {"A"}, "coach_all": {"A", "B"},
    "admin": {"A", "B"},
}
COACHES = ("coach_north", "coach_all", "admin")


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("team-roles")
    store = open_store(f"sqlite:///{tmp / 'coach.db'}")
    audio = noise_flac(tmp / "n.flac", 3)
    ids = {
        "A": store.add_call(meta={"agent": "Dana", "started_at": "2025-03-04T09:00:00Z",
                                  "source": "a.flac"}, events=manifest_events(),
                            audio_path=audio),
        "B": store.add_call(meta={"agent": "Sam", "started_at": "2025-03-05T09:00:00Z",
                                  "source": "b.flac"}, events=manifest_events(),
                            audio_path=audio),
    }
    toks = tokens(store)
    st, ts = team_server(store, spool_dir=tmp / "spool")
    yield {"base": st.url, "ids": ids, "tokens": toks, "store": store, "server": ts}
    st.stop()
    store.close()


def _note(team, which: str) -> int:
    s, body, _ = http(team["base"], "POST", f"/api/calls/{team['ids'][which]}/notes",
                      team["tokens"]["admin"], {"t": 1.0, "text": "a note"})
    assert s == 201, body
    return body["id"]


def expected(rule: str, role: str, which: str | None) -> int | tuple[int, ...]:
    if role == "none":
        return 401
    if role == "revoked":
        return 403
    sees = which in SEES[role] if which else True
    if rule == "any":
        return 200
    if rule == "read":
        return 200 if sees else 403
    if rule == "coach-write":
        return (200, 201, 204) if role in COACHES and sees else 403
    if rule == "feedback":
        return 200 if sees else 403
    if rule == "coach":
        return 200 if role in COACHES else 403
    if rule == "board-page":
        return 200 if role in COACHES else 303
    if rule == "admin":
        return (200, 201) if role == "admin" else 403
    if rule == "upload":
        return (200, 201, 422) if role in ("dana", "sam") else 403
    if rule == "dana":  # about agent Dana (north): herself, her coaches
        return 200 if "A" in SEES[role] else 403
    if rule == "own-agent":  # the agent whose call it is
        return 201 if role in ("dana", "sam") and sees else 403
    if rule == "coach-resolve":  # a dispute about Dana's call A
        return 200 if role in COACHES and "A" in SEES[role] else 403
    raise AssertionError(rule)


# (method, route path) -> rule; paths with {call_id} are tried on both calls
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/"): "any",
    ("GET", "/overlay"): "any",  # the local overlay page: nothing live on a team server
    ("GET", "/overlay/display.js"): "any",
    ("GET", "/calls/{call_id}"): "read",
    ("GET", "/docs"): "any",
    ("GET", "/openapi.json"): "any",
    ("GET", "/api/calls"): "any",
    ("GET", "/api/agents"): "any",
    ("GET", "/api/cue-types"): "any",
    ("GET", "/api/calls/{call_id}"): "read",
    ("GET", "/api/calls/{call_id}/peaks"): "read",
    ("GET", "/api/calls/{call_id}/audio"): "read",
    ("HEAD", "/api/calls/{call_id}/audio"): "read",
    ("GET", "/api/calls/{call_id}/export.{fmt}"): "read",
    ("POST", "/api/calls/{call_id}/notes"): "coach-write",
    ("PATCH", "/api/calls/{call_id}/notes/{note_id}"): "coach-write",
    ("DELETE", "/api/calls/{call_id}/notes/{note_id}"): "coach-write",
    ("PUT", "/api/calls/{call_id}/cues/{idx}/feedback"): "feedback",
    ("GET", "/team"): "board-page",
    ("GET", "/team/calls/{call_id}"): "read",
    ("GET", "/api/team/me"): "any",
    ("GET", "/api/team/policy"): "any",
    ("GET", "/api/team/board"): "coach",
    ("GET", "/api/team/agents/{name}/baseline"): "dana",
    ("GET", "/team/agents/{name}"): "dana",
    ("GET", "/api/team/agents/{name}/summary"): "dana",
    ("GET", "/team/review/{call_id}"): "read",
    ("GET", "/api/calls/{call_id}/review"): "read",
    ("POST", "/api/calls/{call_id}/reviews"): "own-agent",
    ("GET", "/team/reviews"): "coach",
    ("GET", "/api/team/reviews"): "any",
    ("PUT", "/api/team/reviews/{review_id}"): "coach-resolve",
    ("GET", "/api/team/false-cues"): "coach",
    ("GET", "/api/team/tokens"): "admin",
    ("POST", "/api/team/tokens"): "admin",
    ("DELETE", "/api/team/tokens/{token_id}"): "admin",
    ("PUT", "/api/team/calls/{call_id}/audio"): "upload",
    ("POST", "/api/team/calls/{call_id}"): "upload",
}
OPEN = {("GET", "/health"), ("GET", "/favicon.ico")}
WEBSOCKETS = {"/ws", "/team/ws/agent", "/team/ws/board", "/team/ws/calls/{call_id}"}


def _app_routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, path) of every HTTP route of the service app, mounts walked."""
    from starlette.routing import Mount, Route, WebSocketRoute

    out: set[tuple[str, str]] = set()

    def walk(routes, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for r in routes:
            if isinstance(r, Mount):
                if r.path.startswith("/static"):
                    continue  # open: styles and scripts
                walk(r.routes, prefix + r.path)
            elif isinstance(r, WebSocketRoute):
                out.add(("WS", prefix + r.path))
            elif isinstance(r, Route):
                for m in r.methods or ():
                    if not (m == "HEAD" and "GET" in r.methods and r.path != "/api/calls/{call_id}/audio"):
                        out.add((m, prefix + r.path))
    walk(app.routes, "")
    return out


def test_every_route_has_a_rule(team) -> None:
    from coach.io.hub import Hub
    from coach.io.server import create_app

    app = create_app(Hub(), store=team["store"], team=team["server"])
    routes = _app_routes(app)
    http_routes = {r for r in routes if r[0] != "WS"}
    assert http_routes - set(ROUTES) - OPEN == set()
    assert {p for m, p in routes if m == "WS"} == WEBSOCKETS


def _fill(path: str, team, which: str | None) -> str:
    ids = team["ids"]
    if "{call_id}" in path:
        path = path.replace("{call_id}", ids[which])
    return (path.replace("{fmt}", "json").replace("{idx}", "0").replace("{name}", "Dana")
            .replace("{token_id}", "999999"))


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_by_route(team, route) -> None:
    method, template = route
    rule = ROUTES[route]
    toks = {**team["tokens"], "none": None}
    for which in (("A", "B") if "{call_id}" in template and rule != "upload" else (None,)):
        for role in ROLES:
            path = _fill(template, team, which) if rule != "upload" else template
            body = None
            if "{note_id}" in template:
                path = path.replace("{note_id}", str(_note(team, which)))
            if method in ("POST", "PATCH") and "/notes" in template:
                body = {"t": 2.0, "text": "looked at"}
            elif template == "/api/calls/{call_id}/reviews":
                body = {"kind": "dispute", "target": "score", "comment": "not fair"}
            elif template == "/api/team/reviews/{review_id}":
                s, made, _ = http(team["base"], "POST", f"/api/calls/{team['ids']['A']}/reviews",
                                  toks["dana"], {"kind": "dispute", "comment": "no"})
                path = f"/api/team/reviews/{made['id']}"
                body = {"status": "upheld", "resolution": "the cue was right"}
            elif "/feedback" in template:
                body = {"feedback": "flagged"}
            elif template == "/api/team/tokens" and method == "POST":
                body = {"name": "Temp", "role": "agent", "team": "north"}
            elif template == "/api/team/tokens/{token_id}":
                if role == "admin":  # a real token to revoke
                    s, made, _ = http(team["base"], "POST", "/api/team/tokens",
                                      toks["admin"], {"name": "Temp", "role": "agent"})
                    path = f"/api/team/tokens/{made['member']['id']}"
            if rule == "upload":
                path = template.replace("{call_id}", new_call_id())
                if method == "POST":
                    body = {"meta": {"source_key": "0" * 64, "started_at": 1.7e9},
                            "events": manifest_events()[:20]}
            raw = b"fLaC not really" if method == "PUT" and rule == "upload" else None
            status, got, headers = http(team["base"], method, path, toks[role], body, raw=raw,
                                        content_type="audio/flac" if raw else
                                        "application/json")
            want = expected(rule, role, which)
            wants = want if isinstance(want, tuple) else (want,)
            assert status in wants, (method, path, role, status, got)
            if status in (401, 403) and method != "HEAD" and path.startswith("/api/"):
                assert isinstance(got, dict) and got["detail"].split(":")[0] in (
                    "unauthorized", "forbidden"), got


def test_a_page_refused_says_why_in_html(team) -> None:
    s, body, headers = http(team["base"], "GET", f"/calls/{team['ids']['B']}",
                            team["tokens"]["dana"], query_token=True)
    assert s == 403 and "another agent" in body and "text/html" in headers["content-type"]
    s, body, headers = http(team["base"], "GET", "/", None)
    assert s == 401 and "needs a token" in body and "text/html" in headers["content-type"]


def test_lists_show_only_what_a_role_may_see(team) -> None:
    base, t = team["base"], team["tokens"]
    for role, agents in (("dana", ["Dana"]), ("sam", ["Sam"]), ("coach_north", ["Dana"]),
                         ("coach_all", ["Dana", "Sam"]), ("admin", ["Dana", "Sam"])):
        s, body, _ = http(base, "GET", "/api/calls", t[role])
        assert s == 200 and sorted({c["agent"] for c in body["calls"]}) == agents, role
        assert body["total"] == len(body["calls"])
        s, body, _ = http(base, "GET", "/api/agents", t[role])
        assert body == agents, role
    # asking for another agent's calls by name finds nothing rather than leaking them
    s, body, _ = http(base, "GET", "/api/calls?agent=Sam", t["dana"])
    assert s == 200 and body["total"] == 0 and body["calls"] == []


def test_open_paths_need_no_token(team) -> None:
    for path in ("/health", "/static/replay/replay.css", "/static/team/board.js"):
        assert http(team["base"], "GET", path)[0] == 200, path


def test_an_agent_is_sent_from_the_board_to_their_own_page(team) -> None:
    s, _, headers = http(team["base"], "GET", "/team", team["tokens"]["dana"], query_token=True)
    assert s == 303 and headers["location"].startswith("/team/agents/Dana?token=")


def _ws(url: str) -> tuple[int, str]:
    """Connect and read until closed: (close code, reason), or (0, first message)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    async def run() -> tuple[int, str]:
        try:
            async with connect(url) as ws:
                try:
                    first = None
                    while True:
                        try:
                            msg = json.loads(await asyncio.wait_for(ws.recv(), 2))
                        except TimeoutError:
                            return 0, first or "nothing"
                        if msg["type"] != "hello":
                            return 0, msg["type"]
                        first = "hello"
                except ConnectionClosed as e:
                    return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (1006, "")
        except InvalidStatus as e:
            return e.response.status_code, ""

    return asyncio.run(run())


def test_websockets_by_role(team) -> None:
    base = team["base"].replace("http://", "ws://")
    t = team["tokens"]
    code, reason = _ws(f"{base}/team/ws/board")
    assert code == 1008 and reason.startswith("unauthorized")
    code, reason = _ws(f"{base}/team/ws/board?token={t['revoked']}")
    assert code == 1008 and "revoked" in reason
    code, reason = _ws(f"{base}/team/ws/board?token={t['dana']}")
    assert code == 1008 and reason.startswith("forbidden: the board is for coaches")
    assert _ws(f"{base}/team/ws/board?token={t['coach_north']}") == (0, "board")
    code, reason = _ws(f"{base}/team/ws/agent?token={t['coach_all']}")
    assert code == 1008 and "cannot publish" in reason
    assert _ws(f"{base}/team/ws/agent?token={t['dana']}") == (0, "hello")  # then waits
    code, reason = _ws(f"{base}/team/ws/calls/{'0' * 32}?token={t['admin']}")
    assert code == 1008 and "no live call" in reason
    # the local overlay socket of the service is closed to anyone without a valid token
    assert _ws(f"{base}/ws")[0] in (403, 1008)
