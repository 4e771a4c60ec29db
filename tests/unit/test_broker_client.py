"""The broker client's waits: a stop (cancellation) must always go through, whatever else happens at the same
moment. Python 3.11's ``asyncio.wait_for``, which aiomqtt 2.x uses for every wait, swallows a cancellation that
arrives in the same loop step as the awaited answer, and the daemon then ignored SIGTERM."""

from __future__ import annotations

import asyncio
import sys

import aiomqtt
import pytest

from flightctl.mqtt.broker import ConfirmedClient


async def cancelled_as_the_answer_arrives(client: aiomqtt.Client) -> asyncio.Task[object]:
    answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(client._wait_for(answer, timeout=5))
    await asyncio.wait({waiting}, timeout=0.05)  # it is now waiting for the answer
    answer.set_result("PUBACK")
    waiting.cancel()
    await asyncio.wait({waiting}, timeout=5)
    return waiting


async def test_a_stop_that_arrives_with_the_answer_is_never_swallowed() -> None:
    waiting = await cancelled_as_the_answer_arrives(ConfirmedClient("127.0.0.1"))
    assert waiting.cancelled()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 rewrote wait_for on asyncio.timeout")
async def test_aiomqtts_own_wait_swallows_it_which_is_why_ours_exists() -> None:
    waiting = await cancelled_as_the_answer_arrives(aiomqtt.Client("127.0.0.1"))
    assert not waiting.cancelled()
    assert waiting.result() == "PUBACK"


async def test_a_wait_past_its_deadline_is_aiomqtts_timeout_error() -> None:
    never: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    with pytest.raises(aiomqtt.MqttError, match="timed out"):
        await ConfirmedClient("127.0.0.1")._wait_for(never, timeout=0.05)
    assert never.cancelled()
