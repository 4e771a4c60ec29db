"""One mission-protocol upload as a state machine over what the vehicle says: no I/O, no clock.

The I/O loop (``vehicle.mission``) feeds it the vehicle's requests and ACKs, and tells it when a reply
timeout passed; it answers with what to do: send the count, send an item, ask the vehicle how many items
it holds, finish, or stop with the reason. ArduPilot's side (libraries/GCS_MAVLink/MissionItemProtocol.cpp)
shapes the rules:

- an item it did not ask for gets INVALID_SEQUENCE, only a warning (our duplicate crossed its request);
- an item sent when it is not receiving gets ERROR, so after the last item we never resend: a lost final
  ACK is settled by asking for the count (whose DENIED answer, while it still receives, is expected);
- any other NACK ends its transfer (``Ended``): the caller decides whether a new transfer is worth it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightctl.dialect import mavlink

_ACCEPTED = mavlink.MAV_MISSION_ACCEPTED


@dataclass(frozen=True)
class UploadLimits:
    count_attempts: int = 6  # MISSION_COUNT sends before giving up when nothing is asked for
    silent_limit: int = 6  # consecutive reply timeouts tolerated in the middle of a transfer
    reply_timeout_s: float = 1.5  # what one reply timeout is (the caller waits it; named in messages)


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
        self._silent = 0
        self._settling_queries = 0  # our count queries whose DENIED answer is expected

    def start(self) -> list[UploadAction]:
        self._count_sends = 1
        return [SendCount(self.count)]

    def on_request(self, seq: int) -> list[UploadAction]:
        self._silent = 0
        if not 0 <= seq < self.count:
            return []  # a request for an item that does not exist: not ours to answer
        first = seq > self.highest
        self.highest = max(self.highest, seq)
        self.last_sent = self.last_sent or seq == self.count - 1
        return [SendItem(seq, first)]

    def on_ack(self, result: int) -> list[UploadAction]:
        self._silent = 0
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

    def on_silence(self) -> list[UploadAction]:
        """A reply timeout passed with nothing from the vehicle for this transfer."""
        self._silent += 1
        if self.last_sent and self.count > 0:
            return [QueryCount()]
        if self.highest < 0:
            if self._count_sends >= self.limits.count_attempts:
                return [GiveUp(f"no request after {self._count_sends} MISSION_COUNT messages", None)]
            self._count_sends += 1
            return [SendCount(self.count)]
        return self._still_patient()

    def on_count(self, reported: int | None) -> list[UploadAction]:
        """The vehicle's answer to ``QueryCount`` (None: no answer)."""
        if reported == self.count:
            return [Done()]
        self._settling_queries += 1
        return self._still_patient()

    def _still_patient(self) -> list[UploadAction]:
        if self._silent >= self.limits.silent_limit:
            detail = f"vehicle silent for {self._silent} x {self.limits.reply_timeout_s:g} s"
            return [GiveUp(detail, max(self.highest, 0))]
        return []
