"""Framing and decoding of MAVLink bytes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from flightctl.dialect import mavlink
from flightctl.errors import ConfigError
from flightctl.link.codec import MavCodec, SigningKey, signing_timestamp
from flightctl.vehicle.signing import write_new_key


def heartbeat(custom_mode: int = 0) -> mavlink.MAVLink_message:
    return mavlink.MAVLink_heartbeat_message(2, 3, 0, custom_mode, 4, 3)


def test_random_garbage_between_frames_loses_no_valid_message() -> None:
    """Test that 1,000 random garbage bytes between every pair of valid frames lose no valid message."""
    sender, receiver = MavCodec(1, 1), MavCodec(1, 191)
    rng = random.Random(20261128)
    stream = bytearray()
    for n in range(300):
        stream += bytes(rng.randrange(256) for _ in range(1000))
        stream += sender.encode(heartbeat(n))
    received = []
    position = 0
    while position < len(stream):  # uneven chunks, as a serial port delivers them
        size = rng.randrange(1, 300)
        received += receiver.feed(bytes(stream[position : position + size]))
        position += size
    assert [m.custom_mode for m in received] == list(range(300))
    assert receiver.stats.garbage_bytes >= 300 * 1000


def test_garbage_full_of_frame_markers_loses_no_valid_message() -> None:
    """Test that garbage made of start markers and plausible headers does not swallow the next real frame."""
    sender, receiver = MavCodec(1, 1), MavCodec(1, 191)
    frame = sender.encode(heartbeat(7))
    # A v2 header claiming a known message (HEARTBEAT, id 0) with a long payload, then the real frame.
    fake_header = bytes([0xFD, 9, 0, 0, 5, 1, 1, 0, 0, 0])
    received = receiver.feed(fake_header + bytes([0xFE, 0xFD]) + frame)
    assert [m.custom_mode for m in received] == [7]


def test_bad_crc_and_truncated_frames_are_counted_and_skipped() -> None:
    """Test that a corrupted and a truncated frame are dropped and counted while their neighbours arrive."""
    sender, receiver = MavCodec(1, 1), MavCodec(1, 191)
    good1, corrupt, truncated, good2 = (sender.encode(heartbeat(n)) for n in (1, 2, 3, 4))
    corrupt = corrupt[:-1] + bytes([corrupt[-1] ^ 0xFF])
    received = receiver.feed(good1 + corrupt + truncated[:8] + good2)
    assert [m.custom_mode for m in received] == [1, 4]
    assert receiver.stats.bad_crc >= 1


def test_unknown_message_id_is_counted_not_raised() -> None:
    """Test that a frame with a message id the dialect does not know is counted and skipped."""
    sender, receiver = MavCodec(1, 1), MavCodec(1, 191)
    unknown = bytes([0xFD, 2, 0, 0, 0, 1, 1, 0x34, 0x12, 0x00, 0xAA, 0xBB, 0x00, 0x00])
    received = receiver.feed(unknown + sender.encode(heartbeat(5)))
    assert [m.custom_mode for m in received] == [5]
    assert receiver.stats.unknown_ids >= 1


def test_mavlink1_frames_decode() -> None:
    """Test that MAVLink 1 frames (old radios, old firmware) are still understood."""
    sender, receiver = MavCodec(1, 1), MavCodec(1, 191)
    message = heartbeat(9)
    data = message.pack(sender._mav, force_mavlink1=True)
    assert data[0] == 0xFE
    assert [m.custom_mode for m in receiver.feed(data)] == [9]


def test_signed_peer_accepts_signed_and_rejects_unsigned() -> None:
    """Test that with a key, signed frames are accepted and unsigned ones (but RADIO_STATUS) rejected."""
    key = SigningKey(bytes(range(32)))
    signed_vehicle, unsigned_vehicle, receiver = MavCodec(1, 1, key), MavCodec(1, 1), MavCodec(1, 191, key)
    radio = mavlink.MAVLink_radio_status_message(200, 190, 100, 10, 10, 0, 0)
    received = receiver.feed(
        signed_vehicle.encode(heartbeat(1)) + unsigned_vehicle.encode(heartbeat(2)) + unsigned_vehicle.encode(radio)
    )
    assert [m.get_type() for m in received] == ["HEARTBEAT", "RADIO_STATUS"]
    assert received[0].custom_mode == 1
    assert receiver.stats.unsigned_rejected == 1


def test_wrong_key_is_rejected() -> None:
    """Test that frames signed with another key are refused and counted."""
    receiver = MavCodec(1, 191, SigningKey(bytes(32)))
    forger = MavCodec(1, 1, SigningKey(bytes([1]) * 32))
    assert receiver.feed(forger.encode(heartbeat(1))) == []
    assert receiver.stats.bad_signature == 1


def test_forged_future_timestamp_does_not_lock_out_the_real_vehicle() -> None:
    """Test that a forged frame with a far-future timestamp does not make genuine frames look replayed."""
    key = SigningKey(bytes(range(32)))
    receiver, vehicle = MavCodec(1, 191, key), MavCodec(1, 1, key)
    forger = MavCodec(1, 1, SigningKey(bytes([9]) * 32))
    forger._mav.signing.timestamp = signing_timestamp() + 10**12
    assert receiver.feed(forger.encode(heartbeat(66))) == []
    assert [m.custom_mode for m in receiver.feed(vehicle.encode(heartbeat(3)))] == [3]


def test_replayed_frame_is_rejected() -> None:
    """Test that the same signed frame received twice is accepted once (replay protection)."""
    key = SigningKey(bytes(range(32)))
    receiver, vehicle = MavCodec(1, 191, key), MavCodec(1, 1, key)
    frame = vehicle.encode(heartbeat(4))
    assert len(receiver.feed(frame)) == 1
    assert receiver.feed(frame) == []


def test_key_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    """Test that a key file written by write_new_key loads back, and malformed key files say why."""
    path = tmp_path / "vehicle.key"
    key = write_new_key(path)
    assert SigningKey.from_file(path) == key
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert key.secret.hex() not in repr(key)
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write_new_key(path)
    (tmp_path / "short.key").write_text("abcd")
    with pytest.raises(ConfigError, match="32 bytes"):
        SigningKey.from_file(tmp_path / "short.key")
    (tmp_path / "nothex.key").write_text("zz" * 32)
    with pytest.raises(ConfigError, match="64 hex characters"):
        SigningKey.from_file(tmp_path / "nothex.key")
    with pytest.raises(ConfigError, match="cannot read"):
        SigningKey.from_file(tmp_path / "missing.key")
