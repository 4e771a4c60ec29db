"""``flightctl relay --config FILE``: the status relay and the tracking page, in one program."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from flightctl.cli.common import errors, load_or_exit, run_service


def relay(config: Annotated[Path, typer.Option("--config", help="Relay config (.toml).")]) -> None:
    """Turn every drone's events into customer statuses (shared subscription, de-duplicated by drone and sequence
    number) and serve the tracking pages; SIGTERM or Ctrl-C stops it (exit 0)."""
    from flightctl.gc_pauses import GcPauses, freeze_startup
    from flightctl.ground.ops import ops_app
    from flightctl.ground.registry import Registry
    from flightctl.ground.relay import StatusRelay
    from flightctl.ground.relay_settings import load_relay_config
    from flightctl.ground.serving import listening_socket, serving
    from flightctl.ground.status_snapshots import StatusSnapshots
    from flightctl.ground.tracking import FailedLookups, tracking_app
    from flightctl.ground.tracking_words import load_words
    from flightctl.loop_stalls import LoopStalls

    settings = load_or_exit(load_relay_config, config)
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("flightctl").setLevel(logging.INFO)

    async def serve() -> None:
        # Both listeners are bound before the registry is opened: a port in use is refused with nothing made.
        http_socket = listening_socket(settings.http.host, settings.http.port)
        ops_socket = listening_socket(settings.ops.host, settings.ops.port) if settings.ops is not None else None
        async with contextlib.AsyncExitStack() as servers:
            servers.callback(http_socket.close)  # if they were never served (their servers close them otherwise)
            if ops_socket is not None:
                servers.callback(ops_socket.close)
            registry = await servers.enter_async_context(
                await Registry.open(settings.registry, password=settings.registry_password())
            )
            status_relay = StatusRelay(
                registry,
                settings.endpoints(),
                name=settings.name,
                share_group=settings.share_group,
                logbook=settings.logbook,
            )
            # Pages read each order's statuses from a snapshot the registry's change notices keep current.
            lookup = registry.tracked_order if registry.notices_cover_orders else None
            snapshots = StatusSnapshots(registry.statuses, lookup=lookup)
            await servers.enter_async_context(registry.following_changes(snapshots.changed, snapshots.set_live))
            app = tracking_app(
                registry,
                snapshots=snapshots,
                failed_lookups=FailedLookups(limit=settings.http.failed_lookups_per_minute),
                trusted_proxies=frozenset(settings.http.trusted_proxies),
                words=load_words(settings.tracking.words),
                zone=settings.tracking.zone(),
            )
            await servers.enter_async_context(serving(app, settings.http.host, settings.http.port, sock=http_socket))
            errors.print(f"relay {settings.name}: tracking pages on http://{settings.http.host}:{settings.http.port}")
            credentials = settings.ops_credentials()
            if settings.ops is not None and credentials is not None and ops_socket is not None:
                ops = ops_app(
                    registry,
                    credentials=credentials,
                    failed_logins=FailedLookups(limit=settings.ops.failed_logins_per_minute),
                    extra=lambda: {
                        "relay": settings.name,
                        **asdict(status_relay.stats),
                        "aircraft": status_relay.aircraft.view(),
                    },
                )
                await servers.enter_async_context(serving(ops, settings.ops.host, settings.ops.port, sock=ops_socket))
                errors.print(
                    f"relay {settings.name}: operators' view on http://{settings.ops.host}:{settings.ops.port}/ops"
                )
            # Start-up is over: no collection walks what it built again (gc_pauses.py), so no page view or event
            # waits out a full collection of the imports.
            freeze_startup()
            servers.callback(GcPauses().install().remove)
            servers.callback(LoopStalls.configured().start().stop)  # anything else holding the loop, named in the log
            await status_relay.run()

    run_service(serve)
