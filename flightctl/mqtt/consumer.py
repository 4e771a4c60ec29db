"""Reading a drone's messages, on either side: the envelope back from bytes, bounded, and events de-duplicated by
sequence.

Whoever holds an account that may publish on a topic can put anything there: a stolen drone's credentials, a
bug in dispatch. ``read_envelope`` is the one way in, and it refuses, with ``NotAnEnvelope`` and a reason, before
anything is built from the message: a payload over its size limit (checked before parsing), one that is not
UTF-8, JSON nested deeper than any message of ours (Python's parser recurses: a 2 KB document a thousand levels
deep raises ``RecursionError``, which is caught; a shallower one is measured before anything walks it), NaN and
Infinity, and an envelope outside its bounds (a sequence number beyond 64 bits, a time outside 2020-2100).

The outbox sends every event at least once and in order; a message whose PUBACK was lost goes out again with
the same sequence number. A consumer that keeps a ``SequenceTracker`` per drone therefore sees each event
exactly once, and can tell a gap (an event that never came) from a duplicate.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from flightctl.config import validation_problems
from flightctl.mqtt.contract import Envelope

# The broker's own limit (configs/mosquitto/flightctl.conf, message_size_limit): nothing larger is ours.
MAX_MESSAGE_BYTES = 64 * 1024
# An order's drop-zone polygon is the deepest thing we send: envelope, data, order, zone, ring, point (6).
MAX_JSON_DEPTH = 16


class NotAnEnvelope(ValueError):
    """A message on a drone's topic that is not one of ours."""


def json_depth(document: object) -> int:
    """How deeply a parsed JSON value nests arrays and objects (1 for ``{}``), walked without recursion."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def read_json_object(payload: object, *, max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """A JSON object from a message, or ``NotAnEnvelope`` saying why not; bounded before it is parsed."""
    if isinstance(payload, str):
        payload = payload.encode()
    if not isinstance(payload, bytes | bytearray):
        raise NotAnEnvelope(f"a {type(payload).__name__} payload")
    if len(payload) > max_bytes:
        raise NotAnEnvelope(f"payload of {len(payload)} bytes is over the limit of {max_bytes} bytes")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotAnEnvelope(f"payload is not UTF-8 (byte {exc.start})") from None
    try:
        document: Any = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise NotAnEnvelope(f"payload nests deeper than the limit of {MAX_JSON_DEPTH}") from None
    except ValueError as exc:
        raise NotAnEnvelope(f"payload is not JSON: {exc}") from None
    if (depth := json_depth(document)) > MAX_JSON_DEPTH:
        raise NotAnEnvelope(f"payload nests {depth} levels deep, over the limit of {MAX_JSON_DEPTH}")
    if not isinstance(document, dict):
        raise NotAnEnvelope(f"payload is a JSON {type(document).__name__}, not an object (the envelope)")
    return document


def read_envelope(payload: object, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Envelope:
    return envelope_of(read_json_object(payload, max_bytes=max_bytes))


def envelope_of(document: dict[str, Any]) -> Envelope:
    try:
        return Envelope.model_validate(document)
    except ValidationError as exc:
        raise NotAnEnvelope(validation_problems(exc)) from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


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
