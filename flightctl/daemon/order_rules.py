"""The daemon's rules for orders and commands, as data: what it answers, never how the answer is written. Pure.

The worker asks these and then journals and acts; each rule is unit-tested on its own (tests/unit/test_order_rules.py):
- an order id seen before is never flown again (``answer_to_repeat``);
- one delivery at a time (``busy_reason``);
- an abort is taken before the release and refused after it (``abort_answer``);
- a step that fails on the ground ends the order, one that fails in the air is supervised again
  (``fails_the_order``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from flightctl.delivery.events import ON_THE_GROUND, DeliveryState


class Repeat(enum.Enum):
    ACCEPTED_AGAIN = "accepted again"  # the same order, already accepted: acknowledged, never flown twice
    REJECTED = "rejected"  # a different order under a used id, one already judged, or one being checked now


@dataclass(frozen=True)
class RepeatAnswer:
    kind: Repeat
    reasons: list[str]  # for a rejection
    note: str | None = None  # for an acknowledgement


def answer_to_repeat(
    order_id: str,
    ordered: dict[str, Any],
    *,
    known_body: dict[str, Any],
    known_answer: str | None,
    known_reasons: list[str],
    known_request_id: str,
    known_received_utc: str,
) -> RepeatAnswer:
    """How to answer an order whose id the journal already holds (``known_*``: what it holds of it).
    ``ordered``: what the repeat orders, the drop or the leg (``OrderRequest.what``), without the weather."""
    if {key: known_body[key] for key in ("order", "leg") if key in known_body} != ordered:
        reason = f"duplicate: order id {order_id} was already used for a different order (at {known_received_utc})"
        return RepeatAnswer(Repeat.REJECTED, [reason])
    if known_answer == "accepted":
        note = f"already accepted (request {known_request_id}); it is never flown twice"
        return RepeatAnswer(Repeat.ACCEPTED_AGAIN, [], note)
    if known_answer == "rejected":
        again = f"duplicate: order {order_id} was already judged; send it again under a new order id"
        return RepeatAnswer(Repeat.REJECTED, [*known_reasons, again])
    checking = f"duplicate: order {order_id} is being checked now; the answer to request {known_request_id} follows"
    return RepeatAnswer(Repeat.REJECTED, [checking])


def busy_reason(current_order_id: str, state: DeliveryState | None) -> str:
    return f"busy: flying order {current_order_id} ({state or 'starting'})"


@dataclass(frozen=True)
class AbortAnswer:
    ok: bool
    result: str
    pass_on: bool  # hand the abort to the delivery (its sequencer, or the job before one runs)


NO_DELIVERY = AbortAnswer(False, "no delivery in progress", pass_on=False)


def abort_answer(*, has_delivery: bool, state: DeliveryState | None, released: bool) -> AbortAnswer:
    """An operator's abort: before take-off nothing more is done and the order fails; in flight the vehicle comes
    home with the parcel; after the release it is refused (the vehicle is on its way home already)."""
    if not has_delivery:
        return NO_DELIVERY
    if released:
        return AbortAnswer(False, "the parcel is already delivered; the vehicle is on its way home", pass_on=False)
    if state is None or state in ON_THE_GROUND:
        return AbortAnswer(True, "aborting: nothing more is done on the ground", pass_on=True)
    return AbortAnswer(True, "aborting: the vehicle comes home with the parcel along the mission's return leg", True)


def fails_the_order(state: DeliveryState | None, *, vehicle_armed: bool) -> bool:
    """A step the sequencer could not carry out ends the order (FAILED) only on the ground, disarmed; in the air
    the delivery is supervised again once the link is there."""
    return state is None or (state in ON_THE_GROUND and not vehicle_armed)
