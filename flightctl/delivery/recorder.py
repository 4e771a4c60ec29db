"""Journal first, then act: every event of one order goes to disk and into its ``History`` in one step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flightctl.delivery.events import Command, DeliveryState, Observation
from flightctl.delivery.history import History
from flightctl.delivery.journal import Journal, JournalEvent
from flightctl.delivery.machine import Trigger, next_state

log = logging.getLogger(__name__)


class DeliveryRecorder:
    def __init__(
        self,
        journal: Journal,
        order_id: str,
        history: History,
        vehicle_ms: Callable[[], int | None],
        on_transition: Callable[[DeliveryState], None] = lambda _state: None,
    ) -> None:
        self.journal = journal
        self.order_id = order_id
        self.history = history
        self._vehicle_ms = vehicle_ms
        self._on_transition = on_transition

    @property
    def state(self) -> DeliveryState:
        return self.history.state or DeliveryState.PREFLIGHT

    def _applied(self, event: JournalEvent) -> JournalEvent:
        self.history.apply(event)
        return event

    async def enter(self, trigger: Trigger, **detail: Any) -> DeliveryState:
        """Journal the state ``trigger`` leads to from the current one (the machine's table), and apply it; an
        illegal transition raises ``IllegalTransition`` and journals nothing."""
        state = next_state(self.history.state, trigger)
        log.info("%s: %s (%s) %s", self.order_id, state.value, trigger.value, detail or "")
        self._applied(await self.journal.record_state(self.order_id, state, detail, vehicle_ms=self._vehicle_ms()))
        self._on_transition(state)
        return state

    async def command(self, command: Command, **detail: Any) -> None:
        """Journal that ``command`` is about to be sent; the caller then sends it."""
        self._applied(
            await self.journal.record_command(self.order_id, self.state, command, detail, vehicle_ms=self._vehicle_ms())
        )

    async def note(self, observation: Observation, **detail: Any) -> None:
        self._applied(
            await self.journal.record_observation(
                self.order_id, self.state, observation, detail, vehicle_ms=self._vehicle_ms()
            )
        )

    async def check(self, name: str, *, ok: bool, line: str, stage: str, **detail: Any) -> None:
        detail |= {"ok": ok, "line": line, "stage": stage}
        self._applied(
            await self.journal.record_check(self.order_id, self.state, name, detail, vehicle_ms=self._vehicle_ms())
        )
