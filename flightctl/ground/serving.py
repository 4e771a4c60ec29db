"""Serving an ASGI app from inside our own event loop (uvicorn as a library): the relay runs its HTTP side
beside its MQTT side in one asyncio program."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp

from flightctl.errors import ConfigError


class ServeError(ConfigError):
    """The HTTP server did not start (the port is taken, say)."""


SHUTDOWN_GRACE_S = 3  # seconds (uvicorn takes a whole number)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the program that embeds the server owns SIGINT and SIGTERM


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound now: a port in use is one clear error before anything else starts (uvicorn,
    binding by itself, calls sys.exit from inside its task instead)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@contextlib.asynccontextmanager
async def serving(
    app: ASGIApp, host: str, port: int, *, start_timeout_s: float = 10, sock: socket.socket | None = None
) -> AsyncIterator[uvicorn.Server]:
    """Serve ``app`` on ``sock`` (bound already by ``listening_socket``), or on a socket bound now."""
    sock = sock or listening_socket(host, port)
    server = _Server(
        # Keep-alive longer than a proxy's or a browser's idle reuse, so a reused connection is never closed under it.
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=False,
            timeout_keep_alive=75,
            # An event stream (a tracking page left open) never ends by itself: past this, uvicorn cancels what is
            # still open, so a stop stays inside the service's stop deadline.
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"http {host}:{port}")
    try:
        async with asyncio.timeout(start_timeout_s):
            while not server.started:
                if task.done():
                    raise ServeError(f"the HTTP server on {host}:{port} did not start (is the port taken?)")
                await asyncio.sleep(0.02)
    except TimeoutError:
        task.cancel()
        raise ServeError(f"the HTTP server on {host}:{port} did not start within {start_timeout_s:g} s") from None
    try:
        yield server
    finally:
        server.should_exit = True
        # Waited for, never awaited: awaiting it under a suppress(CancelledError) would swallow a cancellation
        # of our own (a stop, a deadline) that arrived meanwhile. It ends within SHUTDOWN_GRACE_S.
        try:
            await asyncio.wait({task})
        finally:
            task.cancel()
        if not task.cancelled():
            task.exception()  # retrieved: asyncio would log an error of a stop nobody looked at
