"""One self-contained HTML file for a flight: images embedded as data URIs, styles inline, no script, and a
Content-Security-Policy that forbids fetching anything, so it opens the same in a hangar with no network.
Every text from the journal is escaped: a reason or a status text is data, never markup."""

from __future__ import annotations

import base64
import json
from html import escape
from typing import Any

from flightctl.report.flight import FlightReport

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1100px; color: #1d1d1d; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { padding: 0.2rem 0.6rem; text-align: left;
vertical-align: top; border-bottom: 1px solid #eee; } .nogo { color: #b00020; font-weight: 600; }
.missing { background: #fff4e5; border: 1px solid #f0b35a; padding: 0.6rem 1rem; }
img { max-width: 100%; } .verdict { font-size: 1.1rem; } code { font-size: 0.85rem; }
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _image(png: bytes | None, alt: str) -> str:
    if png is None:
        return f"<p><em>{escape(alt)}: nothing to draw</em></p>"
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _rows(rows: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)


def _number(value: float | None, unit: str, digits: int = 1) -> str:
    return "unknown" if value is None else f"{value:.{digits}f} {unit}"


def summary_rows(report: FlightReport) -> list[tuple[str, Any]]:
    outcome, energy, release = report.outcome, report.energy, report.release
    rows: list[tuple[str, Any]] = [
        ("order", report.order_id),
        ("outcome", outcome.verdict),
        ("final state", outcome.state.value),
        ("started (UTC)", report.started_utc),
    ]
    if outcome.abort_reason:
        rows.append(("abort reason", outcome.abort_reason))
    if release is not None:
        rows.append(("release point", f"{release.lat:.7f}, {release.lon:.7f}"))
        rows.append(("release distance from the target", _number(release.distance_m, "m", 2)))
        rows.append(("release distance (controller, at the release)", _number(release.journal_distance_m, "m", 2)))
        if release.track_inside_zone is not None:
            rows.append(
                ("track at the release", "inside the zone" if release.track_inside_zone else "OUTSIDE the zone")
            )
    rows += [
        ("energy used (autopilot)", _number(energy.journal_used_wh, "Wh")),
        ("energy used (volts x amps, tlog)", _number(energy.integrated_wh, "Wh")),
        ("planned need / reserve / available", " / ".join(_number(v, "Wh") for v in _budget(report))),
    ]
    rows += [(f"time {phase}", f"{seconds:.0f} s") for phase, seconds in outcome.phase_times_s.items()]
    return rows


def _budget(report: FlightReport) -> tuple[float | None, float | None, float | None]:
    energy = report.energy
    return energy.needed_wh, energy.reserve_wh, energy.available_wh


def render_page(
    report: FlightReport, *, route_png: bytes | None, drop_png: bytes | None, plots_png: bytes | None
) -> str:
    missing = (
        '<div class="missing"><strong>Not in this report</strong><ul>'
        + "".join(f"<li>{escape(line)}</li>" for line in report.missing)
        + "</ul></div>"
        if report.missing
        else ""
    )
    checks = "".join(
        f'<tr><td class="{"nogo" if line.startswith("NO-GO") else ""}">{escape(line)}</td></tr>'
        for line in report.checks
    )
    aborts = "".join(f'<li class="nogo">{escape(line)}</li>' for line in report.aborts) or "<li>none</li>"
    interlocks = (
        "<pre>" + escape(json.dumps(report.interlocks, indent=2, sort_keys=True)) + "</pre>"
        if report.interlocks
        else "<p>no release interlock check on record</p>"
    )
    timeline = "".join(
        f"<tr><td>{entry.t_s:.1f}</td><td>{escape(entry.kind)}</td><td>{escape(entry.name)}</td>"
        f"<td>{escape(entry.line)}</td></tr>"
        for entry in report.timeline
    )
    tlog = ", ".join(report.samples.files) or "none"
    drop = f"<h2>At the drop</h2>{_image(drop_png, 'the drop zone close up')}" if drop_png else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flight report {escape(report.order_id)}</title><style>{STYLE}</style></head>
<body>
<h1>Flight report: {escape(report.order_id)}</h1>
<p class="verdict">{escape(report.outcome.verdict)} ({escape(report.outcome.state.value)})</p>
{missing}
<h2>Summary</h2><table>{_rows(summary_rows(report))}</table>
<h2>Map</h2>{_image(route_png, "planned route and flown track")}
{drop}
<h2>Against time</h2>{_image(plots_png, "altitude, speed, battery, energy, wind and mode")}
<h2>Go/no-go</h2><table>{checks or "<tr><td>no go/no-go on record</td></tr>"}</table>
<h2>Aborts, diversions and losses</h2><ul>{aborts}</ul>
<h2>Release interlocks</h2>{interlocks}
<h2>State timeline</h2>
<table><tr><th>t (s)</th><th>kind</th><th>what</th><th>detail</th></tr>{timeline}</table>
<h2>Sources</h2><p>journal events: {len(report.timeline)}; telemetry log: <code>{escape(tlog)}</code></p>
</body></html>
"""
