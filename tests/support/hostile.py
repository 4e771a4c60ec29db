"""Hostile payloads for a message consumer, made from one valid message: every one of them is refused by
construction (so a test knows how many dead letters to expect without asking the code under test), and the
same seed makes the same payloads.

What they are: the poison messages found in the attack on the relay and the daemon (deep nesting, sequence
numbers beyond 64 bits, NaN and huge floats, dates in year 9999, ``detail`` that is not an object), plus
mutations of the valid message: truncated, invalid UTF-8, over the size limit, a bounded field replaced by an
out-of-range or wrongly typed value, the envelope replaced by another JSON type.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

# Values refused wherever they stand in for a field of the given kind.
NOT_A_COUNT: list[Any] = [2**64, 2**63, -(2**63) - 1, 10**400, -1, 0, 1e300, 3.5, "1", True, [], {}, "", "\ud800"]
NOT_A_TIME: list[Any] = [
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-11-30T10:00:00", "not a time", "", 1e300, None, [], {},
]  # fmt: skip
NOT_AN_ID: list[Any] = ["", "x" * 5000, "a/b", "#", "+", "%u", "\u0000", 7, 1e300, [], {}, True, "\ud800"]
NOT_AN_OBJECT: list[Any] = [[], "x", 5, 1e300, True, [[[[]]]]]
CONSTANTS = ["NaN", "Infinity", "-Infinity"]


def deep(levels: int, opener: str = "[", closer: str = "]") -> str:
    return opener * levels + closer * levels


def _replace(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


class HostilePayloads:
    """``valid``: one message the consumer takes; ``bounded``: paths to its fields that have a bound or a type,
    each with values that put it out of bounds (any one of them makes the message one to refuse); ``max_bytes``:
    the consumer's size limit."""

    def __init__(
        self, valid: dict[str, Any], bounded: dict[tuple[str, ...], list[Any]], *, max_bytes: int, seed: int
    ) -> None:
        self.valid = valid
        self.bounded = bounded
        self.max_bytes = max_bytes
        self.rng = random.Random(seed)

    def __iter__(self) -> Iterator[bytes]:
        makers: list[Callable[[], bytes]] = [
            self._out_of_range, self._out_of_range, self._out_of_range, self._constant, self._truncated,
            self._not_utf8, self._deeply_nested, self._nested_inside, self._not_an_object, self._oversized,
        ]  # fmt: skip
        while True:
            yield self.rng.choice(makers)()

    def take(self, count: int) -> list[bytes]:
        payloads = []
        for payload in self:
            payloads.append(payload)
            if len(payloads) == count:
                return payloads
        raise AssertionError("unreachable")

    def _text(self, document: dict[str, Any]) -> bytes:
        return json.dumps(document).encode()

    def _path(self) -> tuple[str, ...]:
        return self.rng.choice(sorted(self.bounded))

    def _out_of_range(self) -> bytes:
        path = self._path()
        value = self.rng.choice(self.bounded[path])
        if value == "\ud800":  # a lone surrogate: legal as a JSON escape, not as a string of ours
            return self._text(_replace(self.valid, path, "@@")).replace(b'"@@"', b'"\\ud800"')
        return self._text(_replace(self.valid, path, value))

    def _constant(self) -> bytes:
        path = self._path()
        return self._text(_replace(self.valid, path, "@@")).replace(b'"@@"', self.rng.choice(CONSTANTS).encode())

    def _truncated(self) -> bytes:
        text = self._text(self.valid)
        return text[: self.rng.randrange(0, len(text) - 1)]  # no proper prefix of an object is JSON

    def _not_utf8(self) -> bytes:
        text = bytearray(self._text(self.valid))
        text[self.rng.randrange(len(text))] = self.rng.choice([0xFF, 0xFE, 0xC0, 0x80])
        return bytes(text)

    def _deeply_nested(self) -> bytes:
        levels = self.rng.choice([100, 1000, 5000])
        if self.rng.random() < 0.5:
            return deep(levels).encode()
        nested = deep(levels, '{"a":', "}").replace('{"a":}', "{}")
        return self._text(_replace(self.valid, ("data",), "@@")).replace(b'"@@"', nested.encode())

    def _nested_inside(self) -> bytes:
        path = self._path()
        return self._text(_replace(self.valid, path, "@@")).replace(b'"@@"', deep(self.rng.randrange(17, 60)).encode())

    def _not_an_object(self) -> bytes:
        return self.rng.choice([b"[]", b"null", b"42", b'"envelope"', b"true", b"[{}]", b""])

    def _oversized(self) -> bytes:
        padding = "x" * (self.max_bytes + self.rng.randrange(1, 1000))
        return self._text(self.valid | {"padding": padding})
