"""How many unwanted messages the drone answers: a flood of them must not fill the journal or the uplink. Pure.

Every answer is a journal row and a message over a link that may be a slow satellite one. A dispatch system
stuck in a retry loop, or anyone holding its credentials, could send thousands of malformed orders, orders
while busy, repeats or status requests a second. Those answers come out of a token bucket: ``burst`` at once,
refilled at ``per_minute``. What is not answered is counted, logged, and the next answer given says how many
went before it unanswered. Answers that matter are never budgeted: an order accepted, the outcome of an order
that passed intake, and the result of an abort.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Verdict:
    answer: bool
    unanswered_before: int = 0  # messages left unanswered since the last answer given (when ``answer``)
    first_unanswered: bool = False  # the first of a run left unanswered (log it; the rest are counted)


@dataclass
class AnswerBudget:
    per_minute: float = 60.0
    burst: int = 60
    unanswered_total: int = 0
    _tokens: float = field(init=False)
    _last_s: float = field(default=-math.inf, init=False)
    _unanswered: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not (self.per_minute > 0 and math.isfinite(self.per_minute)) or self.burst < 1:
            raise ValueError(f"an answer budget needs a positive rate and burst, not {self.per_minute}/{self.burst}")
        self._tokens = float(self.burst)

    def take(self, now_s: float) -> Verdict:
        """May one more unwanted message be answered at ``now_s`` (monotonic seconds)?"""
        if math.isfinite(self._last_s) and now_s > self._last_s:
            self._tokens = min(float(self.burst), self._tokens + (now_s - self._last_s) * self.per_minute / 60.0)
        self._last_s = max(self._last_s, now_s)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            before, self._unanswered = self._unanswered, 0
            return Verdict(answer=True, unanswered_before=before)
        self._unanswered += 1
        self.unanswered_total += 1
        return Verdict(answer=False, first_unanswered=self._unanswered == 1)
