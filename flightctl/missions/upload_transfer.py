"""One mission-protocol upload as a state machine over what the vehicle says: no I/O, no clock.

The I/O loop (``vehicle.mission``) feeds it the vehicle's requests and ACKs, and tells it when a reply
timeout passed; it answers with what to do: send the count, send an item, ask the vehicle how many items
it holds, finish, or stop with the reason. ArduPilot's side (libraries/GCS_MAVLink/MissionItemProtocol.cpp)
shapes the rules:

- an item it did not ask for gets INVALID_SEQUENCE, only a warning (our duplicate crossed its request);
- an item sent when it is not receiving gets ERROR, so after the last item we never resend: a lost final
  ACK is settled by asking for the count (whose DENIED answer, while it still receives, is expected);
- any other NACK ends its transfer (``Ended``): the caller decides whether a new transfer is worth it;
- it asks again for an item only once a second of its own time (``wp_recv_timeout_ms``), and abandons its
  side after 8 s without an item. On a lossy radio that cadence, not the link, sets the pace; so after a
  reply timeout of our own (the link's round trip) we resend the newest item asked for *and* the one after
  it: if our item was lost the vehicle takes both in turn, if its request was lost it takes the second, and
  the other earns a harmless INVALID_SEQUENCE.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightctl.dialect import mavlink

_ACCEPTED = mavlink.MAV_MISSION_ACCEPTED


@dataclass(frozen=True)
class UploadLimits:
    vehicle_silent_s: float = 10.0  # give up once nothing at all (no heartbeat) came from the vehicle this long
    deadline_s: float = 120.0  # give up once the whole upload has taken this long
    abandoned_after_s: float = 9.0  # nothing for this transfer this long mid-way: the vehicle abandoned its side


@dataclass(frozen=True)
class SendCount:
    count: int


@dataclass(frozen=True)
class SendItem:
    seq: int
    first_request: bool  # the furthest the vehicle has asked so far (progress), not a re-request


@dataclass(frozen=True)
class QueryCount:
    """Ask how many items the vehicle holds; answer with ``on_count``."""


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Ended:
    """A NACK ended the vehicle's side of the transfer."""

    result: int
    seq: int | None
    stage: str


@dataclass(frozen=True)
class GiveUp:
    """The vehicle stopped answering."""

    detail: str
    seq: int | None


UploadAction = SendCount | SendItem | QueryCount | Done | Ended | GiveUp


class UploadTransfer:
    """Upload ``count`` items: ``start()``, then ``on_request`` / ``on_ack`` / ``on_silence`` / ``on_count``."""

    def __init__(self, count: int, limits: UploadLimits | None = None) -> None:
        self.count = count
        self.limits = limits or UploadLimits()
        self.highest = -1  # highest seq the vehicle asked for
        self.last_sent = count == 0  # the final item went out: from then on only the ACK is awaited
        self._count_sends = 0
        self._settling_queries = 0  # our count queries whose DENIED answer is expected

    def start(self) -> list[UploadAction]:
        self._count_sends = 1
        return [SendCount(self.count)]

    def on_request(self, seq: int) -> list[UploadAction]:
        if not 0 <= seq < self.count:
            return []  # a request for an item that does not exist: not ours to answer
        first = seq > self.highest
        self.highest = max(self.highest, seq)
        self.last_sent = self.last_sent or seq == self.count - 1
        return [SendItem(seq, first)]

    def on_ack(self, result: int) -> list[UploadAction]:
        if result == _ACCEPTED:
            return [Done()] if self.last_sent else []  # early: left over from another transfer
        if result == mavlink.MAV_MISSION_INVALID_SEQUENCE:
            return []
        if result == mavlink.MAV_MISSION_DENIED and self._settling_queries > 0:
            self._settling_queries -= 1
            return []
        if self.last_sent and result == mavlink.MAV_MISSION_ERROR:
            return []  # an item resent after the last one crossed its end: settle by count
        started = self.highest >= 0
        return [Ended(result, self.highest if started else None, "upload" if started else "upload start")]

    def on_silence(self, *, vehicle_silent_s: float, elapsed_s: float, quiet_s: float) -> list[UploadAction]:
        """A reply timeout passed with nothing for this transfer. ``vehicle_silent_s``: since anything at all
        (a heartbeat) came from the vehicle; ``elapsed_s``: since the upload began, restarts included;
        ``quiet_s``: since the vehicle last said anything about this transfer.

        While the vehicle still talks, a lost request or item is only a reason to go on: give up on silence
        or on the deadline, never after a fixed number of tries at one step."""
        seq = max(self.highest, 0) if self.highest >= 0 else None
        if vehicle_silent_s >= self.limits.vehicle_silent_s:
            return [GiveUp(f"vehicle silent for {vehicle_silent_s:.0f} s (no heartbeat either)", seq)]
        if elapsed_s >= self.limits.deadline_s:
            return [GiveUp(f"not finished within {self.limits.deadline_s:g} s on this link", seq)]
        if self.last_sent and self.count > 0:
            return [QueryCount()]
        if self.highest < 0:
            self._count_sends += 1
            return [SendCount(self.count)]
        if quiet_s >= self.limits.abandoned_after_s:
            # ArduPilot abandons its side after 8 s without an item: only a fresh transfer can go on.
            return [Ended(mavlink.MAV_MISSION_OPERATION_CANCELLED, self.highest, "upload")]
        resend: list[UploadAction] = [SendItem(self.highest, first_request=False)]
        ahead = self.highest + 1
        if ahead < self.count:
            # Sent unasked: if the vehicle takes it and it is the last, only the ACK (or the count) is left.
            self.last_sent = self.last_sent or ahead == self.count - 1
            resend.append(SendItem(ahead, first_request=False))
        return resend

    def on_count(self, reported: int | None) -> list[UploadAction]:
        """The vehicle's answer to ``QueryCount`` (None: no answer)."""
        if reported == self.count:
            return [Done()]
        self._settling_queries += 1
        return []
