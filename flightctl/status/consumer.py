"""Reading a drone's messages on the ground: the envelope back from bytes, and events de-duplicated by sequence.

The outbox sends every event at least once and in order; a message whose PUBACK was lost goes out again with
the same sequence number. A consumer that keeps a ``SequenceTracker`` per drone therefore sees each event
exactly once, and can tell a gap (an event that never came) from a duplicate.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from flightctl.config import validation_problems
from flightctl.status.contract import Envelope


class NotAnEnvelope(ValueError):
    """A message on a drone's topic that is not one of ours."""


def read_envelope(payload: object) -> Envelope:
    if not isinstance(payload, bytes | bytearray | str):
        raise NotAnEnvelope(f"a {type(payload).__name__} payload")
    try:
        return Envelope.model_validate(json.loads(payload))
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            raise NotAnEnvelope(validation_problems(exc)) from None
        raise NotAnEnvelope(f"not JSON: {exc}") from None


class SequenceTracker:
    """One drone's event sequence: each number accepted once; what is missing below the highest seen."""

    def __init__(self, start_after: int | None = None) -> None:
        self._next = None if start_after is None else start_after + 1  # the lowest number not yet seen
        self._above: set[int] = set()  # seen, above a gap

    def accept(self, seq: int) -> bool:
        """True the first time ``seq`` is seen; False for a duplicate (or one older than where we started)."""
        if self._next is None:
            self._next = seq  # joining a stream: start at the first event we get
        if seq < self._next or seq in self._above:
            return False
        self._above.add(seq)
        while self._next in self._above:
            self._above.remove(self._next)
            self._next += 1
        return True

    @property
    def highest(self) -> int | None:
        if self._next is None:
            return None
        return max(self._above) if self._above else self._next - 1

    def missing(self) -> list[int]:
        """Numbers below the highest seen that never came (yet)."""
        if self._next is None or not self._above:
            return []
        return [n for n in range(self._next, max(self._above)) if n not in self._above]
