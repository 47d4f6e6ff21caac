"""The local service: a real uvicorn server on a free port, real `websockets` clients."""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
import time
import urllib.request

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from coach.errors import CoachError
from coach.events import CallEvent, Cue, Prosody, Word
from coach.io.hub import CLOSE_POLICY, CLOSE_TOO_SLOW, PROTOCOL_VERSION, Hub
from coach.io.server import ServerThread, check_bind, create_app

CALL_START = {"type": "call", "state": "start", "t": 0.0, "started_at": 1_700_000_000.25,
              "pace_band": [120, 175]}


@pytest.fixture
def feedback() -> queue.Queue:
    return queue.Queue()


@pytest.fixture
def hub(feedback) -> Hub:
    return Hub(on_feedback=feedback.put)


@pytest.fixture
def server(hub):
    with ServerThread(create_app(hub), "127.0.0.1", 0) as st:
        yield st


def ws_url(st: ServerThread, query: str = "") -> str:
    return f"ws://127.0.0.1:{st.port}/ws{query}"


def recv(ws, timeout: float = 5.0) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def test_hello_first_with_protocol_1(server):
    with connect(ws_url(server)) as ws:
        hello = recv(ws)
    assert hello["type"] == "hello"
    assert hello["protocol"] == PROTOCOL_VERSION == 1
    assert hello["server"].startswith("coach ")


def test_late_joiner_gets_call_start_then_status(hub, server):
    status = {"type": "status", "lag_s": 0.4, "degraded": False, "message": None,
              "devices": {"agent": "headset"}}
    with connect(ws_url(server)) as first:
        assert recv(first)["type"] == "hello"
        hub.publish_threadsafe(CALL_START)
        hub.publish_threadsafe(Word("agent", "hello", 0.5, 0.8, True).to_dict())
        hub.publish_threadsafe(status)
        # Once the first client has them, the hub has fanned them out.
        assert [recv(first)["type"] for _ in range(3)] == ["call", "word", "status"]
    with connect(ws_url(server)) as late:
        assert recv(late)["type"] == "hello"
        assert recv(late) == CALL_START  # started_at and the rest, unchanged
        assert recv(late) == status
        hub.publish_threadsafe({"type": "word", "text": "live"})
        assert recv(late)["text"] == "live"  # the old word is not replayed


def test_call_end_forgets_the_call(hub, server):
    with connect(ws_url(server)) as observer:
        assert recv(observer)["type"] == "hello"
        hub.publish_threadsafe(CALL_START)
        hub.publish_threadsafe(CallEvent("end", 12.0, {"duration": 12.0}).to_dict())
        assert recv(observer)["state"] == "start" and recv(observer)["state"] == "end"
    with connect(ws_url(server)) as ws:
        assert recv(ws)["type"] == "hello"
        hub.publish_threadsafe({"type": "word", "text": "after"})
        assert recv(ws)["text"] == "after"


def test_events_arrive_in_publish_order(hub, server):
    events = [CallEvent("start", 0.0, {"started_at": 1.0}).to_dict()]
    for i in range(50):
        events.append(Word("agent", f"w{i}", i * 0.3, i * 0.3 + 0.2, i % 2 == 0).to_dict())
        if i % 10 == 0:
            events.append(Prosody("agent", float(i), 180.0, -20.0, 150.0).to_dict())
    events.append(Cue("apology.but", 7.5, "agent", "warn", "Avoid the 'but'", "Drop it").to_dict())
    with connect(ws_url(server)) as ws:
        assert recv(ws)["type"] == "hello"
        for e in events:
            hub.publish_threadsafe(e)
        got = [recv(ws) for _ in events]
    assert got == json.loads(json.dumps(events))


def test_publish_on_the_loop_keeps_order_with_threadsafe(hub, server):
    with connect(ws_url(server)) as ws:
        assert recv(ws)["type"] == "hello"
        hub.publish_threadsafe({"type": "word", "n": 1})
        asyncio.run_coroutine_threadsafe(_publish_on_loop(hub, {"type": "word", "n": 2}),
                                         server.loop).result(5)
        hub.publish_threadsafe({"type": "word", "n": 3})
        assert [recv(ws)["n"] for _ in range(3)] == [1, 2, 3]


async def _publish_on_loop(hub: Hub, message: dict) -> None:
    hub.publish(message)


