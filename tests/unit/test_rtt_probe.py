"""The link's round trip measured with TIMESYNC as soon as the vehicle is heard (link/rtt_probe.py), against a
scripted vehicle that answers as ArduPilot's GCS_MAVLINK::handle_timesync does: tc1 its time, ts1 echoed."""

from __future__ import annotations

import time

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.link.connection import MavConnection
from flightctl.link.rtt_probe import LINK_RTT, SAMPLES, SENDS, probe_round_trip
from tests.support.peer import ScriptedPeer


def answer_timesync(peer: ScriptedPeer) -> None:
    def respond(request: MAVLinkMessage) -> None:
        if request.tc1 == 0:
            peer.send(mavlink.MAVLink_timesync_message(time.monotonic_ns(), request.ts1))

    peer.on("TIMESYNC", respond)


def estimate(connection: MavConnection, protocol: str) -> float | None:
    return connection.rtt(protocol, min_timeout_s=0.01, max_timeout_s=5.0).srtt_s


async def test_the_probe_measures_the_link_and_a_protocol_not_yet_measured_starts_from_it(
    connection: MavConnection, peer: ScriptedPeer
) -> None:
    """Test that the probe stops at its samples, each answer one sample, and that a sub-protocol that has
    measured nothing (MAVFTP's first open) then starts from the link's estimate instead of probing blind."""
    answer_timesync(peer)
    assert await probe_round_trip(connection) == SAMPLES
    assert len(peer.sent("TIMESYNC")) == SAMPLES, "one request per sample on a clean link"
    link = estimate(connection, LINK_RTT)
    assert link is not None
    assert 0 < link < 0.5
    ftp = connection.rtt("ftp", min_timeout_s=0.01, max_timeout_s=1.0)
    assert ftp.srtt_s == link
    assert ftp.timeout_s(0) < 0.25, "not the unmeasured probe of a quarter of its bound"


async def test_through_half_the_frames_lost_each_way_every_answer_that_arrives_is_a_sample(
    connection: MavConnection, peer: ScriptedPeer
) -> None:
    """Test at 50 % loss each way: requests go on until three were answered (each names its own sending, so
    no answer is ambiguous as a resent request's would be), within the sends allowed."""
    answer_timesync(peer)
    peer.loss_to_flightctl = peer.loss_from_flightctl = 0.5
    taken = await probe_round_trip(connection, sends=40)
    assert taken == SAMPLES
    assert len(peer.sent("TIMESYNC")) + len(peer.lost) > SAMPLES, "lost requests were followed by more"
    assert estimate(connection, LINK_RTT) is not None


async def test_answers_that_are_not_ours_are_not_samples(connection: MavConnection, peer: ScriptedPeer) -> None:
    """Test that the vehicle's own TIMESYNC requests (tc1 = 0), answers naming a ts1 we never sent, and answers
    from another system leave the link unmeasured; a silent vehicle ends the probe after its sends, quietly."""

    stranger = ScriptedPeer(system_id=42)  # another aircraft on the same radio

    def confuse(request: MAVLinkMessage) -> None:
        peer.send(mavlink.MAVLink_timesync_message(0, request.ts1))  # a request, not an answer
        peer.send(mavlink.MAVLink_timesync_message(time.monotonic_ns(), request.ts1 + 1))  # not our stamp
        answer = mavlink.MAVLink_timesync_message(time.monotonic_ns(), request.ts1)
        peer.send_bytes(stranger.codec.encode(answer))  # our stamp, from system 42

    peer.on("TIMESYNC", confuse)
    assert await probe_round_trip(connection, sends=3) == 0
    assert len(peer.sent("TIMESYNC")) == 3
    stranger.stop()
    assert estimate(connection, LINK_RTT) is None
    assert SENDS >= 3 * SAMPLES, "enough sends for three samples through 30 % loss each way"
