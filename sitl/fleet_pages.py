"""Each fleet order's customer page, followed as the customer's browser follows it: the page's event stream
(``/t/<token>/events``) from the relay's tracking server, through relay restarts, until the order's final
status. What it records is when each status first showed, by the (aircraft, seq) of the event that made it:
the page side of the fleet report's latency, and the evidence that pages kept updating through a fault.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

import httpx
from httpx_sse import SSEError, aconnect_sse

log = logging.getLogger(__name__)

RETRY_S = 0.5  # a page stream dropped (the relay killed, restarting) is opened again after this
READ_TIMEOUT_S = 40.0  # the stream pings every 15 s: this long without a byte is a dead connection


@dataclass
class FollowedOrder:
    order_id: str
    drone: str
    shown: list[tuple[str, float]] = field(default_factory=list)  # (status, wall time it first showed)
    final: bool = False
    reconnects: int = 0


class PageFollower:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.orders: dict[str, FollowedOrder] = {}
        self.shown: dict[tuple[str, int], float] = {}  # (aircraft, seq) of a status's event: when it first showed
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10.0, read=READ_TIMEOUT_S))

    def follow(self, order_id: str, drone: str, token: str) -> None:
        self.orders[order_id] = FollowedOrder(order_id, drone)
        task = asyncio.create_task(self._follow(self.orders[order_id], token), name=f"page of {order_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def following(self) -> int:
        """Pages being followed now."""
        return len(self._tasks)

    def unfollow(self, order_id: str) -> None:
        """Stop following an order whose page went (never sent: its registration undone). Its 404s would count as
        failed guesses from this one address, which every followed page shares."""
        for task in self._tasks:
            if task.get_name() == f"page of {order_id}":
                task.cancel()
        self.orders.pop(order_id, None)

    def shown_between(self, start: float, end: float) -> int:
        """Statuses that first showed on some page within wall times [start, end]."""
        return sum(1 for at in self.shown.values() if start <= at <= end)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    async def _follow(self, order: FollowedOrder, token: str) -> None:
        while not order.final:
            try:
                async with aconnect_sse(self._client, "GET", f"/t/{token}/events") as source:
                    source.response.raise_for_status()
                    async for sse in source.aiter_sse():
                        if sse.event == "status":
                            self._take(order, sse.data)
                        if order.final:
                            return
            except (httpx.HTTPError, SSEError) as exc:
                log.debug("page of %s: %s; again in %.1f s", order.order_id, exc, RETRY_S)
            order.reconnects += 1
            await asyncio.sleep(RETRY_S)

    def _take(self, order: FollowedOrder, data: str) -> None:
        """One update as the page's script reads it; one it cannot read is logged and skipped, as a browser would."""
        now = time.monotonic()
        try:
            update = json.loads(data)
            seq, status, final = int(update["seq"]), str(update["status"]), bool(update.get("final"))
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:  # NaN, 1e999, a list, nesting
            log.warning("page of %s: an update it cannot read (%s)", order.order_id, exc)
            return
        key = (order.drone, seq)
        if key not in self.shown:  # a stream opened again replays what showed before: the first time counts
            self.shown[key] = now
            order.shown.append((status, now))
        order.final = order.final or final
