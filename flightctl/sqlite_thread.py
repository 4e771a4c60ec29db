"""SQLite on a thread of its own: its calls block, so the event loop only awaits them, one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class SqliteThread:
    """One worker thread per database connection (sqlite3 connections are not shared across threads at once)."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def shutdown(self, *, wait: bool) -> None:
        self._executor.shutdown(wait=wait)
