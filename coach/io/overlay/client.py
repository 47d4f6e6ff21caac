"""The overlay's websocket client: a background thread that keeps a connection to the
service open and hands what it receives to the Tk thread through a queue."""

from __future__ import annotations

import json
import queue
import threading
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["BACKOFF_S", "CLOSE_POLICY", "Client", "is_loopback", "with_token"]

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)  # reconnect delays; the last one repeats
CLOSE_POLICY = 1008  # the service refuses a missing/wrong token or a foreign origin


def with_token(url: str, token: str | None) -> str:
    """``url`` with ``?token=`` set (replacing one already there)."""
    if not token:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    query.append(("token", token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


class Client(threading.Thread):
    """Keeps a websocket open to the service, reconnecting with backoff.

    Puts ``("open", None)`` (when the first message arrives, so a socket the service
    accepts only to refuse never counts as connected), ``("message", dict)`` and
    ``("closed", {"reason", "refused", "retry_s"})`` on ``inbox``; sends every dict put on
    ``outbox``, keeping it until a connection is up.
    """

    def __init__(self, url: str, inbox: queue.Queue, outbox: queue.Queue) -> None:
        super().__init__(name="coach-overlay-ws", daemon=True)
        self.url = url
        self.inbox = inbox
        self.outbox = outbox
        self.stopping = threading.Event()
        self._pending: list[dict[str, Any]] = []

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect

        attempt = 0
        while not self.stopping.is_set():
            reason, refused = "unreachable", False
            try:
                kwargs: dict[str, Any] = {"open_timeout": 3, "close_timeout": 1}
                if is_loopback(self.url):
                    kwargs["proxy"] = None  # never send a local connection through a proxy
                with connect(self.url, **kwargs) as ws:
                    if self._serve(ws):
                        attempt = 0
                    reason = "stopped"
            except InvalidStatus as exc:
                code = exc.response.status_code
                refused = code in (401, 403)
                reason = f"HTTP {code}"
            except ConnectionClosed as exc:
                close = exc.rcvd
                refused = close is not None and close.code == CLOSE_POLICY
                reason = (close.reason or f"closed ({close.code})") if close else "connection lost"
            except (OSError, TimeoutError) as exc:
                reason = type(exc).__name__
            except Exception as exc:  # noqa: BLE001 - a bad server must not kill the thread
                reason = f"{type(exc).__name__}: {exc}"
            if self.stopping.is_set():
                break
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            attempt += 1
            self.inbox.put(("closed", {"reason": reason, "refused": refused, "retry_s": delay}))
            self.stopping.wait(delay)

    def _serve(self, ws: Any) -> bool:
        """Relay messages until stopped (returns) or closed (raises ConnectionClosed);
        returns whether any message came."""
        opened = False
        while not self.stopping.is_set():
            self._flush(ws)
            try:
                raw = ws.recv(timeout=0.1)
            except TimeoutError:
                continue
            if isinstance(raw, bytes):
                continue
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if not opened:
                opened = True
                self.inbox.put(("open", None))
            self.inbox.put(("message", msg))
        return opened

    def _flush(self, ws: Any) -> None:
        while True:
            try:
                self._pending.append(self.outbox.get_nowait())
            except queue.Empty:
                break
        while self._pending:
            ws.send(json.dumps(self._pending[0]))  # raises ConnectionClosed: kept for later
            self._pending.pop(0)
