"""From a journal (and the tlogs beside it) to the report's files: ``<order>-report.html`` and
``<order>-report.json``, written whole or not at all (a temporary file renamed into place)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flightctl.delivery.journal import Journal
from flightctl.errors import ConfigError
from flightctl.report.flight import FlightReport, flight_report
from flightctl.report.tlog_samples import Samples, read_tlogs


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    report: FlightReport


def tlogs_beside(journal_path: Path, order_id: str) -> list[Path]:
    """The order's tlogs in the journal's folder (``<order>-<UTC time>.tlog`` and its rotations), oldest first:
    one per run of the controller, each with its rotated parts before it."""
    pattern = re.compile(rf"^{re.escape(order_id)}-(\d{{8}}T\d{{6}}Z)\.tlog(?:\.(\d+))?$")
    found = []
    for path in journal_path.parent.iterdir():
        if (match := pattern.match(path.name)) is not None:
            found.append((match.group(1), -int(match.group(2) or 0), path))
    return [path for *_key, path in sorted(found)]


async def load(journal_path: Path, order_id: str | None, tlogs: list[Path] | None) -> FlightReport:
    _must_exist(journal_path)
    async with await Journal.open(journal_path, reader=True) as journal:
        known = await journal.order_ids()
        if not known:
            raise ConfigError(f"{journal_path}: the journal holds no flight")
        order_id = order_id or known[-1]
        if order_id not in known:
            raise ConfigError(f"{journal_path}: no order {order_id} (it holds {', '.join(known[-10:])})")
        events = await journal.events(order_id)
    paths = tlogs if tlogs is not None else tlogs_beside(journal_path, order_id)
    samples = read_tlogs(paths) if paths else Samples()
    return flight_report(order_id, events, samples)


def _must_exist(journal_path: Path) -> None:
    if not journal_path.is_file():
        raise ConfigError(f"{journal_path}: no such journal")


def write(report: FlightReport, out: Path) -> ReportFiles:
    from flightctl.report.figures import drop_map, route_map, time_plots
    from flightctl.report.page import render_page

    out.mkdir(parents=True, exist_ok=True)
    page = render_page(report, route_png=route_map(report), drop_png=drop_map(report), plots_png=time_plots(report))
    html, data = out / f"{report.order_id}-report.html", out / f"{report.order_id}-report.json"
    _write_whole(data, json.dumps(report.as_json(), indent=1, default=str))
    _write_whole(html, page)
    return ReportFiles(html, data, report)


def _write_whole(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".part", encoding="utf-8") as f:
        f.write(text)
    os.chmod(f.name, 0o644)  # a report is for sharing, unlike the temporary file's default
    os.replace(f.name, path)
