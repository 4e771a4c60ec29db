"""Bytes to and from the autopilot over UDP, TCP or a serial port, on asyncio.

Every transport has the same small interface (``Transport``) so the MAVLink layer never knows which one it
has, and test fakes implement the same interface. TCP and serial reconnect on their own with backoff: on the
aircraft a USB-serial adapter can drop out and come back, and SITL's TCP port can be restarted.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

import serial

from flightctl.errors import LinkClosed, TransportError
from flightctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Chunks waiting for the reader. A reader this far behind is stuck; dropping (and counting) beats growing.
_INCOMING_LIMIT = 4096
# Bytes we are willing to have queued towards a slow peer before dropping outgoing frames.
_OUTGOING_LIMIT = 256 * 1024


@dataclass
class TransportStats:
    bytes_in: int = 0
    bytes_out: int = 0
    chunks_dropped_in: int = 0
    writes_dropped: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: initial_s, doubling, capped at max_s."""

    initial_s: float = 0.2
    max_s: float = 5.0

    def delays(self) -> Any:
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * 2.0, self.max_s)


class Transport(abc.ABC):
    """A bidirectional byte pipe to one MAVLink peer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stats = TransportStats()
        self._incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._closed = False

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """True while bytes can flow (for UDP: once the socket is bound)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Open the transport or raise ``TransportError`` saying why not."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Queue bytes for sending without blocking; dropped and counted while disconnected."""

    async def close(self) -> None:
        self._closed = True
        self._incoming.put_nowait(None)

    async def read(self) -> bytes:
        """The next chunk of received bytes. Raises ``LinkClosed`` once the transport is closed."""
        if self._closed and self._incoming.empty():
            raise LinkClosed(f"{self.url}: transport closed")
        chunk = await self._incoming.get()
        if chunk is None:
            self._incoming.put_nowait(None)  # wake any other reader too
            raise LinkClosed(f"{self.url}: transport closed")
        return chunk

    def _deliver(self, data: bytes) -> None:
        """Called by the I/O side for every received chunk."""
        if self._closed:
            return
        self.stats.bytes_in += len(data)
        if self._incoming.qsize() >= _INCOMING_LIMIT:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._incoming.get_nowait()
            self.stats.chunks_dropped_in += 1
        self._incoming.put_nowait(data)

    def __repr__(self) -> str:
        state = "CLOSED" if self._closed else ("CONNECTED" if self.connected else "DISCONNECTED")
        return f"<{type(self).__name__} {self.url} [{state}]>"


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._owner._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port-unreachable while the peer is not up yet: normal for udpout, nothing to do.
        log.debug("%s: %s", self._owner.url, exc)


