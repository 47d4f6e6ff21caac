"""The websocket hub: fans every pipeline message out to any number of clients.

The pipeline (on its own thread) calls :meth:`Hub.publish_threadsafe`; the service's event
loop does the rest. One pump task takes messages in publish order, serialises each once,
and puts the text on every client's bounded queue; one sender task per client drains its
queue into its websocket. A client whose queue is full is too slow (or stuck): it is
dropped with close code 1013 ("try again later") and counted, so it never slows the
pipeline or the other clients.

A client that connects mid-call first gets ``hello``, then the current call's ``call``
start message, then the latest ``status``, then live messages. Clients may send
``{"type": "dismiss"|"flag", "cue_id": str, "t": float}``: valid ones are passed to
``on_feedback`` and re-broadcast as ``{"type": "feedback", "action", "cue_id", "t"}``;
anything else is logged and ignored.

The hub does not know Starlette: a client is anything with the small :class:`Socket`
interface (``send_text``, ``close``); :mod:`coach.io.server` adapts Starlette to it.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_POLICY",
    "CLOSE_TOO_SLOW",
    "PROTOCOL_VERSION",
    "Hub",
    "Socket",
    "hello_message",
    "parse_client_message",
]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
"""Version of the websocket protocol (the ``hello`` message carries it)."""

CLOSE_TOO_SLOW = 1013
"""Close code for a client whose queue overflowed ("try again later")."""
CLOSE_POLICY = 1008
"""Close code for a client refused by policy (missing or wrong token, foreign origin)."""
CLOSE_GOING_AWAY = 1001
"""Close code sent to every client when the service shuts down."""

CLOSE_TIMEOUT_S = 5.0
"""How long a dropped client's close frame may wait behind its unread backlog."""

FEEDBACK_TYPES = ("dismiss", "flag")


def _server_version() -> str:
    try:
        from importlib.metadata import version

        return f"coach {version('coach')}"
    except Exception:  # not installed (running from a source tree)
        return "coach (unknown version)"


def hello_message() -> dict[str, Any]:
    """The first message every client receives."""
    return {"type": "hello", "protocol": PROTOCOL_VERSION, "server": _server_version()}


class Socket(Protocol):
    """What the hub needs of a client connection (Starlette's WebSocket fits)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


def _clean_floats(obj: Any) -> Any:
    """NaN/inf become null: browsers' JSON.parse rejects them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


def _dumps(message: dict[str, Any]) -> str:
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_clean_floats(message), separators=(",", ":"), allow_nan=False)


def parse_client_message(text: str | bytes) -> dict[str, Any] | None:
    """A client's ``dismiss``/``flag`` message as ``{"type", "cue_id", "t"}``, or None
    (logged) when it is not valid JSON or not one of those messages."""
    try:
        msg = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        log.info("hub: ignored a client message that is not JSON: %.80r", text)
        return None
    if not isinstance(msg, dict):
        log.info("hub: ignored a client message that is not a JSON object: %.80r", text)
        return None
    kind = msg.get("type")
    if kind not in FEEDBACK_TYPES:
        log.info("hub: ignored a client message of unknown type %.40r", kind)
        return None
    cue_id, t = msg.get("cue_id"), msg.get("t")
    if not isinstance(cue_id, str) or not cue_id or len(cue_id) > 200:
        log.info("hub: ignored a %s message without a valid cue_id", kind)
        return None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        log.info("hub: ignored a %s message without a valid t", kind)
        return None
    return {"type": kind, "cue_id": cue_id, "t": float(t)}


@dataclass(eq=False)
class _Client:
    id: int
    socket: Socket
    peer: str
    queue: asyncio.Queue[str]
    sender: asyncio.Task[None] | None = None
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None


