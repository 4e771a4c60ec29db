"""Ending a background task: its own end is reported, and a stop meant for the caller is never swallowed."""

from __future__ import annotations

import asyncio
import contextlib

from flightctl.tasks import cancel_and_wait


async def test_a_task_that_ends_on_its_cancellation_reports_nothing() -> None:
    task = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    assert await cancel_and_wait(task) is None
    assert task.cancelled()


async def test_a_task_that_failed_reports_its_error() -> None:
    async def fails() -> None:
        raise ValueError("bad byte")

    task = asyncio.create_task(fails())
    await asyncio.wait({task})
    error = await cancel_and_wait(task)
    assert isinstance(error, ValueError)


def lingering(slow_to_end: asyncio.Event) -> asyncio.Task[None]:
    """A task that, told to stop, takes until ``slow_to_end`` is set to end (a close that flushes something)."""

    async def lingers() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await slow_to_end.wait()

    return asyncio.create_task(lingers())


async def test_the_callers_own_stop_goes_through_while_it_waits() -> None:
    """The caller is cancelled while the task takes its time to end: the caller stops, as it was told to. With
    ``suppress(CancelledError): await task`` it would have carried on."""
    slow_to_end = asyncio.Event()
    background = lingering(slow_to_end)
    await asyncio.sleep(0)
    carried_on = False

    async def owner() -> None:
        nonlocal carried_on
        await cancel_and_wait(background)
        carried_on = True

    owner_task = asyncio.create_task(owner())
    await asyncio.sleep(0.01)
    owner_task.cancel()
    await asyncio.wait({owner_task})
    assert owner_task.cancelled()
    assert not carried_on
    slow_to_end.set()
    await asyncio.wait({background})


async def test_the_old_idiom_swallows_it_which_is_why_this_exists() -> None:
    slow_to_end = asyncio.Event()
    background = lingering(slow_to_end)
    await asyncio.sleep(0)

    async def owner() -> str:
        background.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background
        return "carried on"

    owner_task = asyncio.create_task(owner())
    await asyncio.sleep(0.01)
    owner_task.cancel()
    slow_to_end.set()
    await asyncio.wait({owner_task})
    assert not owner_task.cancelled()
    assert owner_task.result() == "carried on"
