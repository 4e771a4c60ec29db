"""The operators' view of a relay (``GET /ops``): drones, their missing events, orders and their counts by status,
dead letters, and (from the relay) each aircraft's newest state. On a listener of its own, never the customers'
(nginx exposes only the customers' paths, and an operator's address is not a customer's), behind its own
credentials, with failed logins limited per client: a password guesser gets 429 long before a guess could
matter."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from flightctl.ground.aircraft_states import order_counts
from flightctl.ground.registry import Registry
from flightctl.ground.tracking import FailedLookups, PrivateHeaders, not_found


def ops_app(
    registry: Registry,
    *,
    credentials: tuple[str, str],
    failed_logins: FailedLookups | None = None,
    extra: Callable[[], dict[str, Any]] = dict,
) -> Starlette:
    limiter = failed_logins or FailedLookups(limit=10)

    async def ops(request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not limiter.admit(client):
            return PlainTextResponse("Too Many Requests", status_code=429, headers={"Retry-After": "60"})
        allowed = False
        try:
            allowed = _authorised(request, credentials)
        finally:
            limiter.done(client, failed=not allowed)
        if not allowed:
            return PlainTextResponse(
                "Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Basic realm="flightctl ops"'}
            )
        orders = await registry.overview()
        body = {
            "drones": await registry.drones(),
            "order_counts": order_counts(orders),
            "orders": orders,
            "recent_dead_letters": await registry.dead_letters(),
            **extra(),
        }
        return JSONResponse(body)

    async def missing(_request: Request, _exc: Exception) -> Response:
        return not_found()

    return Starlette(
        routes=[Route("/ops", ops)],
        middleware=[Middleware(PrivateHeaders)],
        exception_handlers={404: missing, 405: missing},
    )


def _authorised(request: Request, credentials: tuple[str, str]) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user.encode(), credentials[0].encode()) & hmac.compare_digest(
        password.encode(), credentials[1].encode()
    )
