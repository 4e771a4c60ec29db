"""The MQTT client's waits and failures, without a broker: a stop (cancellation) always goes through, every wait
has a deadline that says what did not come, and a client is never reused for a second connection.

Against a real mosquitto: tests/mqtt/ and tests/ground/."""

from __future__ import annotations

import asyncio
import socket

import pytest

from flightctl.mqtt.client import BrokerUnavailable, MqttClient


def client_for(port: int) -> MqttClient:
    return MqttClient("127.0.0.1", port, client_id="flightctl-test", timeout_s=0.3)


async def test_a_stop_that_arrives_with_the_answer_is_never_swallowed() -> None:
    """Python 3.11's ``asyncio.wait_for`` swallows a cancellation that arrives in the same loop step as the awaited
    answer (the daemon once ignored SIGTERM so); our waits use ``asyncio.timeout``, which never does."""
    client = client_for(9)
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(client._wait(answer, 5, "PUBACK"))
    await asyncio.wait({waiting}, timeout=0.05)  # it is now waiting for the answer
    answer.set_result("PUBACK")
    waiting.cancel()
    await asyncio.wait({waiting}, timeout=5)
    assert waiting.cancelled()


async def test_a_wait_past_its_deadline_says_what_did_not_come() -> None:
    never: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    with pytest.raises(BrokerUnavailable, match=r"no PUBACK for the message on t within 0\.05 s"):
        await client_for(9)._wait(never, 0.05, "PUBACK for the message on t")
    assert never.cancelled()


async def test_no_broker_listening_is_unavailable_and_names_where() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{port}"):
        async with client_for(port):
            pass


async def test_a_listener_that_never_answers_the_connect_times_out_on_the_connack() -> None:
    """A port that accepts the TCP connection and says nothing (a firewall, a hung broker) fails on its deadline."""
    server = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(BrokerUnavailable, match=r"no CONNACK within 0\.3 s"):
            async with client_for(server.getsockname()[1]):
                pass
    finally:
        server.close()


async def test_a_client_is_never_used_for_a_second_connection() -> None:
    client = client_for(9)
    with pytest.raises(BrokerUnavailable):
        async with client:
            pass
    with pytest.raises(RuntimeError, match="fresh one"):
        async with client:
            pass
