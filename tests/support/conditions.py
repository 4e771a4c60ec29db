"""Waiting on a condition in tests, within a deadline: never a sleep followed by an assertion."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(condition: Callable[[], bool], *, timeout_s: float = 2.0) -> None:
    """Return as soon as ``condition()`` holds; ``TimeoutError`` after ``timeout_s``.

    For state that no event announces (a registry of waiters, an OS socket): it is polled, every loop pass
    first and then every 10 ms, so a test moves on the moment the condition is true.
    """
    async with asyncio.timeout(timeout_s):
        passes = 0
        while not condition():
            passes += 1
            await asyncio.sleep(0 if passes < 20 else 0.01)


async def eventually_true(condition: Callable[[], Awaitable[bool]], *, timeout_s: float, every_s: float = 0.2) -> None:
    """Like ``eventually``, for a condition that must itself be awaited (a database query, an HTTP call)."""
    async with asyncio.timeout(timeout_s):
        while not await condition():  # noqa: ASYNC110 - nothing announces it: polled, within the deadline
            await asyncio.sleep(every_s)