def test_nan_becomes_null(hub, server):
    with connect(ws_url(server)) as ws:
        assert recv(ws)["type"] == "hello"
        hub.publish_threadsafe({"type": "prosody", "f0_hz": float("nan"), "wpm": 140.0})
        assert recv(ws) == {"type": "prosody", "f0_hz": None, "wpm": 140.0}


def test_dismiss_and_flag_reach_on_feedback_and_are_rebroadcast(server, feedback):
    with connect(ws_url(server)) as a, connect(ws_url(server)) as b:
        assert recv(a)["type"] == recv(b)["type"] == "hello"
        before = time.time()
        a.send(json.dumps({"type": "dismiss", "cue_id": "apology.but", "t": 7.5}))
        b.send(json.dumps({"type": "flag", "cue_id": "pace.fast", "t": 12}))
        got_b = [recv(b), recv(b)]
        got_a = [recv(a), recv(a)]
    expected = [{"type": "feedback", "action": "dismiss", "cue_id": "apology.but", "t": 7.5},
                {"type": "feedback", "action": "flag", "cue_id": "pace.fast", "t": 12.0}]
    assert got_a == got_b == expected
    records = [feedback.get(timeout=5), feedback.get(timeout=5)]
    assert [(r["type"], r["cue_id"], r["t"]) for r in records] == [
        ("dismiss", "apology.but", 7.5), ("flag", "pace.fast", 12.0)]
    assert records[0]["client_id"] != records[1]["client_id"]
    assert all(before <= r["received_at"] <= time.time() for r in records)


def test_malformed_client_messages_are_ignored(server, feedback):
    bad = ["not json", "[1, 2]", "42", json.dumps({"type": "shout"}),
           json.dumps({"type": "dismiss"}), json.dumps({"type": "flag", "cue_id": "", "t": 1}),
           json.dumps({"type": "flag", "cue_id": "x", "t": "soon"}),
           json.dumps({"type": "flag", "cue_id": "x", "t": True})]
    with connect(ws_url(server)) as ws:
        assert recv(ws)["type"] == "hello"
        for text in bad:
            ws.send(text)
        ws.send(b"\xff\xfe binary")
        ws.send(json.dumps({"type": "dismiss", "cue_id": "ok", "t": 1.0}))
        # The first thing back is the feedback for the one valid message: nothing before it.
        assert recv(ws) == {"type": "feedback", "action": "dismiss", "cue_id": "ok", "t": 1.0}
    assert feedback.get(timeout=5)["cue_id"] == "ok"
    assert feedback.empty()


def test_slow_clients_are_dropped_and_never_slow_the_others():
    """50 clients, 10 never read; 2500 messages published from another thread as fast
    as it can. The publisher never blocks, the 40 readers get every message in order,
    the 10 stuck ones are closed with 1013 and counted."""
    n_msgs, pad = 2500, "x" * 400  # ~1 MB per client: more than a stuck socket absorbs
    hub = Hub(queue_size=256)
    with ServerThread(create_app(hub), "127.0.0.1", 0) as st:
        url = ws_url(st)
        timing: dict[str, float] = {}

        def publisher(go: threading.Event) -> None:
            go.wait()
            worst, t0 = 0.0, time.perf_counter()
            for i in range(n_msgs):
                t = time.perf_counter()
                hub.publish_threadsafe({"type": "word", "i": i, "pad": pad})
                worst = max(worst, time.perf_counter() - t)
            hub.publish_threadsafe({"type": "call", "state": "end", "t": 1.0})
            timing["total"], timing["worst"] = time.perf_counter() - t0, worst

        async def main() -> None:
            readers = [await aconnect(url, compression=None) for _ in range(40)]
            stuck = [await aconnect(url, compression=None, max_queue=1) for _ in range(10)]
            for ws in readers + stuck:
                assert json.loads(await ws.recv())["type"] == "hello"

            async def read_all(ws) -> list[int]:
                got = []
                while (m := json.loads(await ws.recv()))["type"] != "call":
                    got.append(m["i"])
                return got

            async def close_code(ws) -> tuple[int, int | None]:
                n = 0
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                        n += 1
                except ConnectionClosed as e:
                    return n, (e.rcvd.code if e.rcvd else None)

            go = threading.Event()
            thread = threading.Thread(target=publisher, args=(go,))
            thread.start()
            go.set()
            got = await asyncio.wait_for(asyncio.gather(*(read_all(ws) for ws in readers)), 20)
            thread.join(5)
            assert all(g == list(range(n_msgs)) for g in got)
            # The stuck ones now read: their backlog, then the close frame.
            closed = await asyncio.gather(*(close_code(ws) for ws in stuck))
            assert [code for _, code in closed] == [CLOSE_TOO_SLOW] * 10, closed
            assert all(n < n_msgs for n, _ in closed)
            for ws in readers:
                await ws.close()

        asyncio.run(main())
        assert hub.dropped == 10
        # 2500 publishes take a few ms; blocking on a client would take seconds.
        assert timing["total"] < 1.0, timing
        assert timing["worst"] < 0.5, timing


