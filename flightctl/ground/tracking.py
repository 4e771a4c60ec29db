"""The customer's tracking page: ``GET /t/{token}`` (the page) and ``GET /t/{token}/events`` (live updates, server-
sent events), and nothing else: the operators' view (``ground.ops``) is served on a listener of its own.

What keeps one customer's order from another's:
- a page is found only by its token, and shows only that token's order (there is no other way in: no order
  ids, no customer ids, no listing in any URL);
- a wrong, expired or malformed token gets exactly the same 404, after the same work (the look-up hashes
  whatever came; nothing is refused early on its shape), as an unknown one;
- failed look-ups are counted per client, and a client over the limit gets 429 until it slows down;
- every response says ``Cache-Control: no-store, private`` (and ``Vary: *``), so no shared cache in front
  (a reverse proxy's ``proxy_cache``, a CDN) may keep a personal page and hand it to the next visitor;
- ``Referrer-Policy: no-referrer``: the token in the URL never leaks to another site through a link.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flightctl.ground.customer_status import CustomerStatus
from flightctl.ground.registry import Registry, ShownStatus

MAX_TOKEN_CHARS = 128  # longer is cut before hashing (the work stays the same); a real token is 32
FINAL = {CustomerStatus.DELIVERED, CustomerStatus.PROBLEM}

PRIVATE_HEADERS = {
    "Cache-Control": "no-store, private",
    "Pragma": "no-cache",
    "Vary": "*",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
    "frame-ancestors 'none'",
}

SCRIPT = """// Live updates for this page's order only: its own event stream, nothing else.
const list = document.getElementById("statuses");
const source = new EventSource(window.location.pathname.replace(/\\/$/, "") + "/events");
source.addEventListener("status", (event) => {
  const s = JSON.parse(event.data);
  if (document.querySelector(`[data-seq="${s.seq}"]`)) return;
  const item = document.createElement("li");
  item.dataset.seq = s.seq;
  item.className = "status";
  item.textContent = `${s.status}: ${s.message} (${s.at_utc}${s.eta_utc ? ", expected by " + s.eta_utc : ""})`;
  list.appendChild(item);
  document.getElementById("current").textContent = s.status;
});
"""


@dataclass
class FailedLookups:
    """Failed token look-ups per client in a sliding window; bounded memory (the oldest clients are forgotten).

    Look-ups still under way count against the limit too, so a burst of concurrent guesses cannot all start
    before the first of them has failed: one address gets at most ``limit`` look-ups in flight (a customer's
    page makes two, a page and its event stream)."""

    limit: int = 20
    window_s: float = 60.0
    max_clients: int = 100_000

    def __post_init__(self) -> None:
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._pending: dict[str, int] = {}  # look-ups under way: a burst of concurrent guesses counts in full

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(client, []) if now - t < self.window_s]
        if times:
            self._failures[client] = times
            self._failures.move_to_end(client)
        else:
            self._failures.pop(client, None)
        return times

    def admit(self, client: str) -> bool:
        """Whether a look-up from ``client`` may run now; if so it counts until ``done``."""
        pending = self._pending.get(client, 0)
        if len(self._recent(client, time.monotonic())) + pending >= self.limit:
            return False
        self._pending[client] = pending + 1
        return True

    def done(self, client: str, *, failed: bool) -> None:
        pending = self._pending.pop(client, 1) - 1
        if pending > 0:
            self._pending[client] = pending
        if failed:
            self._failed(client)

    def _failed(self, client: str) -> None:
        now = time.monotonic()
        self._failures[client] = [*self._recent(client, now), now]
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


def _status_json(status: ShownStatus) -> str:
    return json.dumps(
        {
            "order_id": status.order_id,
            "status": status.status.value,
            "at_utc": status.at_utc,
            "message": status.message,
            "eta_utc": status.eta_utc,
            "seq": status.seq,
        }
    )


def _page(order_id: str, statuses: list[ShownStatus]) -> str:
    current = statuses[-1].status.value if statuses else "RECEIVED"
    items = "\n".join(
        f'<li class="status" data-seq="{s.seq}">{html.escape(s.status.value)}: {html.escape(s.message)} '
        f"({html.escape(s.at_utc)}{', expected by ' + html.escape(s.eta_utc) if s.eta_utc else ''})</li>"
        for s in statuses
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>Your parcel</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}#current{{font-size:2em}}</style>
</head><body><h1>Your parcel: order {html.escape(order_id)}</h1>
<p>Now: <strong id="current">{html.escape(current)}</strong></p>
<ol id="statuses">
{items}
</ol><script src="/track.js"></script></body></html>
"""


_RAW_PRIVATE_HEADERS = [(name.lower().encode(), value.encode()) for name, value in PRIVATE_HEADERS.items()]


class PrivateHeaders:
    """Every response, whatever route or error made it, goes out with the private headers (a plain ASGI
    middleware: it touches only the response start, so event streams pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in _RAW_PRIVATE_HEADERS}
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message = {**message, "headers": kept + _RAW_PRIVATE_HEADERS}
            await send(message)

        await self.app(scope, receive, with_headers)


def not_found() -> Response:
    return PlainTextResponse("Not Found", status_code=404)


def tracking_app(
    registry: Registry,
    *,
    failed_lookups: FailedLookups | None = None,
    poll_s: float = 1.0,
    stream_max_s: float = 3600.0,
    trusted_proxies: frozenset[str] = frozenset(),
) -> Starlette:
    limiter = failed_lookups or FailedLookups()

    def client_of(request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded and peer in trusted_proxies:  # only a proxy we run may say who the client is
            return forwarded.split(",")[-1].strip()
        return peer

    async def lookup(request: Request) -> str | Response:
        client = client_of(request)
        if not limiter.admit(client):
            return PlainTextResponse("Too Many Requests", status_code=429, headers={"Retry-After": "60"})
        order_id = None
        try:
            token = str(request.path_params.get("token", ""))[:MAX_TOKEN_CHARS]
            order_id = await registry.order_for_token(token)
        finally:
            limiter.done(client, failed=order_id is None)
        if order_id is None:
            return not_found()
        return order_id

    async def page(request: Request) -> Response:
        found = await lookup(request)
        if isinstance(found, Response):
            return found
        return HTMLResponse(_page(found, await registry.statuses(found)))

    async def events(request: Request) -> Response:
        found = await lookup(request)
        if isinstance(found, Response):
            return found
        order_id = found

        async def stream() -> AsyncIterator[dict[str, str]]:
            last_seq = -1
            deadline = time.monotonic() + stream_max_s
            while time.monotonic() < deadline:
                statuses = await registry.statuses(order_id)
                for status in statuses:
                    if status.seq > last_seq:
                        last_seq = status.seq
                        yield {"event": "status", "data": _status_json(status)}
                if statuses and statuses[-1].status in FINAL:
                    return
                await asyncio.sleep(poll_s)

        return EventSourceResponse(stream(), ping=15, headers=PRIVATE_HEADERS)

    async def script(_request: Request) -> Response:
        return Response(SCRIPT, media_type="text/javascript")

    async def missing(_request: Request, _exc: Exception) -> Response:
        return not_found()

    return Starlette(
        routes=[
            Route("/t/{token}", page),
            Route("/t/{token}/events", events),
            Route("/track.js", script),
        ],
        middleware=[Middleware(PrivateHeaders)],
        exception_handlers={404: missing, 405: missing},
    )
