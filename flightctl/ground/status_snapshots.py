"""Each order's statuses as the tracking page last read them, kept until the registry says they changed, so a
page view does not query the database.

A snapshot is only kept while the registry's change notices are known to arrive (``live``): for SQLite, the
relay's own writes (one relay per SQLite registry); for PostgreSQL, ``LISTEN`` on a connection of its own, which
hears every relay's writes. When that connection is lost, every snapshot is dropped and pages read the database
again until it is back: a missed notice can never leave a customer looking at an old status. A read that a
change overtook is not kept (a change counter, checked after the read). The snapshot is keyed by the order the
token led to, so it cannot show one customer another's order any more than the database can.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from flightctl.ground.registry import ShownStatus

MAX_ORDERS = 50_000  # snapshots kept, the least recently viewed dropped first


class StatusSnapshots:
    def __init__(self, read: Callable[[str], Awaitable[list[ShownStatus]]], *, max_orders: int = MAX_ORDERS) -> None:
        self._read = read
        self._max_orders = max_orders
        self._kept: OrderedDict[str, list[ShownStatus]] = OrderedDict()
        self._changes = 0
        self.live = False
        self.hits = 0
        self.reads = 0

    async def statuses(self, order_id: str) -> list[ShownStatus]:
        if self.live and (kept := self._kept.get(order_id)) is not None:
            self._kept.move_to_end(order_id)
            self.hits += 1
            return kept
        changes_before, was_live = self._changes, self.live
        statuses = await self._read(order_id)
        self.reads += 1
        if was_live and self.live and self._changes == changes_before:  # nothing changed while it was read
            self._kept[order_id] = statuses
            while len(self._kept) > self._max_orders:
                self._kept.popitem(last=False)
        return statuses

    def changed(self, order_ids: Iterable[str]) -> None:
        """The registry took new statuses for these orders: their snapshots go."""
        self._changes += 1
        for order_id in order_ids:
            self._kept.pop(order_id, None)

    def set_live(self, live: bool) -> None:
        """Change notices arrive (True) or may have been missed (False: every snapshot goes)."""
        self._changes += 1
        if not live:
            self._kept.clear()
        self.live = live
