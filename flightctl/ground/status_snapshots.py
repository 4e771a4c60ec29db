"""Each order's statuses as the tracking page last read them, kept until the registry says they changed, so a
page view does not query the database.

A snapshot is only kept while the registry's change notices are known to arrive (``live``): for SQLite, the
relay's own writes (one relay per SQLite registry); for PostgreSQL, ``LISTEN`` on a connection of its own, which
hears every relay's writes. When that connection is lost, every snapshot is dropped and pages read the database
again until it is back: a missed notice can never leave a customer looking at an old status. A read that a
change overtook is not kept (a change counter, checked after the read). The snapshot is keyed by the order the
token led to, so it cannot show one customer another's order any more than the database can.

Given ``lookup`` (the registry's token look-up, on a registry whose notices also cover every order forgotten:
PostgreSQL), the order a token leads to is kept too, by the token's hash, so a repeat view reads nothing at all.
Only a token that was found is kept (a new registration must be found at once; a wrong guess is never kept,
so guessing fills nothing), its expiry is checked on every view, and it goes when its order is forgotten or
the notices may have been missed, like a snapshot.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from flightctl.ground.registry import ShownStatus, TrackedOrder, token_hash
from flightctl.ground.registry_store import utc_text

MAX_ORDERS = 50_000  # snapshots kept, the least recently viewed dropped first


class StatusSnapshots:
    def __init__(
        self,
        read: Callable[[str], Awaitable[list[ShownStatus]]],
        *,
        lookup: Callable[[str], Awaitable[TrackedOrder | None]] | None = None,
        max_orders: int = MAX_ORDERS,
    ) -> None:
        self._read = read
        self._lookup = lookup
        self._max_orders = max_orders
        self._kept: OrderedDict[str, list[ShownStatus]] = OrderedDict()
        self._orders: OrderedDict[str, TrackedOrder] = OrderedDict()  # by token hash
        self._tokens_of: dict[str, set[str]] = {}  # order id -> the hashes kept for it
        self._changes = 0
        self.live = False
        self.hits = 0
        self.reads = 0
        self.lookups = 0  # token look-ups that reached the registry

    @property
    def keeps_tokens(self) -> bool:
        return self._lookup is not None

    async def tracked_order(self, token: str) -> TrackedOrder | None:
        """The order ``token`` is for (None: no such live token), from the registry only when not kept."""
        if self._lookup is None:
            raise RuntimeError("these snapshots were given no token look-up")
        key = token_hash(token)
        if self.live and (kept := self._orders.get(key)) is not None:
            if kept.expires_utc > utc_text(datetime.now(UTC)):
                self._orders.move_to_end(key)
                return kept
            self._drop_tokens({key})  # expired: the same answer the registry gives, without asking it
            return None
        changes_before, was_live = self._changes, self.live
        found = await self._lookup(token)
        self.lookups += 1
        if found is not None and was_live and self.live and self._changes == changes_before:
            self._orders[key] = found
            self._tokens_of.setdefault(found.order_id, set()).add(key)
            while len(self._orders) > self._max_orders:
                self._drop_tokens({next(iter(self._orders))})
        return found

    def _drop_tokens(self, keys: Iterable[str]) -> None:
        for key in keys:
            order = self._orders.pop(key, None)
            if order is not None and (held := self._tokens_of.get(order.order_id)) is not None:
                held.discard(key)
                if not held:
                    del self._tokens_of[order.order_id]

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
        """The registry took new statuses for these orders, or forgot them: their snapshots and tokens go."""
        self._changes += 1
        for order_id in order_ids:
            self._kept.pop(order_id, None)
            self._drop_tokens(list(self._tokens_of.get(order_id, ())))

    def set_live(self, live: bool) -> None:
        """Change notices arrive (True) or may have been missed (False: every snapshot goes)."""
        self._changes += 1
        if not live:
            self._kept.clear()
            self._orders.clear()
            self._tokens_of.clear()
        self.live = live
