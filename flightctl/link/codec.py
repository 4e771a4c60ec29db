"""MAVLink framing that survives a noisy radio, with pymavlink as the decoder and encoder.

pymavlink's own parser, on a corrupt frame, throws away everything the corrupt header claimed as its length,
so a stray 0xFD in line noise can swallow the good frame behind it. We find frame boundaries ourselves and,
when a candidate frame fails its CRC, resume the search one byte after its start: no valid frame is lost to
garbage in front of it. Each complete candidate is handed to pymavlink's ``decode`` (CRC, signature, fields).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from pathlib import Path

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.errors import ConfigError

_V1_MARKER = mavlink.PROTOCOL_MARKER_V1
_V2_MARKER = mavlink.PROTOCOL_MARKER_V2
_V1_HEADER = 6
_V2_HEADER = 10
_CHECKSUM = 2
_SIGNATURE = mavlink.MAVLINK_SIGNATURE_BLOCK_LEN
_IFLAG_SIGNED = mavlink.MAVLINK_IFLAG_SIGNED
_RADIO_STATUS = mavlink.MAVLINK_MSG_ID_RADIO_STATUS
# MAVLink signing timestamps count 10 us units from 2015-01-01T00:00:00Z.
_SIGNING_EPOCH_S = 1420070400


class _Verdict(enum.Enum):
    NOT_A_FRAME = "not a frame"  # failed its CRC: resume the search inside it
    REFUSED = "refused"  # a real frame we will not accept (signing): skip it whole


_NOT_A_FRAME = _Verdict.NOT_A_FRAME
_REFUSED = _Verdict.REFUSED


@dataclass
class CodecStats:
    frames: int = 0
    garbage_bytes: int = 0
    bad_crc: int = 0
    unknown_ids: int = 0
    bad_signature: int = 0
    unsigned_rejected: int = 0


@dataclass(frozen=True)
class SigningKey:
    """A 32-byte MAVLink 2 secret key. In files: 64 hex characters (whitespace ignored)."""

    secret: bytes
    link_id: int = 0

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise ConfigError(f"a MAVLink signing key is 32 bytes, this one has {len(self.secret)}")
        if not 0 <= self.link_id <= 255:
            raise ConfigError(f"signing link id {self.link_id} is outside 0..255")

    @classmethod
    def from_file(cls, path: Path, link_id: int = 0) -> SigningKey:
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read signing key: {exc}") from exc
        try:
            secret = bytes.fromhex("".join(text.split()))
        except ValueError as exc:
            raise ConfigError(f"{path}: a signing key file holds 64 hex characters") from exc
        return cls(secret, link_id)

    def __repr__(self) -> str:  # never print the secret
        return f"SigningKey(link_id={self.link_id})"


def signing_timestamp(now_s: float | None = None) -> int:
    return int(((time.time() if now_s is None else now_s) - _SIGNING_EPOCH_S) * 100_000)


class MavCodec:
    """Turns received bytes into decoded messages and our messages into bytes."""

    def __init__(self, system_id: int, component_id: int, signing: SigningKey | None = None) -> None:
        self.stats = CodecStats()
        self._mav = mavlink.MAVLink(None, srcSystem=system_id, srcComponent=component_id)
        self._buffer = bytearray()
        self._signing = signing
        if signing is not None:
            self._mav.signing.secret_key = signing.secret
            self._mav.signing.link_id = signing.link_id
            self._mav.signing.sign_outgoing = True
            self._mav.signing.timestamp = signing_timestamp()
            self._mav.signing.allow_unsigned_callback = self._allow_unsigned

    @property
    def system_id(self) -> int:
        return int(self._mav.srcSystem)

    @property
    def component_id(self) -> int:
        return int(self._mav.srcComponent)

    def encode(self, message: MAVLinkMessage) -> bytes:
        if self._signing is not None:
            # pymavlink only adds 1 per packet; keep it near wall clock so peers do not see us as stale.
            self._mav.signing.timestamp = max(self._mav.signing.timestamp, signing_timestamp())
        data = bytes(message.pack(self._mav))
        self._mav.seq = (self._mav.seq + 1) % 256
        return data

    def feed(self, data: bytes) -> list[MAVLinkMessage]:
        """Every complete valid message in ``data`` plus what was buffered before it, in order."""
        self._buffer.extend(data)
        messages: list[MAVLinkMessage] = []
        buffer = self._buffer
        start = 0
        while True:
            marker = self._next_marker(buffer, start)
            self.stats.garbage_bytes += marker - start
            start = marker
            if marker == len(buffer):
                break
            frame_length = self._candidate_length(buffer, marker)
            if frame_length is None:
                start = marker + 1
                self.stats.garbage_bytes += 1
                continue
            if frame_length > len(buffer) - marker:
                break  # wait for the rest of this candidate
            verdict = self._decode(buffer, marker, frame_length)
            if verdict is _NOT_A_FRAME:
                start = marker + 1
                self.stats.garbage_bytes += 1
                continue
            if verdict is not _REFUSED:
                messages.append(verdict)
                self.stats.frames += 1
            start = marker + frame_length
        del buffer[:start]
        return messages

    @staticmethod
    def _next_marker(buffer: bytearray, start: int) -> int:
        v2 = buffer.find(_V2_MARKER, start)
        v1 = buffer.find(_V1_MARKER, start)
        found = [index for index in (v1, v2) if index >= 0]
        return min(found) if found else len(buffer)

    def _candidate_length(self, buffer: bytearray, at: int) -> int | None:
        """Total frame length the header at ``at`` claims (the header length while it is incomplete);
        None when it cannot be the start of a frame we can check."""
        available = len(buffer) - at
        if buffer[at] == _V2_MARKER:
            if available < _V2_HEADER:
                return _V2_HEADER
            payload, incompat = buffer[at + 1], buffer[at + 2]
            if incompat & ~_IFLAG_SIGNED:
                return None  # flags we do not understand: the spec says drop the frame
            msg_id = buffer[at + 7] | buffer[at + 8] << 8 | buffer[at + 9] << 16
            header = _V2_HEADER
            signature = _SIGNATURE if incompat & _IFLAG_SIGNED else 0
        else:
            if available < _V1_HEADER:
                return _V1_HEADER
            payload, msg_id, header, signature = buffer[at + 1], buffer[at + 5], _V1_HEADER, 0
        message_type = mavlink.mavlink_map.get(msg_id)
        if message_type is None:
            # Without the message's CRC_EXTRA the frame cannot be checked; trusting its length would let
            # noise swallow the next good frame, so step over the marker instead.
            self.stats.unknown_ids += 1
            return None
        # MAVLink 2 trims trailing zero bytes, so a payload can be shorter than the struct, never longer.
        if payload > message_type.unpacker.size:
            return None
        return header + payload + _CHECKSUM + signature

    def _decode(self, buffer: bytearray, at: int, length: int) -> MAVLinkMessage | _Verdict:
        frame = bytearray(buffer[at : at + length])
        stream_key: tuple[int, int, int] | None = None
        saved_timestamp: int | None = None
        if self._signing is not None and frame[0] == _V2_MARKER and frame[2] & _IFLAG_SIGNED:
            stream_key = (frame[-13], frame[5], frame[6])
            saved_timestamp = self._mav.signing.stream_timestamps.get(stream_key)
        try:
            message: MAVLinkMessage = self._mav.decode(frame)
        except mavlink.MAVError as exc:
            if "signature" in str(exc.message):
                self._forget_forged_timestamp(stream_key, saved_timestamp)
                if frame[0] == _V2_MARKER and frame[2] & _IFLAG_SIGNED:
                    self.stats.bad_signature += 1
                else:
                    self.stats.unsigned_rejected += 1
                # A well-formed frame we refuse: consume it whole rather than rescanning inside it.
                return _REFUSED
            self.stats.bad_crc += 1
            return _NOT_A_FRAME
        return message

    def _forget_forged_timestamp(self, stream_key: tuple[int, int, int] | None, saved: int | None) -> None:
        # pymavlink records a stream's timestamp before it checks the signature, so one forged frame with a
        # far-future timestamp would make every genuine frame after it look like a replay. Undo that.
        if stream_key is None:
            return
        if saved is None:
            self._mav.signing.stream_timestamps.pop(stream_key, None)
        else:
            self._mav.signing.stream_timestamps[stream_key] = saved

    @staticmethod
    def _allow_unsigned(_mav: object, msg_id: int) -> bool:
        # Radios inject RADIO_STATUS unsigned (MAVLink signing guide); everything else must be signed.
        return bool(msg_id == _RADIO_STATUS)
