"""One request/reply exchange on a link: send, await the matching reply, send again per the policy.

Parameters, commands, signing setup and mission clear all work this way; each names what it waited for in
its own typed error, raised by the caller from ``NoReply``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from flightctl.dialect import MAVLinkMessage
from flightctl.errors import LinkClosed, VehicleTimeout
from flightctl.link.connection import MavConnection
from flightctl.link.inbox import Inbox

log = logging.getLogger(__name__)

COMMAND_RTT = "command"  # the round trip of single requests (commands, parameters), sampled for the others


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for each reply, and how many times to send: the same shape for every sibling."""

    reply_timeout_s: float = 1.5
    attempts: int = 3


class NoReply(VehicleTimeout):
    """Every attempt went unanswered."""

    def __init__(self, what: str, policy: RetryPolicy) -> None:
        self.policy = policy
        super().__init__(f"{what}: no reply after {policy.attempts} attempt(s) of {policy.reply_timeout_s:g} s each")


async def request(
    connection: MavConnection,
    message: MAVLinkMessage | Callable[[int], MAVLinkMessage],
    replies: Inbox,
    policy: RetryPolicy,
) -> tuple[MAVLinkMessage, int]:
    """The first reply and the attempt (0-based) it answered; ``NoReply`` when none came.

    ``message`` may be built per attempt (commands count their resends in ``confirmation``). ``replies`` must
    be registered before this is called, so a reply cannot arrive before anyone listens.
    """
    loop = asyncio.get_running_loop()
    for attempt in range(policy.attempts):
        connection.send(message(attempt) if callable(message) else message)
        sent_at = loop.time()
        try:
            reply = await replies.next(policy.reply_timeout_s)
        except VehicleTimeout:
            log.info("%s: no reply to attempt %d/%d", replies.what, attempt + 1, policy.attempts)
            continue
        if attempt == 0:
            # A sample of the link's round trip (Karn: only a first sending's), which the transfers that
            # follow (mission, MAVFTP) start from instead of probing: connecting asks a few of these.
            connection.rtt(COMMAND_RTT, min_timeout_s=0.0, max_timeout_s=policy.reply_timeout_s).sample(
                loop.time() - sent_at
            )
        return reply, attempt
    raise NoReply(replies.what, policy)


async def explanation(texts: Inbox, *, grace_s: float = 0.0, keep: int = 4) -> str:
    """What the vehicle said about a refusal: the last ``keep`` STATUSTEXTs queued in ``texts``.

    ArduPilot explains in STATUSTEXT ("Arm: Mode not armable"), queued for sending, so the text often arrives
    just after the answer: with ``grace_s`` it is allowed that moment when none has come yet.
    """
    lines: list[str] = []
    with contextlib.suppress(LinkClosed):
        while (message := texts.get_nowait()) is not None:
            lines.append(str(message.text))
        if not lines and grace_s > 0:
            with contextlib.suppress(VehicleTimeout):
                lines.append(str((await texts.next(grace_s)).text))
    return "; ".join(lines[-keep:])
