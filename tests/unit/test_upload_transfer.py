"""The mission upload's decisions as data: what the vehicle said -> what to send next. No link, no clock."""

from __future__ import annotations

from flightctl.dialect import mavlink
from flightctl.missions.upload_transfer import (
    Done,
    Ended,
    GiveUp,
    QueryCount,
    SendCount,
    SendItem,
    UploadLimits,
    UploadTransfer,
)


def test_a_clean_upload_sends_the_count_each_requested_item_and_ends_on_the_ack() -> None:
    """Test the happy path: count, items as asked, done on ACCEPTED after the last item."""
    transfer = UploadTransfer(3)
    assert transfer.start() == [SendCount(3)]
    assert transfer.on_request(0) == [SendItem(0, first_request=True)]
    assert transfer.on_request(1) == [SendItem(1, first_request=True)]
    assert transfer.on_ack(mavlink.MAV_MISSION_ACCEPTED) == [], "an early ACCEPTED is a leftover, not the end"
    assert transfer.on_request(2) == [SendItem(2, first_request=True)]
    assert transfer.on_ack(mavlink.MAV_MISSION_ACCEPTED) == [Done()]


def test_a_re_request_is_answered_but_is_not_progress() -> None:
    """Test that the vehicle asking again (our item was lost) gets the item again, marked as a re-request."""
    transfer = UploadTransfer(5)
    transfer.start()
    transfer.on_request(0)
    transfer.on_request(1)
    assert transfer.on_request(1) == [SendItem(1, first_request=False)]


def test_requests_outside_the_list_are_ignored() -> None:
    """Test that a request for an item we do not have is not answered (a stale request from another transfer)."""
    transfer = UploadTransfer(2)
    transfer.start()
    assert transfer.on_request(7) == []
    assert transfer.on_request(-1) == []


def test_invalid_sequence_is_a_warning_not_an_end() -> None:
    """Test that INVALID_SEQUENCE (our duplicate crossed the vehicle's request) lets the transfer go on."""
    transfer = UploadTransfer(4)
    transfer.start()
    transfer.on_request(0)
    assert transfer.on_ack(mavlink.MAV_MISSION_INVALID_SEQUENCE) == []
    assert transfer.on_request(1) == [SendItem(1, first_request=True)]


def test_other_nacks_end_the_transfer_naming_the_stage_and_item() -> None:
    """Test that NO_SPACE before any request ends 'upload start', and DENIED mid-way ends 'upload' at the item."""
    transfer = UploadTransfer(4)
    transfer.start()
    assert transfer.on_ack(mavlink.MAV_MISSION_NO_SPACE) == [Ended(mavlink.MAV_MISSION_NO_SPACE, None, "upload start")]
    transfer = UploadTransfer(4)
    transfer.start()
    transfer.on_request(0)
    transfer.on_request(1)
    assert transfer.on_ack(mavlink.MAV_MISSION_DENIED) == [Ended(mavlink.MAV_MISSION_DENIED, 1, "upload")]


TALKING = {"vehicle_silent_s": 0.5, "elapsed_s": 10.0, "quiet_s": 0.3}  # heartbeats arrive; inside the deadline


def test_silence_before_any_request_resends_the_count_while_the_vehicle_talks() -> None:
    """Test that an unanswered MISSION_COUNT is sent again for as long as the vehicle still talks: no fixed
    number of tries."""
    transfer = UploadTransfer(3)
    transfer.start()
    for _ in range(50):
        assert transfer.on_silence(**TALKING) == [SendCount(3)]


def test_a_silent_vehicle_or_the_deadline_ends_the_transfer() -> None:
    """Test the two ways to give up: the vehicle itself silent (no heartbeat), or the upload's deadline."""
    transfer = UploadTransfer(5, UploadLimits(vehicle_silent_s=10, deadline_s=60))
    transfer.start()
    transfer.on_request(0)
    transfer.on_request(1)
    assert transfer.on_silence(vehicle_silent_s=12.0, elapsed_s=20.0, quiet_s=12.0) == [
        GiveUp("vehicle silent for 12 s (no heartbeat either)", 1)
    ]
    assert transfer.on_silence(vehicle_silent_s=0.5, elapsed_s=61.0, quiet_s=0.3) == [
        GiveUp("not finished within 60 s on this link", 1)
    ]


def test_silence_mid_transfer_resends_the_newest_item_and_the_next() -> None:
    """Test that a reply timeout mid-transfer resends the item last asked for and the one after it, without
    waiting for the vehicle's own once-a-second re-request: whichever was lost (our item or its request), the
    vehicle can take what it needs next."""
    transfer = UploadTransfer(5)
    transfer.start()
    transfer.on_request(0)
    transfer.on_request(1)
    assert transfer.on_silence(**TALKING) == [SendItem(1, first_request=False), SendItem(2, first_request=False)]
    assert transfer.on_silence(**TALKING) == [SendItem(1, first_request=False), SendItem(2, first_request=False)]
    assert not transfer.last_sent


def test_a_last_item_sent_unasked_leaves_only_the_ack_to_wait_for() -> None:
    """Test that when the resend carries the last item, the transfer is past its end: the ACCEPTED that follows
    means done, the ERROR a later resend earns is expected, and silence means asking for the count."""
    transfer = UploadTransfer(3)
    transfer.start()
    transfer.on_request(0)
    transfer.on_request(1)
    assert transfer.on_silence(**TALKING) == [SendItem(1, first_request=False), SendItem(2, first_request=False)]
    assert transfer.last_sent
    assert transfer.on_silence(**TALKING) == [QueryCount()]
    assert transfer.on_ack(mavlink.MAV_MISSION_ERROR) == []
    assert transfer.on_ack(mavlink.MAV_MISSION_ACCEPTED) == [Done()]


def test_a_transfer_quiet_past_the_vehicles_patience_starts_afresh() -> None:
    """Test that once nothing came for the transfer longer than the vehicle waits for an item (ArduPilot: 8 s),
    the transfer ends for a fresh one, though heartbeats still arrive."""
    transfer = UploadTransfer(5, UploadLimits(abandoned_after_s=9.0))
    transfer.start()
    transfer.on_request(0)
    transfer.on_request(1)
    transfer.on_request(2)
    quiet = {"vehicle_silent_s": 0.5, "elapsed_s": 30.0, "quiet_s": 9.5}
    assert transfer.on_silence(**quiet) == [Ended(mavlink.MAV_MISSION_OPERATION_CANCELLED, 2, "upload")]


def test_a_lost_final_ack_is_settled_by_the_count() -> None:
    """Test that after the last item, silence means asking for the count: ours means done, and the DENIED that
    query earns while the vehicle still receives is expected, not an end."""
    transfer = UploadTransfer(2)
    transfer.start()
    transfer.on_request(0)
    transfer.on_request(1)
    assert transfer.on_silence(**TALKING) == [QueryCount()]
    assert transfer.on_count(None) == []
    assert transfer.on_ack(mavlink.MAV_MISSION_DENIED) == [], "the answer to our own count query"
    assert transfer.on_ack(mavlink.MAV_MISSION_ERROR) == [], "a resent item crossed the end: settle by count"
    assert transfer.on_silence(**TALKING) == [QueryCount()]
    assert transfer.on_count(2) == [Done()]


def test_an_empty_list_needs_only_the_ack() -> None:
    """Test that uploading nothing (a clear) is done on the ACK, with nothing to ask for."""
    transfer = UploadTransfer(0)
    assert transfer.start() == [SendCount(0)]
    assert transfer.on_ack(mavlink.MAV_MISSION_ACCEPTED) == [Done()]
