"""Inboxes: the queues a MavConnection routes messages to, one per waiter or subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from flightctl.dialect import MAVLinkMessage
from flightctl.errors import LinkClosed, VehicleTimeout

if TYPE_CHECKING:
    from flightctl.link.connection import MavConnection

Predicate = Callable[[MAVLinkMessage], bool]


class Inbox:
    """Messages routed to one waiter or subscriber. Bounded: on overflow the oldest is dropped and counted."""

    def __init__(
        self,
        connection: MavConnection,
        types: frozenset[str],
        predicate: Predicate | None,
        what: str,
        maxsize: int,
        from_vehicle: bool,
    ) -> None:
        self.types = types
        self.what = what
        self.dropped = 0
        self._connection = connection
        self._predicate = predicate
        self._from_vehicle = from_vehicle
        self._queue: asyncio.Queue[MAVLinkMessage | LinkClosed] = asyncio.Queue()
        self._maxsize = maxsize

    def _offer(self, message: MAVLinkMessage) -> bool:
        if self._from_vehicle and not self._connection.is_from_vehicle(message):
            return False
        if self._predicate is not None and not self._predicate(message):
            return False
        if self._queue.qsize() >= self._maxsize:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(message)
        return True

    def _close(self, error: LinkClosed) -> None:
        self._queue.put_nowait(error)

    def pending(self) -> int:
        return self._queue.qsize()

    def get_nowait(self) -> MAVLinkMessage | None:
        try:
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if isinstance(item, LinkClosed):
            self._queue.put_nowait(item)
            raise item
        return item

    async def next(self, timeout_s: float) -> MAVLinkMessage:
        """The next matching message; ``VehicleTimeout`` naming what was awaited if none comes in time."""
        try:
            async with asyncio.timeout(timeout_s):
                item = await self._queue.get()
        except TimeoutError:
            raise VehicleTimeout(f"{self.what}: nothing received within {timeout_s:g} s") from None
        if isinstance(item, LinkClosed):
            self._queue.put_nowait(item)
            raise item
        return item

    def __aiter__(self) -> Inbox:
        return self

    async def __anext__(self) -> MAVLinkMessage:
        item = await self._queue.get()
        if isinstance(item, LinkClosed):
            raise StopAsyncIteration
        return item

    def __repr__(self) -> str:
        return f"<Inbox {self.what} {sorted(self.types)} pending={self.pending()}>"


class InboxScope:
    """Registers an inbox on entry and always unregisters it on exit (sync ``with``: no await needed)."""

    def __init__(self, connection: MavConnection, inbox: Inbox) -> None:
        self._connection = connection
        self._inbox = inbox

    def __enter__(self) -> Inbox:
        self._connection._register(self._inbox)
        return self._inbox

    def __exit__(self, *_exc: object) -> None:
        self._connection._unregister(self._inbox)
