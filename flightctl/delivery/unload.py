"""The ground crew's word that a leg's load is off the aircraft: journaled, and required before it flies back."""

from __future__ import annotations

from flightctl.delivery.events import DeliveryState
from flightctl.delivery.history import History
from flightctl.delivery.journal import Journal
from flightctl.delivery.machine import Trigger
from flightctl.delivery.recorder import DeliveryRecorder
from flightctl.errors import ConfigError


async def confirm_unload(journal: Journal, order_id: str, *, by: str) -> None:
    """Journal UNLOADED for ``order_id``, confirmed by ``by`` (a name, a crew id); ``ConfigError`` saying what
    the order is instead, for one that has not ARRIVED (or was already unloaded), and nothing is written."""
    history = History.of(await journal.events(order_id))
    if history.state is not DeliveryState.ARRIVED:
        now = "unknown to this journal" if history.state is None else f"{history.state.value}"
        raise ConfigError(
            f"order {order_id} is {now}: only a leg that ARRIVED at its destination is unloaded, and only once"
        )
    record = DeliveryRecorder(journal, order_id, history, lambda: None)
    await record.enter(Trigger.UNLOAD_CONFIRMED, by=by)
