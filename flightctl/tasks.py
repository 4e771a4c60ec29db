"""Ending a background task without losing a stop meant for its owner."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any]) -> BaseException | None:
    """Cancel ``task`` and wait until it has ended; the exception it ended with, if not its cancellation.

    The usual ``task.cancel(); with suppress(CancelledError): await task`` also swallows a cancellation of the
    caller that arrives during that await (a SIGTERM, a deadline): the caller then carries on as if it had never
    been told to stop. Here such a cancellation goes through."""
    task.cancel()
    await asyncio.wait({task})
    return None if task.cancelled() else task.exception()
