"""Messages that could not be handled: each one counted, the first of a burst kept and logged, none of them fatal.

A consumer (the daemon, a relay, dispatch) handles each message inside its own failure boundary. Whatever goes
wrong with one message, a payload that is not ours or a bug it sets off, ends here, and the consumer then
acknowledges the message (so the broker does not hand it over again on every reconnect) and serves the next.

Someone holding an account can send thousands of them a second, so only a budget of them is logged and kept
(``keep``: the relay's registry); past it they are counted, and the next one logged says how many went by.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flightctl.mqtt.answer_budget import AnswerBudget

log = logging.getLogger(__name__)

EXCERPT_BYTES = 120  # enough to recognise a message; a dead letter is never a copy of what an attacker sent


@dataclass(frozen=True)
class DeadLetter:
    at_utc: datetime
    topic: str
    sender: str | None  # the account the broker let publish there (a drone's topic: that drone), when known
    reason: str
    excerpt: str  # the start of the payload, printable

    def as_record(self) -> dict[str, Any]:
        return {
            "at_utc": self.at_utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "topic": self.topic,
            "sender": self.sender,
            "reason": self.reason,
            "excerpt": self.excerpt,
        }


def excerpt(payload: object) -> str:
    raw = payload if isinstance(payload, bytes | bytearray) else str(payload).encode(errors="replace")
    head = bytes(raw[:EXCERPT_BYTES]).decode("utf-8", errors="backslashreplace")
    return head.encode("unicode_escape").decode("ascii") + ("..." if len(raw) > EXCERPT_BYTES else "")


class DeadLetterBox:
    def __init__(
        self,
        consumer: str,
        *,
        budget: AnswerBudget | None = None,
        keep: Callable[[DeadLetter], Awaitable[None]] | None = None,
        recent: int = 20,
    ) -> None:
        self.consumer = consumer
        self.budget = budget or AnswerBudget()
        self.keep = keep
        self.total = 0
        self.recent: deque[DeadLetter] = deque(maxlen=recent)

    async def add(
        self, topic: str, payload: object, reason: str, *, sender: str | None, error: BaseException | None = None
    ) -> DeadLetter:
        """Count one; log and keep it if the budget allows. ``error``: what it set off, if that was not a refusal
        of the message itself (logged with its traceback: a bug to fix)."""
        letter = DeadLetter(datetime.now(UTC), topic, sender, reason[:500], excerpt(payload))
        self.total += 1
        self.recent.append(letter)
        verdict = self.budget.take(time.monotonic())
        if not verdict.answer:
            if verdict.first_unanswered:
                log.warning(
                    "%s: more dead letters than %g a minute; counting the rest, not logging them",
                    self.consumer, self.budget.per_minute,
                )  # fmt: skip
            return letter
        more = f" ({verdict.unanswered_before} more went by unlogged)" if verdict.unanswered_before else ""
        log.warning(
            "%s: dead letter on %s from %s: %s%s", self.consumer, topic, sender or "?", letter.reason, more,
            exc_info=error,
        )  # fmt: skip
        if self.keep is not None:
            await self.keep(letter)
        return letter

    def report(self) -> dict[str, Any]:
        last = self.recent[-1] if self.recent else None
        return {"dead_letters": self.total, "last_dead_letter": None if last is None else last.as_record()}