class UdpTransport(Transport):
    """``udpin:HOST:PORT`` listens and answers whoever spoke last; ``udpout:HOST:PORT`` sends to HOST:PORT."""

    def __init__(self, url: str, host: str, port: int, *, listen: bool) -> None:
        super().__init__(url)
        self._host, self._port, self._listen = host, port, listen
        self._transport: asyncio.DatagramTransport | None = None
        self._peer: tuple[str | Any, int] | None = None if listen else (host, port)

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._closed

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._listen:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _DatagramProtocol(self), local_addr=(self._host, self._port)
                )
            else:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _DatagramProtocol(self), remote_addr=(self._host, self._port)
                )
        except OSError as exc:
            raise TransportError(f"{self.url}: cannot open UDP socket: {exc}") from exc
        self._transport = transport

    def _datagram(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self._listen:
            self._peer = addr
        self._deliver(data)

    def write(self, data: bytes) -> None:
        if self._transport is None or self._closed or self._peer is None:
            self.stats.writes_dropped += 1
            return
        if self._listen:
            self._transport.sendto(data, self._peer)
        else:
            self._transport.sendto(data)
        self.stats.bytes_out += len(data)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            # asyncio closes the socket on the loop's next turn: take that turn, so that the port can be bound
            # again as soon as close() returns (a restarted harness, the next test).
            await asyncio.sleep(0)
        await super().close()


class _ReconnectingTransport(Transport):
    """A stream (TCP, serial) that comes back by itself after it drops, retrying with backoff."""

    def __init__(self, url: str, *, backoff: Backoff, open_timeout_s: float) -> None:
        super().__init__(url)
        self._backoff = backoff
        self._open_timeout_s = open_timeout_s
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def _connect(self) -> None:
        """One connection attempt; raise OSError (or serial.SerialException) on failure."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Drop the current connection, if any."""

    def _connection_lost(self, reason: object) -> None:
        if not self._closed:
            log.warning("%s: connection lost (%s); reconnecting", self.url, reason)
        self._disconnect()
        self._lost.set()

    async def _connect_with_backoff(self, deadline: float | None) -> None:
        loop = asyncio.get_running_loop()
        last_error: Exception | None = None
        for delay in self._backoff.delays():
            if self._closed:
                raise LinkClosed(f"{self.url}: transport closed")
            try:
                await self._connect()
            except (OSError, serial.SerialException) as exc:
                last_error = exc
            else:
                return
            if deadline is not None and loop.time() + delay > deadline:
                raise TransportError(f"{self.url}: could not connect within {self._open_timeout_s:g} s: {last_error}")
            await asyncio.sleep(delay)

    async def open(self) -> None:
        deadline = asyncio.get_running_loop().time() + self._open_timeout_s
        await self._connect_with_backoff(deadline)
        self._supervisor = asyncio.create_task(self._reconnect_forever(), name=f"reconnect {self.url}")

    async def _reconnect_forever(self) -> None:
        while not self._closed:
            await self._lost.wait()
            self._lost.clear()
            if self._closed:
                return
            with contextlib.suppress(LinkClosed):
                await self._connect_with_backoff(deadline=None)
                self.stats.reconnects += 1
                log.info("%s: reconnected", self.url)

    async def close(self) -> None:
        self._closed = True
        if self._supervisor is not None:
            failed = await cancel_and_wait(self._supervisor)
            if failed is not None:
                raise failed
        self._disconnect()
        await super().close()


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, owner: TcpTransport) -> None:
        self._owner = owner

    def data_received(self, data: bytes) -> None:
        self._owner._deliver(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._connection_lost(exc or "closed by peer")


class TcpTransport(_ReconnectingTransport):
    """``tcp:HOST:PORT``: a TCP client, as SITL's SERIALn ports and MAVProxy's outputs expect."""

    def __init__(self, url: str, host: str, port: int, *, backoff: Backoff, open_timeout_s: float) -> None:
        super().__init__(url, backoff=backoff, open_timeout_s=open_timeout_s)
        self._host, self._port = host, port
        self._transport: asyncio.Transport | None = None

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(lambda: _TcpProtocol(self), self._host, self._port)
        self._transport = transport

    def _disconnect(self) -> None:
        if self._transport is not None:
            self._transport.abort()
            self._transport = None

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing() or transport.get_write_buffer_size() > _OUTGOING_LIMIT:
            self.stats.writes_dropped += 1
            return
        transport.write(data)
        self.stats.bytes_out += len(data)


class SerialTransport(_ReconnectingTransport):
    """``serial:/dev/ttyX:BAUD``: the aircraft's telemetry UART. pyserial configures the port (termios);
    the reads and writes are non-blocking on its file descriptor, driven by the event loop."""

    def __init__(self, url: str, device: str, baud: int, *, backoff: Backoff, open_timeout_s: float) -> None:
        super().__init__(url, backoff=backoff, open_timeout_s=open_timeout_s)
        self._device, self._baud = device, baud
        self._port: serial.Serial | None = None
        self._pending = bytearray()

    @property
    def connected(self) -> bool:
        return self._port is not None

    async def _connect(self) -> None:
        port = serial.Serial(self._device, self._baud, timeout=0, write_timeout=0, exclusive=True)
        os.set_blocking(port.fileno(), False)
        self._port = port
        self._pending.clear()
        asyncio.get_running_loop().add_reader(port.fileno(), self._on_readable)

    def _disconnect(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(port.fileno())
        loop.remove_writer(port.fileno())
        with contextlib.suppress(OSError, serial.SerialException):
            port.close()

    def _on_readable(self) -> None:
        if self._port is None:
            return
        try:
            data = os.read(self._port.fileno(), 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._connection_lost(exc)
            return
        if not data:  # a pty whose other end closed, or a USB adapter that vanished
            self._connection_lost("end of file")
            return
        self._deliver(data)

    def write(self, data: bytes) -> None:
        if self._port is None or len(self._pending) + len(data) > _OUTGOING_LIMIT:
            self.stats.writes_dropped += 1
            return
        self.stats.bytes_out += len(data)
        self._pending.extend(data)
        self._flush()

    def _flush(self) -> None:
        port = self._port
        if port is None:
            return
        try:
            written = os.write(port.fileno(), self._pending)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._connection_lost(exc)
            return
        del self._pending[:written]
        loop = asyncio.get_running_loop()
        if self._pending:
            loop.add_writer(port.fileno(), self._flush)
        else:
            loop.remove_writer(port.fileno())


_URL_FORMS = "udpin:HOST:PORT, udpout:HOST:PORT, tcp:HOST:PORT, serial:/dev/ttyX[:BAUD]"
DEFAULT_SERIAL_BAUD = 115200


def _host_port(url: str, rest: str) -> tuple[str, int]:
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise TransportError(f"{url!r}: expected HOST:PORT after the scheme (forms: {_URL_FORMS})")
    return host, int(port_text)


def transport_for_url(url: str, *, open_timeout_s: float = 10.0, backoff: Backoff | None = None) -> Transport:
    """Build (not open) the transport a MAVProxy-style connection URL names."""
    backoff = backoff or Backoff()
    scheme, sep, rest = url.partition(":")
    if not sep:
        raise TransportError(f"{url!r}: no scheme (forms: {_URL_FORMS})")
    if scheme in ("udpin", "udp"):
        return UdpTransport(url, *_host_port(url, rest), listen=True)
    if scheme == "udpout":
        return UdpTransport(url, *_host_port(url, rest), listen=False)
    if scheme == "tcp":
        return TcpTransport(url, *_host_port(url, rest), backoff=backoff, open_timeout_s=open_timeout_s)
    if scheme == "serial":
        device, sep, baud_text = rest.rpartition(":")
        if not sep or not baud_text.isdigit():
            device, baud_text = rest, str(DEFAULT_SERIAL_BAUD)
        if not device:
            raise TransportError(f"{url!r}: no serial device (forms: {_URL_FORMS})")
        return SerialTransport(url, device, int(baud_text), backoff=backoff, open_timeout_s=open_timeout_s)
    raise TransportError(f"{url!r}: unknown scheme {scheme!r} (forms: {_URL_FORMS})")
