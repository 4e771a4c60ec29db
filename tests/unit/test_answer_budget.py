"""The daemon's budget for answering unwanted messages: a burst, a steady rate, and a count of the rest."""

from __future__ import annotations

import pytest

from flightctl.mqtt.answer_budget import AnswerBudget


def test_a_burst_is_answered_then_the_rest_is_counted() -> None:
    budget = AnswerBudget(per_minute=60, burst=5)
    verdicts = [budget.take(100.0) for _ in range(8)]
    assert [v.answer for v in verdicts] == [True] * 5 + [False] * 3
    assert [v.first_unanswered for v in verdicts[5:]] == [True, False, False]
    assert budget.unanswered_total == 3


def test_the_budget_refills_at_its_rate_and_the_next_answer_says_how_many_went_unanswered() -> None:
    budget = AnswerBudget(per_minute=60, burst=2)
    assert budget.take(0.0).answer
    assert budget.take(0.0).answer
    assert not budget.take(0.5).answer  # half a token back: not yet
    assert not budget.take(0.9).answer
    after = budget.take(1.0)
    assert after.answer
    assert after.unanswered_before == 2
    assert budget.take(1.0).answer is False
    assert budget.take(2.0).unanswered_before == 1


def test_a_long_quiet_spell_refills_only_up_to_the_burst() -> None:
    budget = AnswerBudget(per_minute=60, burst=3)
    for _ in range(3):
        budget.take(0.0)
    assert [budget.take(3600.0).answer for _ in range(4)] == [True, True, True, False]


def test_a_clock_that_steps_back_never_mints_answers() -> None:
    budget = AnswerBudget(per_minute=60, burst=1)
    assert budget.take(10.0).answer
    assert not budget.take(5.0).answer
    assert not budget.take(10.5).answer
    assert budget.take(11.0).answer


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 5), (-1, 5), (float("nan"), 5), (float("inf"), 5), (60, 0)])
def test_a_budget_that_could_never_answer_or_never_stop_is_refused(per_minute: float, burst: int) -> None:
    with pytest.raises(ValueError, match="positive rate and burst"):
        AnswerBudget(per_minute=per_minute, burst=burst)
