"""Transports on real sockets and ptys: URL forms, UDP both ways, TCP and serial reconnecting."""

from __future__ import annotations

import asyncio
import os
import select
import tty
from pathlib import Path

import pytest

from flightctl.errors import LinkClosed, TransportError
from flightctl.link.transport import (
    Backoff,
    SerialTransport,
    TcpTransport,
    UdpTransport,
    transport_for_url,
)
from tests.support.conditions import eventually

FAST = Backoff(initial_s=0.02, max_s=0.1)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("udpin:0.0.0.0:14550", UdpTransport),
        ("udp:127.0.0.1:14550", UdpTransport),
        ("udpout:127.0.0.1:14550", UdpTransport),
        ("tcp:127.0.0.1:5760", TcpTransport),
        ("serial:/dev/ttyAMA0:921600", SerialTransport),
        ("serial:/dev/serial/by-id/usb-ArduPilot_fmuv3-if00", SerialTransport),
    ],
)
def test_url_forms(url: str, kind: type) -> None:
    """Test that MAVProxy-style URLs build the right transport."""
    assert isinstance(transport_for_url(url), kind)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:14550", "unknown scheme '127.0.0.1'"),
        ("tcp:localhost", "expected HOST:PORT"),
        ("udpin:host:99999", "expected HOST:PORT"),
        ("serial:", "no serial device"),
        ("nothing", "no scheme"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    """Test that malformed URLs raise TransportError naming the problem and the accepted forms."""
    with pytest.raises(TransportError, match=message):
        transport_for_url(url)


async def test_udpin_answers_the_last_sender() -> None:
    """Test that udpin receives from udpout and replies to it."""
    listener = UdpTransport("udpin", "127.0.0.1", 0, listen=True)
    await listener.open()
    assert listener._transport is not None
    port = listener._transport.get_extra_info("sockname")[1]
    sender = UdpTransport("udpout", "127.0.0.1", port, listen=False)
    await sender.open()
    listener.write(b"lost: nobody has spoken yet")
    sender.write(b"ping")
    assert await asyncio.wait_for(listener.read(), 1) == b"ping"
    listener.write(b"pong")
    assert await asyncio.wait_for(sender.read(), 1) == b"pong"
    assert listener.stats.writes_dropped == 1
    await sender.close()
    await listener.close()
    with pytest.raises(LinkClosed):
        await listener.read()


async def test_tcp_reconnects_after_the_peer_drops() -> None:
    """Test that a TCP transport whose server drops it reconnects by itself and data flows again."""
    connections: list[asyncio.StreamWriter] = []
    arrived = asyncio.Queue[bytes]()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while data := await reader.read(100):
            await arrived.put(data)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = TcpTransport("tcp", "127.0.0.1", port, backoff=FAST, open_timeout_s=2)
    await transport.open()
    transport.write(b"one")
    assert await asyncio.wait_for(arrived.get(), 1) == b"one"
    connections[0].close()
    await eventually(lambda: len(connections) == 2)
    transport.write(b"two")
    assert await asyncio.wait_for(arrived.get(), 1) == b"two"
    connections[1].write(b"back")
    assert await asyncio.wait_for(transport.read(), 1) == b"back"
    assert transport.stats.reconnects == 1
    await transport.close()
    for writer in connections:
        writer.close()
        await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_tcp_open_gives_up_after_its_timeout() -> None:
    """Test that opening TCP to a closed port fails within open_timeout_s with the reason."""
    transport = TcpTransport("tcp:127.0.0.1:9", "127.0.0.1", 9, backoff=FAST, open_timeout_s=0.3)
    with pytest.raises(TransportError, match=r"could not connect within 0.3 s"):
        await transport.open()


def _pty(link: Path) -> int:
    master, slave = os.openpty()
    tty.setraw(master)
    name = os.ttyname(slave)
    os.close(slave)
    link.unlink(missing_ok=True)
    link.symlink_to(name)
    return master


async def test_serial_reads_writes_and_reconnects(tmp_path: Path) -> None:
    """Test that the serial transport moves bytes both ways on a tty, and reopens it after it vanishes
    (a USB adapter unplugged and plugged back)."""
    link = tmp_path / "ttyFC"
    master = _pty(link)
    transport = SerialTransport(f"serial:{link}", str(link), 57600, backoff=FAST, open_timeout_s=2)
    await transport.open()
    os.write(master, b"from the autopilot")
    assert await asyncio.wait_for(transport.read(), 1) == b"from the autopilot"
    transport.write(b"from us")
    await eventually(lambda: bool(select.select([master], [], [], 0)[0]))
    assert os.read(master, 100) == b"from us"

    os.close(master)  # unplugged
    await eventually(lambda: not transport.connected)
    master = _pty(link)  # plugged back: a new tty behind the same name
    await eventually(lambda: transport.connected)
    os.write(master, b"again")
    assert await asyncio.wait_for(transport.read(), 1) == b"again"
    assert transport.stats.reconnects == 1
    await transport.close()
    os.close(master)
