"""Installing a MAVLink 2 signing key on the autopilot (SETUP_SIGNING).

ArduPilot stores the key, signs everything it sends from then on, and refuses unsigned messages on every
link except SERIAL0 (its USB port on real hardware) and RADIO_STATUS from radios. It does not answer
SETUP_SIGNING, refuses it while armed (with a STATUSTEXT), and an all-zero key with timestamp 0 turns
signing off. So we check "armed" ourselves first and confirm by the signature flag on its next heartbeats.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.errors import ConfigError, Refused
from flightctl.link.codec import SigningKey, signing_timestamp
from flightctl.link.connection import MavConnection
from flightctl.link.request import NoReply, RetryPolicy, request


class SigningSetupError(Refused):
    """The vehicle did not take the signing key (or did not drop it)."""


def write_new_key(path: Path) -> SigningKey:
    """A fresh random key, written as 64 hex characters, readable by its owner only."""
    if path.exists():
        raise ConfigError(f"{path} exists; refusing to overwrite a signing key")
    secret = secrets.token_bytes(32)
    try:
        # Created 0600 from the start: the key is never readable by others, not even for a moment.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secret.hex() + "\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the key: {exc.strerror or exc}") from None
    return SigningKey(secret)


def _signed(message: MAVLinkMessage) -> bool:
    return bool(message.get_header().incompat_flags & mavlink.MAVLINK_IFLAG_SIGNED)


async def _send_key(
    connection: MavConnection, secret: bytes, timestamp: int, *, signed: bool, policy: RetryPolicy
) -> None:
    heartbeat = connection.last_heartbeat
    if heartbeat is not None and heartbeat.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED:
        raise SigningSetupError("the vehicle is armed: signing keys are only changed on the ground")
    message = mavlink.MAVLink_setup_signing_message(
        connection.target_system, connection.target_component, secret, timestamp
    )
    wanted = "signed" if signed else "unsigned"
    with connection.inbox("HEARTBEAT", lambda m: _signed(m) == signed, what=f"{wanted} heartbeat") as beats:
        # SETUP_SIGNING has no ACK: resend a few times, confirmation is the heartbeat's signature flag.
        try:
            await request(connection, message, beats, policy)
        except NoReply:
            raise SigningSetupError(
                f"the vehicle's heartbeats are still not {wanted} after {policy.attempts} SETUP_SIGNING messages"
            ) from None


SIGNING_POLICY = RetryPolicy(reply_timeout_s=3.0, attempts=3)


async def install_signing_key(
    connection: MavConnection, key: SigningKey, *, policy: RetryPolicy = SIGNING_POLICY
) -> None:
    """Give the vehicle ``key``; return once its heartbeats arrive signed."""
    await _send_key(connection, key.secret, signing_timestamp(), signed=True, policy=policy)


async def remove_signing_key(connection: MavConnection, *, policy: RetryPolicy = SIGNING_POLICY) -> None:
    """Turn signing off on the vehicle (all-zero key, zero timestamp); return once heartbeats are unsigned.

    Only works over a link the vehicle accepts unsigned traffic on (SERIAL0/USB) or over a signed link.
    """
    await _send_key(connection, bytes(32), 0, signed=False, policy=policy)