def test_reconnect_gets_hello_and_call_start_again(hub, server):
    hub.publish_threadsafe(CALL_START)
    with connect(ws_url(server)) as ws:
        assert [recv(ws)["type"] for _ in range(2)] == ["hello", "call"]
    with connect(ws_url(server)) as ws:
        assert recv(ws)["type"] == "hello"
        assert recv(ws) == CALL_START


def test_check_bind():
    for host in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"):
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.20", "::", ""):
        with pytest.raises(CoachError, match="--token") as e:
            check_bind(host, None)
        assert "\n" not in str(e.value)
        check_bind(host, "s3cret")
    with pytest.raises(CoachError):
        check_bind("0.0.0.0", "")


@pytest.fixture
def token_server(hub):
    with ServerThread(create_app(hub, token="s3cret"), "127.0.0.1", 0) as st:
        yield st


@pytest.mark.parametrize("query", ["", "?token=wrong"])
def test_token_refuses_clients_without_it(token_server, query):
    with connect(ws_url(token_server, query)) as ws:
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=5)
    assert e.value.rcvd is not None and e.value.rcvd.code == CLOSE_POLICY
    assert "unauthorized" in e.value.rcvd.reason


def test_token_in_query_or_bearer_header_gets_hello(token_server):
    with connect(ws_url(token_server, "?token=s3cret")) as ws:
        assert recv(ws)["type"] == "hello"
    with connect(ws_url(token_server),
                 additional_headers={"Authorization": "Bearer s3cret"}) as ws:
        assert recv(ws)["type"] == "hello"


def test_foreign_web_page_is_refused_without_token(server):
    with connect(ws_url(server), origin="https://evil.example") as ws:
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=5)
    assert e.value.rcvd is not None and e.value.rcvd.code == CLOSE_POLICY
    with connect(ws_url(server), origin=f"http://127.0.0.1:{server.port}") as ws:
        assert recv(ws)["type"] == "hello"


def test_health(hub, server):
    with connect(ws_url(server)) as ws:
        recv(ws)
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as r:
            assert r.headers["content-type"].startswith("application/json")
            body = json.load(r)
    assert body == {"ok": True, "clients": 1, "dropped": 0, "protocol": 1}


def test_overlay_page(server):
    with urllib.request.urlopen(f"{server.url}/overlay?token=abc", timeout=5) as r:
        assert r.headers["content-type"].startswith("text/html")
        html = r.read().decode()
    assert "new WebSocket(" in html and '"/ws"' in html
    assert "token" in html and "Disconnected — reconnecting…" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    assert '<script src="/overlay/display.js">' in html
    with urllib.request.urlopen(f"{server.url}/overlay/display.js", timeout=5) as r:
        assert r.headers["content-type"].startswith("text/javascript")
        assert "class DisplayPolicy" in r.read().decode()


def test_port_taken_is_one_line_error(server):
    with pytest.raises(CoachError, match="already in use") as e:
        ServerThread(create_app(Hub()), "127.0.0.1", server.port).start()
    assert "\n" not in str(e.value)


def test_stop_is_quick_even_with_clients(hub):
    st = ServerThread(create_app(hub), "127.0.0.1", 0).start()
    with connect(ws_url(st)) as ws:
        recv(ws)
        t = time.perf_counter()
        st.stop()
        assert time.perf_counter() - t < 2.0
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", st.port), timeout=1).close()


# The browser overlay in headless Chromium: tests/test_overlay_browser.py

