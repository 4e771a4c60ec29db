"""The client's socket handling on the event loop, against a real mosquitto that dies mid-write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flightctl.mqtt.broker import make_client
from flightctl.mqtt.client import BrokerUnavailable, MqttClient
from sitl.mosquitto import Mosquitto
from tests.mqtt.clients import endpoint
from tests.mqtt.conftest import DRONE


async def drain(client: MqttClient) -> None:
    async for _message in client.messages:
        pass


async def test_a_broker_killed_with_writes_pending_ends_the_client_without_loop_errors(broker: Mosquitto) -> None:
    """Test that a broker killed while the client still has megabytes to write ends the client with
    ``BrokerUnavailable``, and that the loop never runs a callback on the closed socket (the selector then
    raised EBADF in 'Exception in callback remove_writer', once per connection)."""
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    try:
        client = make_client(endpoint(broker, DRONE), client_id="writer")
        async with client:
            payload = b"x" * 256_000
            for n in range(40):  # ~10 MB: far more than the socket buffer takes, so a writer is registered
                await client.publish(f"flightctl/v1/drone-a/bulk/{n}", payload, qos=1)
            await broker.kill()
            with pytest.raises(BrokerUnavailable):
                await asyncio.wait_for(drain(client), timeout=30)
            for _ in range(3):  # let anything the close scheduled run
                await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert loop_errors == [], [context.get("message") for context in loop_errors]
