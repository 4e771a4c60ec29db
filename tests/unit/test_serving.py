"""The HTTP server inside our services stops when told to, even with event streams open: a customer's
tracking page left open must not hold the relay up at SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from flightctl.ground.serving import SHUTDOWN_GRACE_S, serving
from sitl.mosquitto import free_port


async def endless(_request: Request) -> EventSourceResponse:
    async def events() -> AsyncIterator[dict[str, str]]:
        n = 0
        while True:
            n += 1
            yield {"data": str(n)}
            await asyncio.sleep(0.05)

    return EventSourceResponse(events())


async def test_an_open_event_stream_does_not_hold_the_server_up() -> None:
    port = free_port()
    app = Starlette(routes=[Route("/stream", endless)])
    streaming = asyncio.Event()

    async def watch() -> None:
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("GET", f"http://127.0.0.1:{port}/stream") as r,
        ):
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    streaming.set()

    # The deadline covers the stream's start and the stop: without a bounded shutdown, the stop waits for the
    # stream to end, which it never does.
    async with asyncio.timeout(10 + SHUTDOWN_GRACE_S + 5), serving(app, "127.0.0.1", port):
        watcher = asyncio.create_task(watch())
        await streaming.wait()
    watcher.cancel()
    await asyncio.wait({watcher})
