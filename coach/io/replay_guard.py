"""The replay app's access guard and the headers and pages it shares with the team layer.

:class:`_Guard` applies the access rule of :mod:`coach.io.replay` (loopback without a
token, or the token everywhere but the static assets) and answers a refusal as JSON under
``/api`` or as a small HTML page; ``PAGE_HEADERS`` (no caching, no referrer, a strict
Content-Security-Policy) go on every page of the replay and team apps.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlsplit

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from coach.io.server import is_loopback

__all__ = ["CSP", "DOCS_CSP", "PAGE_HEADERS"]


CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
"""The pages' policy: our own origin only (wavesurfer styles its shadow DOM inline)."""
DOCS_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # page URLs may carry the token
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
}
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _host_name(host_header: str) -> str:
    """The host of a Host header (``[::1]:8765`` -> ``::1``)."""
    h = host_header.strip()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class _Guard:
    """ASGI middleware applying the access rule of :mod:`coach.io.replay`'s docstring."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"][len(scope.get("root_path", "")):] or "/"
        if not path.startswith("/static/"):
            refusal = self._refusal(scope)
            if refusal is not None:
                status, message = refusal
                await _refuse(path, status, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if self.token:
            given = _given_token(scope, headers)
            if given is None:
                return 401, ("unauthorized: this coach service needs its access token "
                             "(add ?token=... to the address, or send Authorization: Bearer ...)")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 403, "forbidden: wrong access token"
            return None
        host = _host_name(headers.get("host", ""))
        if not is_loopback(host):
            return 403, (f"forbidden: this coach service answers only to localhost without "
                         f"a token, not to {host or 'a request without a Host'!r}")
        origin = headers.get("origin")
        if scope["method"] in _UNSAFE_METHODS and origin is not None:
            if origin == "null" or not is_loopback(urlsplit(origin).hostname or ""):
                return 403, f"forbidden: changes from the web origin {origin!r} are refused"
        return None


def _given_token(scope: Scope, headers: dict[str, str]) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token") and query["token"][0]:
        return query["token"][0]
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _refuse(path: str, status: int, message: str) -> Response:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="coach"'
    if path.startswith("/api/") or path == "/openapi.json":
        return JSONResponse({"detail": message}, status, headers=headers)
    return HTMLResponse(_message_page("Access refused", message), status,
                        headers={**headers, **PAGE_HEADERS})


def _message_page(title: str, message: str, back: str = "/") -> str:
    from html import escape

    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>coach — '
            f'{escape(title)}</title><link rel="stylesheet" href="/static/replay/replay.css">'
            f'<link rel="icon" href="/static/replay/favicon.svg" type="image/svg+xml">'
            f'</head><body class="message"><main><h1>{escape(title)}</h1>'
            f'<p>{escape(message)}</p><p><a href="{escape(back)}">All calls</a></p></main>'
            f'</body></html>')
