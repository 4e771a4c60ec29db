"""``flightctl events``: follow a drone's events, each once (de-duplicated by sequence number), gaps named."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from flightctl.cli.broker_options import (
    BrokerOption,
    CaFileOption,
    DroneOption,
    PasswordFileOption,
    UsernameOption,
    drone_or_exit,
    endpoint_or_exit,
)
from flightctl.cli.common import console, errors, run

if TYPE_CHECKING:
    from flightctl.mqtt.contract import Envelope


def event_line(envelope: Envelope) -> Text:
    data = dict(envelope.data)
    what = data.pop("state", None) or envelope.type.value
    detail = data.pop("detail", None) if "detail" in data else None
    rest = {k: v for k, v in data.items() if v is not None}
    if detail:
        rest |= detail
    return Text.assemble(
        (f"{envelope.seq or '-':>6} ", "dim"),
        (f"{envelope.time.strftime('%H:%M:%S')} ", "dim"),
        (f"{envelope.order_id or '':<12} ", "cyan"),
        (f"{what:<15} ", "bold"),
        json.dumps(rest, separators=(",", ":")) if rest else "",
    )


def events(
    broker: BrokerOption,
    drone: DroneOption,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    ca_file: CaFileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One envelope per line, as JSON.")] = False,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Stop after this many events.")] = None,
) -> None:
    """Follow a drone's events as they arrive (Ctrl-C stops): each event once, in the drone's order."""
    from flightctl.mqtt.broker import tool_connection
    from flightctl.mqtt.consumer import NotAnEnvelope, SequenceTracker, read_envelope
    from flightctl.mqtt.contract import Topics

    endpoint = endpoint_or_exit(broker, username, password_file, ca_file)
    topics = Topics(drone_or_exit(drone))

    async def go() -> None:
        tracker = SequenceTracker()
        seen = 0
        async with tool_connection(endpoint, "events") as client:
            await client.subscribe(topics.events, qos=1)
            errors.print(Text(f"following {topics.events} on {endpoint}", style="dim"))
            async for message in client.messages:
                try:
                    envelope = read_envelope(message.payload)
                except NotAnEnvelope as exc:
                    errors.print(Text(f"not an event on {message.topic}: {exc}"))
                    continue
                if envelope.seq is None or not tracker.accept(envelope.seq):
                    continue
                if as_json:
                    sys.stdout.write(envelope.model_dump_json(by_alias=True) + "\n")
                    sys.stdout.flush()
                else:
                    console.print(event_line(envelope))
                    if missing := tracker.missing():
                        errors.print(Text(f"events not (yet) received: {missing}", style="yellow"))
                seen += 1
                if count is not None and seen >= count:
                    return

    run(go)
