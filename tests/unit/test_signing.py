"""Installing and removing a signing key, against a scripted peer that starts signing when told."""

from __future__ import annotations

import pytest

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.link.codec import MavCodec, SigningKey
from flightctl.link.connection import MavConnection
from flightctl.link.request import RetryPolicy
from flightctl.vehicle.signing import SigningSetupError, install_signing_key, remove_signing_key
from tests.support.peer import ScriptedPeer

KEY = SigningKey(bytes(range(32)))


def obey_setup_signing(peer: ScriptedPeer) -> None:
    def setup(message: MAVLinkMessage) -> None:
        secret = bytes(message.secret_key)
        peer.codec = MavCodec(1, 1, None if secret == bytes(32) else SigningKey(secret))
        # Like ArduPilot's SERIAL0, this link still accepts unsigned messages once signing is on.
        peer.codec._mav.signing.allow_unsigned_callback = lambda _mav, _msg_id: True

    peer.on("SETUP_SIGNING", setup)


async def test_install_returns_once_heartbeats_are_signed(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that install_signing_key sends the key and returns when the vehicle's heartbeats carry signatures."""
    obey_setup_signing(peer)
    await install_signing_key(connection, KEY, policy=RetryPolicy(0.5, 3))
    sent = peer.sent("SETUP_SIGNING")[0]
    assert bytes(sent.secret_key) == KEY.secret
    assert sent.initial_timestamp > 0
    await remove_signing_key(connection, policy=RetryPolicy(0.5, 3))
    assert bytes(peer.sent("SETUP_SIGNING")[-1].secret_key) == bytes(32)
    assert peer.sent("SETUP_SIGNING")[-1].initial_timestamp == 0


async def test_vehicle_ignoring_the_key_is_an_error(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a vehicle that keeps sending unsigned heartbeats makes installation fail after 3 tries."""
    with pytest.raises(SigningSetupError, match="still not signed after 3"):
        await install_signing_key(connection, KEY, policy=RetryPolicy(0.2, 3))
    assert len(peer.sent("SETUP_SIGNING")) == 3


async def test_no_key_change_while_armed(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that we refuse to change keys on an armed vehicle and send nothing."""
    peer.base_mode |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    await connection.wait_message("HEARTBEAT", lambda m: m.base_mode & 128, timeout_s=1, what="armed heartbeat")
    with pytest.raises(SigningSetupError, match="armed"):
        await install_signing_key(connection, KEY)
    assert peer.sent("SETUP_SIGNING") == []
