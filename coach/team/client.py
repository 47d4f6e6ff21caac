"""The agent's side of a team server: a live call's events out as they happen, and the
finished call into the team's store.

:class:`TeamPublisher` runs its own thread and event loop, so the pipeline only appends
to a list (:meth:`TeamPublisher.offer` never blocks nor fails). It connects to
``/team/ws/agent`` with the agent's token, learns the team's policy from the server's
hello, and from then on filters every event through it before sending; events are
numbered per call, kept until the server acknowledges them, and sent again after a
reconnect (the server drops what it already has). Coaching never waits for the network:
when the server is unreachable the events queue up in memory and go when it is back.

:func:`upload_recording` sends a recording folder written by ``coach live`` (the events
filtered by the policy, the audio when the policy keeps it) to ``/api/team/calls/ID``;
:func:`sync_recordings` sends every folder not sent yet (calls cut off by a crash, calls
made while the server was down). Both are idempotent: the server keeps one copy.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from coach.errors import CoachError
from coach.team.policy import TeamPolicy
from coach.team.protocol import MAX_EVENTS_PER_FRAME, MAX_FRAME_BYTES

__all__ = ["TeamError", "TeamPublisher", "new_call_id", "sync_recordings", "team_urls",
           "upload_recording"]

log = logging.getLogger(__name__)

UPLOADED = "team-upload.json"
MAX_BUFFER = 500_000  # events kept for a server that stays away (about a day of calls)
CATCH_UP_RATE = 150.0  # events a second while sending a backlog (the server allows 200)


class TeamError(CoachError):
    """The team server refused something, or cannot be reached (one line)."""


def new_call_id() -> str:
    return uuid.uuid4().hex


def team_urls(server: str) -> tuple[str, str]:
    """(http base URL, agent websocket URL) of a team server given as
    ``https://coach.example.com``, ``http://10.0.0.5:8765`` or ``host:port``."""
    s = server.strip().rstrip("/")
    if "://" not in s:
        s = "http://" + s
    parts = urlsplit(s)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise TeamError(f"bad team server address {server!r} (e.g. https://coach.example.com "
                        "or http://10.0.0.5:8765)")
    secure = parts.scheme in ("https", "wss")
    http = urlunsplit(("https" if secure else "http", parts.netloc, parts.path, "", ""))
    ws = urlunsplit(("wss" if secure else "ws", parts.netloc, parts.path + "/team/ws/agent",
                     "", ""))
    return http, ws


