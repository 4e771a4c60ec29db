"""``flightctl run --config FILE``: the onboard daemon (systemd runs it on the companion computer)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from flightctl.cli.common import fail, load_or_exit, run_service

ConfigOption = Annotated[Path, typer.Option("--config", help="Daemon config (.toml), e.g. configs/onboard/sitl.toml.")]


def run_daemon(config: ConfigOption) -> None:
    """Run the onboard daemon: orders in over MQTT, one delivery at a time, events and telemetry out.
    SIGTERM or Ctrl-C stops it without touching the vehicle (exit 0); a delivery in flight resumes when it
    is started again with the same journal."""
    from flightctl.config import load_telemetry_config, named_config, read_yaml_model
    from flightctl.daemon.daemon import Daemon
    from flightctl.daemon.settings import load_daemon_config
    from flightctl.delivery.leg_files import check_flyable, load_legs
    from flightctl.delivery.order import Site, VehicleProfile
    from flightctl.errors import FlightctlError
    from flightctl.vehicle.telemetry import stream_rates

    settings = load_or_exit(load_daemon_config, config)
    try:
        site = read_yaml_model(named_config("sites", settings.site), Site)
        profile = read_yaml_model(named_config("profiles", settings.profile), VehicleProfile)
        legs = load_legs(settings.legs)
        check_flyable(legs, profile)
        daemon = Daemon(settings, site, profile, stream_rates(load_telemetry_config().rates_hz), legs=legs)
    except FlightctlError as exc:
        raise fail(exc) from None
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("flightctl").setLevel(logging.INFO)  # a daemon's log is its journald record

    run_service(daemon.run, on_stop=daemon.request_stop)