class Hub:
    """Fan-out of pipeline messages to websocket clients; see the module docstring.

    ``publish`` runs on the hub's event loop, ``publish_threadsafe`` from any thread and
    never blocks. Both keep publish order. Messages published before the hub is attached
    to a loop are kept and delivered (and the call start remembered) once it is.
    """

    def __init__(
        self,
        *,
        queue_size: int = 256,
        on_feedback: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self._batch = max(1, queue_size // 4)
        self.on_feedback = on_feedback
        self._inbox: collections.deque[dict[str, Any]] = collections.deque()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closing = False
        self._clients: dict[int, _Client] = {}
        self._closing_tasks: set[asyncio.Task[None]] = set()
        self._count_changed = threading.Condition()
        self._ids = itertools.count(1)
        self._dropped = 0
        self._published = 0
        self._hello = _dumps(hello_message())
        self._call_start: str | None = None
        self._status: str | None = None

    # -- properties ---------------------------------------------------------------------

    @property
    def clients(self) -> int:
        """Number of connected clients."""
        return len(self._clients)

    @property
    def dropped(self) -> int:
        """Number of clients dropped for being too slow."""
        return self._dropped

    @property
    def published(self) -> int:
        """Number of messages fanned out so far."""
        return self._published

    def wait_clients(self, n: int, timeout: float | None = None) -> bool:
        """Block (from any thread but the hub's loop) until at least ``n`` clients are
        connected; False on timeout."""
        with self._count_changed:
            return self._count_changed.wait_for(lambda: len(self._clients) >= n, timeout)

    def _count_change(self) -> None:
        with self._count_changed:
            self._count_changed.notify_all()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the hub is attached to (None before :meth:`attach`)."""
        return self._loop

    # -- lifecycle (called by the server's lifespan) -------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind the hub to ``loop`` (default: the running loop) and start its pump."""
        loop = loop or asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop and not self._loop.is_closed():
            raise RuntimeError("the hub is already attached to another event loop")
        self._loop = loop
        self._closing = False
        self._wake = asyncio.Event()
        self._pump = loop.create_task(self._run_pump(), name="coach-hub-pump")
        self._wake_pending = True
        loop.call_soon(self._wake.set)  # deliver anything published before attach

    async def aclose(self) -> None:
        """Close every client (1001) and stop the pump; on the hub's loop."""
        self._closing = True
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except asyncio.CancelledError:
                pass
            self._pump = None
        clients = list(self._clients.values())
        for client in clients:
            self._unregister(client)
        for task in list(self._closing_tasks):  # dropped clients still not closed
            task.cancel()
        await asyncio.gather(
            *(self._close(c, CLOSE_GOING_AWAY, "server shutting down") for c in clients),
            *self._closing_tasks,
            return_exceptions=True,
        )
        self._loop = None

    # -- publishing ---------------------------------------------------------------------

    def publish(self, message: dict[str, Any]) -> None:
        """Queue ``message`` for every client. Call on the hub's loop (or before attach)."""
        self._inbox.append(message)
        if self._loop is not None and self._wake is not None:
            self._wake.set()

    def publish_threadsafe(self, message: dict[str, Any]) -> None:
        """Queue ``message`` for every client from any thread. Never blocks: the message
        goes onto an unbounded in-memory inbox and the loop is woken at most once per
        batch (``loop.call_soon_threadsafe``)."""
        if self._closing:
            return
        self._inbox.append(message)
        loop = self._loop
        if loop is None or self._wake_pending:
            return
        self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._on_wake)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            self._wake_pending = False

    def _on_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run_pump(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Cleared before draining: a message appended after this line wakes us again.
            self._wake_pending = False
            while self._inbox:
                # A batch at a time, then let the senders run: a burst never piles up
                # more than a batch in a healthy client's queue, so only a client that
                # cannot take data (its socket backed up) fills its queue.
                for _ in range(min(len(self._inbox), self._batch)):
                    self._fan_out(self._inbox.popleft())
                await asyncio.sleep(0)

    def _fan_out(self, message: dict[str, Any]) -> None:
        try:
            text = _dumps(message)
        except (TypeError, ValueError) as e:
            log.warning("hub: dropped a message that is not JSON-able (%s): %.120r", e, message)
            return
        kind = message.get("type")
        if kind == "call":
            state = message.get("state")
            if state == "start":
                self._call_start = text
            elif state == "end":
                self._call_start = None
        elif kind == "status":
            self._status = text
        self._published += 1
        for client in list(self._clients.values()):
            self._offer(client, text)

    def _offer(self, client: _Client, text: str) -> None:
        try:
            client.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        if client.id not in self._clients:
            return
        self._dropped += 1
        log.warning(
            "hub: dropped client %d (%s): %d messages unsent, too slow",
            client.id, client.peer, client.queue.qsize(),
        )
        self._unregister(client)
        assert self._loop is not None
        task = self._loop.create_task(self._close(client, CLOSE_TOO_SLOW, "too slow"))
        self._closing_tasks.add(task)
        task.add_done_callback(self._closing_tasks.discard)

    # -- clients ------------------------------------------------------------------------

    def _register(self, socket: Socket, peer: str, greeting: Sequence[dict[str, Any]] = ()
                  ) -> _Client:
        client = _Client(next(self._ids), socket, peer,
                         asyncio.Queue(self.queue_size + len(greeting)))
        # Hello, the current call start and the latest status (or the caller's greeting)
        # go first, atomically with registration: no live message can come between them.
        for text in (self._hello, self._call_start, self._status,
                     *(_dumps(m) for m in greeting)):
            if text is not None:
                client.queue.put_nowait(text)
        self._clients[client.id] = client
        self._count_change()
        client.sender = asyncio.get_running_loop().create_task(
            self._send_loop(client), name=f"coach-hub-send-{client.id}"
        )
        log.info("hub: client %d connected (%s), %d connected", client.id, peer, self.clients)
        return client

    def _unregister(self, client: _Client) -> None:
        if self._clients.pop(client.id, None) is not None:
            self._count_change()
        if client.sender is not None and client.sender is not asyncio.current_task():
            client.sender.cancel()

    async def _send_loop(self, client: _Client) -> None:
        try:
            while True:
                text = await client.queue.get()
                await client.socket.send_text(text)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the peer went away mid-send
            log.info("hub: client %d send failed: %s", client.id, type(e).__name__)
            self._unregister(client)
            client.gone.set()

    async def _close(self, client: _Client, code: int, reason: str) -> None:
        """Send a close frame. For a stuck client it waits behind the unread backlog;
        after ``CLOSE_TIMEOUT_S`` the connection is left to the server to tear down."""
        client.close_code = code
        try:
            await asyncio.wait_for(client.socket.close(code, reason), CLOSE_TIMEOUT_S)
        except Exception as e:
            log.info("hub: client %d close(%d): %s", client.id, code, type(e).__name__)
        finally:
            client.gone.set()

    async def serve(self, socket: Socket, receive: Callable[[], Any], peer: str = "?", *,
                    greeting: Sequence[dict[str, Any]] = ()) -> None:
        """Run one accepted client until it leaves or is dropped.

        ``receive`` is an async callable returning the next text message, or None when
        the client has disconnected (the server module adapts Starlette to this).
        ``greeting``: messages this client gets right after hello (a snapshot of the
        state the live messages then update), before any live message.
        """
        if self._loop is None:
            self.attach()
        client = self._register(socket, peer, greeting)
        reader = asyncio.get_running_loop().create_task(self._read_loop(client, receive))
        try:
            await client.gone.wait()
        finally:
            reader.cancel()
            self._unregister(client)
            log.info("hub: client %d left, %d connected", client.id, self.clients)

    async def _read_loop(self, client: _Client, receive: Callable[[], Any]) -> None:
        try:
            while True:
                text = await receive()
                if text is None:
                    break
                self._handle_client_message(client, text)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a broken connection ends the client, never the hub
            log.info("hub: client %d receive ended: %s", client.id, type(e).__name__)
        client.gone.set()

    def _handle_client_message(self, client: _Client, text: str | bytes) -> None:
        msg = parse_client_message(text)
        if msg is None:
            return
        if self.on_feedback is not None:
            record = {**msg, "client_id": client.id, "received_at": time.time()}
            try:
                self.on_feedback(record)
            except Exception:
                log.exception("hub: on_feedback failed for %r", record)
        self.publish({"type": "feedback", "action": msg["type"], "cue_id": msg["cue_id"],
                      "t": msg["t"]})