class TeamPublisher:
    """Publishes one live call to a team server; see the module docstring.

    ``on_state`` is called (from the publisher's thread) with ``{"type": "team", "state":
    "connected" | "offline" | "refused", "message", "sharing"}`` whenever the connection
    changes, so the agent's overlay can say what is being shared.
    """

    def __init__(self, server: str, token: str, *, call_id: str, playbook: Any = None,
                 on_state: Callable[[dict[str, Any]], None] | None = None,
                 retry_s: tuple[float, float] = (0.5, 10.0)):
        self.http_url, self.ws_url = team_urls(server)
        self.token = token
        self.call_id = call_id
        self.on_state = on_state
        self.retry_s = retry_s
        self._signals = None
        if playbook is not None:
            from coach.team.signals import CustomerSignals

            self._signals = CustomerSignals(playbook)
        self.policy: TeamPolicy | None = None
        self._raw: collections.deque[dict[str, Any]] = collections.deque()
        self._outbox: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()
        self._next_seq = 0
        self._send_from = 0  # the next seq to send on this connection
        self.acked = -1
        self.dropped = 0
        self.state = "connecting"
        self.refusal: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._acked_changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._ready = threading.Event()
        self._ws: Any = None

    # -- the pipeline's side (any thread) ---------------------------------------------------
    def offer(self, message: dict[str, Any]) -> None:
        """Queue one message of the live call (as published to the local overlay)."""
        if message.get("type") == "word" and not message.get("final"):
            return  # partial words never leave the machine
        if len(self._raw) >= MAX_BUFFER:
            self.dropped += 1
            return
        self._raw.append(message)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass

    def start(self) -> TeamPublisher:
        self._thread = threading.Thread(target=self._run, name="coach-team-publisher",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(5)
        return self

    def finish(self, timeout: float = 10.0) -> bool:
        """Wait until the server has everything (True) or ``timeout`` passes, then stop."""
        deadline = time.monotonic() + timeout
        with self._acked_changed:
            self._acked_changed.wait_for(
                lambda: self.refusal is not None or (
                    not self._raw and self.policy is not None and self.acked >= self._next_seq - 1),
                max(0.0, deadline - time.monotonic()))
        done = (not self._raw and self.policy is not None
                and self.acked >= self._next_seq - 1)
        self.stop()
        return done

    def stop(self) -> None:
        self._stop = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(5)

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by the server."""
        return len(self._raw) + len(self._outbox)

    # -- the publisher's thread -------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("team: the publisher stopped")

    def _state(self, state: str, message: str | None = None) -> None:
        self.state = state
        if self.on_state is not None:
            sharing = self.policy.sharing() if self.policy is not None else None
            try:
                self.on_state({"type": "team", "state": state, "message": message,
                               "server": self.http_url, "sharing": sharing})
            except Exception:
                log.exception("team: on_state failed")

    async def _main(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._ready.set()
        delay = self.retry_s[0]
        while not self._stop:
            try:
                async with connect(self.ws_url, additional_headers={
                        "Authorization": f"Bearer {self.token}"}, open_timeout=5,
                        ping_interval=5, ping_timeout=10, max_size=1 << 20,
                        close_timeout=2) as ws:
                    self._ws = ws
                    await self._session(ws)
                    delay = self.retry_s[0]
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd is not None else None
                reason = e.rcvd.reason if e.rcvd is not None else ""
                if code == 1008 and reason.startswith(("unauthorized", "forbidden")):
                    self.refusal = reason
                    self._state("refused", f"the team server refused this coach: {reason}")
                    with self._acked_changed:
                        self._acked_changed.notify_all()
                    return
                self._state("offline", f"team server connection closed ({reason or code}); "
                                       "coaching continues here, sharing resumes when it is back")
            except (OSError, TimeoutError, InvalidStatus) as e:
                self._state("offline", f"team server unreachable ({type(e).__name__}); coaching "
                                       "continues here, sharing resumes when it is back")
            except Exception as e:  # a protocol surprise must not end the agent's call
                self._state("offline", f"team server connection failed: {e}")
            finally:
                self._ws = None
            if self._stop:
                break
            try:
                await asyncio.wait_for(self._wait_stop(), delay)
            except TimeoutError:
                pass
            delay = min(self.retry_s[1], delay * 2)

    async def _wait_stop(self) -> None:
        while not self._stop:
            await asyncio.sleep(0.05)

    async def _session(self, ws: Any) -> None:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if hello.get("type") != "hello":
            raise TeamError("the team server did not say hello")
        self.policy = TeamPolicy.from_dict(hello.get("policy"))
        self._send_from = self.acked + 1
        self._state("connected", hello.get("sharing") or self.policy.sharing_line())
        reader = asyncio.create_task(self._read(ws))
        try:
            await self._send(ws, reader)
        finally:
            reader.cancel()

    async def _read(self, ws: Any) -> None:
        async for text in ws:
            try:
                msg = json.loads(text)
            except ValueError:
                continue
            if msg.get("type") == "ack" and msg.get("call") == self.call_id:
                seq = int(msg.get("seq", -1))
                with self._acked_changed:
                    if seq > self.acked:
                        self.acked = seq
                        while self._outbox and self._outbox[0][0] <= seq:
                            self._outbox.popleft()
                    self._acked_changed.notify_all()
            elif msg.get("type") == "error":
                log.warning("team server: %s", msg.get("message"))

    def _take_raw(self) -> None:
        """Filter new messages through the policy and number them (publisher's thread)."""
        assert self.policy is not None
        while self._raw:
            m = self._raw.popleft()
            extra = self._signals.feed(m) if self._signals is not None else []
            for e in (m, *extra):
                allowed = self.policy.live_event(e)
                if allowed is not None:
                    self._outbox.append((self._next_seq, allowed))
                    self._next_seq += 1

    async def _send(self, ws: Any, reader: asyncio.Task[None]) -> None:
        assert self._wake is not None
        while not reader.done():
            self._take_raw()
            batch: list[dict[str, Any]] = []
            size = 100
            first = self._outbox[0][0] if self._outbox else 0
            for seq, e in itertools.islice(self._outbox, max(0, self._send_from - first), None):
                item = {"seq": seq, **e}
                n = len(json.dumps(item)) + 1
                if batch and (len(batch) >= MAX_EVENTS_PER_FRAME or size + n > MAX_FRAME_BYTES):
                    break
                batch.append(item)
                size += n
            if batch:
                await ws.send(json.dumps({"type": "events", "call": self.call_id,
                                          "events": batch}))
                self._send_from = batch[-1]["seq"] + 1
                behind = self._next_seq - self._send_from
                if behind > 0:  # a backlog: pace it under the server's rate limit
                    await asyncio.sleep(len(batch) / CATCH_UP_RATE)
                continue
            if self._stop and self.acked >= self._next_seq - 1:
                await ws.close()
                return
            self._wake.clear()
            if self._raw:
                continue
            waiter = asyncio.create_task(self._wake.wait())
            done, _ = await asyncio.wait({waiter, reader}, timeout=1.0,
                                         return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()


# -- finished calls -------------------------------------------------------------------------


def _request(method: str, url: str, token: str, body: bytes | Any = None,
             content_type: str = "application/json", timeout: float = 60.0) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": content_type,
        "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:  # noqa: S310 (our URL)
            data = res.read()
            return res.status, json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read()).get("detail")
        except (ValueError, AttributeError):
            detail = None
        return e.code, {"detail": detail if isinstance(detail, str) else f"HTTP {e.code}"}
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise TeamError(f"cannot reach the team server at {url.split('/api/')[0]} "
                        f"({reason})") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def upload_recording(folder: Path, server: str, token: str, *, policy: TeamPolicy | None = None
                     ) -> str | None:
    """Send one recording folder of a team call to the server's store; the stored call's
    id, or None when the folder is not a team call. Writes ``team-upload.json`` into the
    folder once the server has it. TeamError (one line) when refused or unreachable."""
    from coach.store.importer import read_events

    folder = Path(folder)
    try:
        meta = json.loads((folder / "call.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    call_id = meta.get("team_call") if isinstance(meta, dict) else None
    if not isinstance(call_id, str) or len(call_id) != 32:
        return None
    base, _ = team_urls(server)
    if policy is None:
        code, body = _request("GET", f"{base}/api/team/policy", token)
        if code != 200:
            raise TeamError(f"the team server refused this coach: {body.get('detail')}")
        policy = _policy_of(body)
    if not policy.stored.store:
        _mark(folder, call_id, "not stored (the team policy keeps calls on agents' machines)")
        return None
    events, _ = read_events(folder / "events.jsonl")
    kept = [k for k in (policy.stored_event(e) for e in events) if k is not None]
    audio = folder / "audio.flac"
    has_audio = audio.is_file() and audio.stat().st_size > 0
    if has_audio and policy.stored.audio:
        with open(audio, "rb") as f:
            code, body = _request("PUT", f"{base}/api/team/calls/{call_id}/audio", token,
                                  f, "audio/flac", timeout=300)
        if code not in (200, 201):
            raise TeamError(f"audio of call {call_id[:8]} refused: {body.get('detail')}")
    source_key = _sha256(audio) if has_audio else _sha256(folder / "events.jsonl")
    payload = {"meta": {k: meta.get(k) for k in ("started_at", "duration", "model",
                                                 "channels", "finished")}
               | {"source_key": source_key}, "events": kept}
    code, body = _request("POST", f"{base}/api/team/calls/{call_id}", token,
                          json.dumps(payload).encode("utf-8"), timeout=300)
    if code not in (200, 201):
        raise TeamError(f"call {call_id[:8]} refused by the team server: {body.get('detail')}")
    _mark(folder, call_id, "stored")
    return str(body.get("id") or call_id)


def _policy_of(body: dict[str, Any]) -> TeamPolicy:
    """The policy in a ``GET /api/team/policy`` answer (which also says what it shares)."""
    return TeamPolicy.from_dict({k: body[k] for k in ("version", "live", "stored", "alerts")
                                 if k in body})


def _mark(folder: Path, call_id: str, outcome: str) -> None:
    try:
        tmp = folder / (UPLOADED + ".tmp")
        tmp.write_text(json.dumps({"call_id": call_id, "outcome": outcome,
                                   "at": time.time()}))
        tmp.replace(folder / UPLOADED)
    except OSError as e:
        log.info("%s: cannot write %s (%s)", folder, UPLOADED, e)


def sync_recordings(root: Path, server: str, token: str, *, skip: Path | None = None,
                    idle_s: float = 10.0) -> list[str]:
    """Upload every team call under ``root`` not uploaded yet (finished calls, and calls
    whose process was killed once their files are idle); returns the stored ids. Stops at
    the first unreachable-server error (the rest go next time)."""
    from coach.store.importer import _read_meta, _recording_folders, _still_recording

    root = Path(root)
    if not root.is_dir():
        return []
    done = []
    policy = None
    for folder in _recording_folders(root):
        if (folder / UPLOADED).is_file() or (skip is not None and folder == skip):
            continue
        meta = _read_meta(folder)
        if not isinstance(meta.get("team_call"), str):
            continue
        if not meta.get("finished") and _still_recording(folder, meta, idle_s):
            continue
        if policy is None:
            base, _ = team_urls(server)
            code, body = _request("GET", f"{base}/api/team/policy", token)
            if code != 200:
                raise TeamError(f"the team server refused this coach: {body.get('detail')}")
            policy = _policy_of(body)
        call_id = upload_recording(folder, server, token, policy=policy)
        if call_id:
            done.append(call_id)
    return done
