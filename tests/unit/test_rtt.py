"""The round-trip estimator the transfers' resend timers come from: RFC 6298's arithmetic, the bounds, the
bounded backoff, probing before any sample, and seeding one protocol's estimate from another's."""

from __future__ import annotations

import pytest

from flightctl.link.rtt import MAX_DOUBLINGS, RttEstimator


def estimator() -> RttEstimator:
    return RttEstimator(min_timeout_s=0.1, max_timeout_s=2.0)


def test_first_sample_sets_srtt_and_half_of_it_as_variance() -> None:
    """Test RFC 6298 (2.2): SRTT = R, RTTVAR = R/2, so the first timeout is 3R."""
    rtt = estimator()
    rtt.sample(0.2)
    assert rtt.srtt_s == pytest.approx(0.2)
    assert rtt.rttvar_s == pytest.approx(0.1)
    assert rtt.timeout_s() == pytest.approx(0.6)


def test_later_samples_smooth_with_rfc_gains() -> None:
    """Test RFC 6298 (2.3): beta 1/4 on the variance (from the old SRTT), alpha 1/8 on SRTT."""
    rtt = estimator()
    rtt.sample(0.2)
    rtt.sample(0.4)
    assert rtt.rttvar_s == pytest.approx(0.75 * 0.1 + 0.25 * 0.2)
    assert rtt.srtt_s == pytest.approx(0.875 * 0.2 + 0.125 * 0.4)


def test_timeout_is_held_within_its_bounds() -> None:
    """Test that a fast link waits at least the minimum and a slow one at most the maximum."""
    fast, slow = estimator(), estimator()
    fast.sample(0.001)
    slow.sample(5.0)
    assert fast.timeout_s() == pytest.approx(0.1)
    assert slow.timeout_s() == pytest.approx(2.0)


def test_backoff_doubles_per_resend_but_is_bounded() -> None:
    """Test that each resend doubles the wait only MAX_DOUBLINGS times, and never past the maximum."""
    rtt = estimator()
    rtt.sample(0.05)  # base: 0.05 + 4 * 0.025 = 0.15
    waits = [rtt.timeout_s(resends) for resends in range(6)]
    assert waits[:3] == pytest.approx([0.15, 0.3, 0.6])
    assert waits[3:] == pytest.approx([0.15 * 2**MAX_DOUBLINGS] * 3)
    rtt.sample(0.5)
    assert rtt.timeout_s(5) == pytest.approx(2.0)


def test_unmeasured_probes_upwards_from_a_quarter_of_the_bound() -> None:
    """Test that with no sample the first wait is a quarter of the maximum, reaching it by the third."""
    rtt = estimator()
    assert not rtt.measured
    assert [rtt.timeout_s(n) for n in range(4)] == pytest.approx([0.5, 1.0, 2.0, 2.0])


def test_start_from_seeds_only_an_unmeasured_estimator() -> None:
    """Test that an estimate is taken from another only when there is none of its own."""
    command, mission, ftp = estimator(), estimator(), estimator()
    command.sample(0.04)
    mission.start_from(command)
    assert mission.srtt_s == pytest.approx(0.04)
    assert mission.rttvar_s == pytest.approx(0.02)
    ftp.sample(0.3)
    ftp.start_from(command)
    assert ftp.srtt_s == pytest.approx(0.3)
    empty = estimator()
    mission.start_from(empty)
    assert mission.srtt_s == pytest.approx(0.04)
