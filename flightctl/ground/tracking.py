"""The customer's tracking page: ``GET /t/{token}`` (the page), ``GET /t/{token}/events`` (live updates, server-
sent events) and the page's own script and style sheet (``/track.js``, ``/track.css``), and nothing else: the
operators' view (``ground.ops``) is served on a listener of its own. What the page says is ``tracking_page``'s,
in the words of a catalogue (``tracking_words``).

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
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flightctl.ground.customer_status import CustomerStatus
from flightctl.ground.registry import Registry, TrackedOrder
from flightctl.ground.status_snapshots import StatusSnapshots
from flightctl.ground.tracking_page import page_html, status_event, unknown_html
from flightctl.ground.tracking_words import Words, load_words

DEFAULT_ZONE = "Europe/London"  # the Scottish and Scilly sites
MAX_TOKEN_CHARS = 128  # longer is cut before hashing (the work stays the same); a real token is 32
FINAL = {CustomerStatus.DELIVERED, CustomerStatus.PROBLEM}

PRIVATE_HEADERS = {
    "Cache-Control": "no-store, private",
    "Pragma": "no-cache",
    "Vary": "*",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'",
}

STATIC = Path(__file__).with_name("static")  # the page's script and style sheet (package data)


@dataclass
class FailedLookups:
    """Failed token look-ups per client in a sliding window; bounded memory (the oldest clients are forgotten).

    Look-ups still under way count against the limit too, so a burst of concurrent guesses cannot all start
    before the first of them has failed: one address gets at most ``limit`` look-ups in flight (a customer's
    page makes two, a page and its event stream)."""

    limit: int = 20
    window_s: float = 60.0
    max_clients: int = 100_000
    clock: Callable[[], float] = time.monotonic  # seconds; a test's clock shows the window sliding

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
        if len(self._recent(client, self.clock())) + pending >= self.limit:
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
        now = self.clock()
        self._failures[client] = [*self._recent(client, now), now]
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


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
    """The operators' view's answer for what is not there (the customers' side answers with a friendly page)."""
    return PlainTextResponse("Not Found", status_code=404)


def tracking_app(
    registry: Registry,
    *,
    failed_lookups: FailedLookups | None = None,
    poll_s: float = 1.0,
    stream_max_s: float = 3600.0,
    trusted_proxies: frozenset[str] = frozenset(),
    words: Words | None = None,
    zone: ZoneInfo | None = None,
    snapshots: StatusSnapshots | None = None,
) -> Starlette:
    """The customers' pages, in ``words`` (the shipped British English catalogue unless told) and each order's
    site's time zone, as dispatch registered it; ``zone`` for an order registered without one (Europe/London
    unless told). With ``snapshots`` (kept current by the registry's change notices), a view of an order whose
    statuses have not changed reads no statuses from the database, and, where they keep tokens, no token."""
    limiter = failed_lookups or FailedLookups()
    words = words or load_words()
    zone = zone or ZoneInfo(DEFAULT_ZONE)
    unknown = unknown_html(words)
    statuses_of = snapshots.statuses if snapshots is not None else registry.statuses
    tracked = snapshots.tracked_order if snapshots is not None and snapshots.keeps_tokens else registry.tracked_order
    assets = {name: (STATIC / name).read_text() for name in ("track.js", "track.css")}

    def client_of(request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded and peer in trusted_proxies:  # only a proxy we run may say who the client is
            return forwarded.split(",")[-1].strip()
        return peer

    async def lookup(request: Request) -> TrackedOrder | Response:
        client = client_of(request)
        if not limiter.admit(client):
            return PlainTextResponse("Too Many Requests", status_code=429, headers={"Retry-After": "60"})
        found, answered = None, False
        try:
            token = str(request.path_params.get("token", ""))[:MAX_TOKEN_CHARS]
            found = await tracked(token)
            answered = True
        finally:
            # Only a look-up the registry answered "no such token" is a failed guess: a view during a registry
            # outage is the customer's bad luck, not theirs, and must not lock them out once it is back.
            limiter.done(client, failed=answered and found is None)
        if found is None:
            return HTMLResponse(unknown, status_code=404)  # unknown, expired, revoked: one page, naming none
        return found

    async def page(request: Request) -> Response:
        found = await lookup(request)
        if isinstance(found, Response):
            return found
        now, shown_in = datetime.now(UTC), found.zone or zone  # the order's site's zone, else the relay's
        return HTMLResponse(page_html(found.order_id, await statuses_of(found.order_id), words, shown_in, now))

    async def events(request: Request) -> Response:
        found = await lookup(request)
        if isinstance(found, Response):
            return found
        order_id, shown_in = found.order_id, found.zone or zone

        async def stream() -> AsyncIterator[dict[str, str]]:
            last_seq = -1
            deadline = time.monotonic() + stream_max_s
            while time.monotonic() < deadline:
                statuses = await statuses_of(order_id)
                for n, status in enumerate(statuses):
                    if status.seq > last_seq:
                        last_seq = status.seq
                        update = status_event(statuses[: n + 1], words, shown_in, datetime.now(UTC))
                        yield {"event": "status", "data": json.dumps(update)}
                if statuses and statuses[-1].status in FINAL:
                    return
                await asyncio.sleep(poll_s)

        return EventSourceResponse(stream(), ping=15, headers=PRIVATE_HEADERS)

    async def script(_request: Request) -> Response:
        return Response(assets["track.js"], media_type="text/javascript")

    async def style(_request: Request) -> Response:
        return Response(assets["track.css"], media_type="text/css")

    async def missing(_request: Request, _exc: Exception) -> Response:
        # Any path that is not a page gets the unknown link's page too: a token mangled into another path
        # (a slash, a dot-dot) must not be told apart from a wrong one.
        return HTMLResponse(unknown, status_code=404)

    return Starlette(
        routes=[
            Route("/t/{token}", page),
            Route("/t/{token}/events", events),
            Route("/track.js", script),
            Route("/track.css", style),
        ],
        middleware=[Middleware(PrivateHeaders)],
        exception_handlers={404: missing, 405: missing},
    )
