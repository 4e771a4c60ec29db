"""The customer's tracking page as text: an order's statuses in the catalogue's words and the site's local time.

Pure: statuses, words, a time zone and the present moment in; the page's HTML, or one live update's data, out.
The customer reads what is happening now, when it will arrive and what (if anything) to do, before a short
timeline; never a UTC or ISO time (those stay in attributes, for machines), never an internal state name.
"""

from __future__ import annotations

import enum
import html
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flightctl.ground.customer_status import FAILED_STEPS, CustomerStatus, Step
from flightctl.ground.registry import ShownStatus
from flightctl.ground.tracking_words import Words

# The estimate is the planned flight plus an allowance for the drop (customer_status); a range around it is
# what a customer can plan by: wind and the hold make a drone later more often than earlier.
ETA_EARLY = timedelta(minutes=2)
ETA_LATE = timedelta(minutes=3)
# A time this close to a change of the clocks (GMT to BST and back) says which it is in.
CLOCK_CHANGE_WINDOW = timedelta(days=7)
REFRESH_S = 60  # without JavaScript the page reloads itself this often


class Situation(enum.StrEnum):
    """What the page says is happening now: the catalogue's headline and action keys."""

    RECEIVED = "received"
    BOOKED = "booked"
    ON_ITS_WAY = "on_its_way"
    ARRIVING = "arriving"
    DELIVERED = "delivered"
    AT_AIRSTRIP = "at_airstrip"  # an island leg delivered its load to the island's airstrip: collect it there
    DELAYED = "delayed"
    FAILED = "failed"


_BY_STATUS = {
    CustomerStatus.ACCEPTED: Situation.BOOKED,
    CustomerStatus.DEPARTED: Situation.ON_ITS_WAY,
    CustomerStatus.ARRIVING: Situation.ARRIVING,
    CustomerStatus.DELIVERED: Situation.DELIVERED,
    CustomerStatus.PROBLEM: Situation.DELAYED,
}


def situation_of(status: ShownStatus | None) -> Situation:
    if status is None:
        return Situation.RECEIVED
    if status.status is CustomerStatus.PROBLEM and status.step in FAILED_STEPS:
        return Situation.FAILED
    if status.status is CustomerStatus.DELIVERED and status.step == Step.ARRIVED_AT_AIRSTRIP:
        return Situation.AT_AIRSTRIP
    return _BY_STATUS[status.status]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def near_clock_change(at: datetime, zone: ZoneInfo) -> bool:
    offsets = {(at + shift).astimezone(zone).utcoffset() for shift in (-CLOCK_CHANGE_WINDOW, CLOCK_CHANGE_WINDOW)}
    return len(offsets | {at.astimezone(zone).utcoffset()}) > 1


def clock(at: datetime, zone: ZoneInfo, now: datetime) -> str:
    """``14:10`` today, ``Mon 30 Nov, 14:10`` on another day; with the zone's name near a clock change."""
    local = at.astimezone(zone)
    text = f"{local:%H:%M}" if local.date() == now.astimezone(zone).date() else when(at, zone)
    if near_clock_change(at, zone) and not text.endswith(local.tzname() or ""):
        text += f" {local.tzname()}"
    return text


def when(at: datetime, zone: ZoneInfo) -> str:
    """``Mon 30 Nov, 14:10``: the day and the time, as a person writes them (in English month and day names:
    the catalogue's language governs the sentences; a translated catalogue gets the same numbers)."""
    local = at.astimezone(zone)
    text = f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"
    return f"{text} {local.tzname()}" if near_clock_change(at, zone) else text


def step_text(status: ShownStatus, words: Words) -> str:
    try:
        text = str(getattr(words.step, Step(status.step).value))
    except ValueError:
        return status.step  # a registry from before steps holds the sentence itself
    return text.format(airstrip=airstrip(status, words)) if status.step == Step.ARRIVED_AT_AIRSTRIP else text


def airstrip(status: ShownStatus, words: Words) -> str:
    """The airstrip a leg arrived at, by name; the catalogue's words for one unnamed (an event without it)."""
    return status.place or words.unnamed_airstrip


@dataclass(frozen=True)
class Present:
    situation: Situation
    headline: str
    detail: str  # "" when the headline says it all
    eta: str  # "" when there is none
    action: str  # "" when there is nothing to do


def present(statuses: list[ShownStatus], words: Words, zone: ZoneInfo, now: datetime) -> Present:
    latest = statuses[-1] if statuses else None
    situation = situation_of(latest)
    headline = str(getattr(words.headline, situation.value))
    action = str(getattr(words.action, situation.value))
    if situation in (Situation.DELIVERED, Situation.AT_AIRSTRIP) and latest is not None:
        place = airstrip(latest, words)
        headline = headline.format(time=clock(utc(latest.at_utc), zone, now), airstrip=place)
        action = action.format(airstrip=place)
    detail = step_text(latest, words) if latest is not None else words.step.received
    if detail.rstrip(".") == headline:
        detail = ""  # said once is enough ("Your parcel is on its way")
    eta = ""
    if latest is not None and latest.eta_utc is not None:
        expected = utc(latest.eta_utc)
        if situation is Situation.ARRIVING:
            minutes = math.ceil((expected - now).total_seconds() / 60)
            eta = words.arriving_in.format(minutes=minutes) if minutes >= 1 else words.arriving_now
        elif situation is Situation.ON_ITS_WAY:
            early, late = clock(expected - ETA_EARLY, zone, now), clock(expected + ETA_LATE, zone, now)
            eta = words.expected_between.format(early=early, late=late)
    return Present(situation, headline, detail, eta, action)


def status_event(statuses: list[ShownStatus], words: Words, zone: ZoneInfo, now: datetime) -> dict[str, object]:
    """The live update for the last of ``statuses``: the page's present and its timeline entry, in words."""
    latest = statuses[-1]
    now_view = present(statuses, words, zone, now)
    return {
        "order_id": latest.order_id,
        "seq": latest.seq,
        "status": latest.status.value,
        "situation": now_view.situation.value,
        "headline": now_view.headline,
        "message": step_text(latest, words),  # the timeline's entry
        "detail": now_view.detail,
        "eta": now_view.eta,
        "action": now_view.action,
        "when": when(utc(latest.at_utc), zone),
        "datetime": latest.at_utc,
        "final": now_view.situation in (Situation.DELIVERED, Situation.AT_AIRSTRIP, Situation.FAILED),
    }


def _optional(element_id: str, text: str) -> str:
    hidden = "" if text else " hidden"
    return f'<p id="{element_id}"{hidden}>{html.escape(text)}</p>'


def _head(words: Words, title: str, *, refresh: bool) -> str:
    reload = f'<noscript><meta http-equiv="refresh" content="{REFRESH_S}"></noscript>' if refresh else ""
    return f"""<!doctype html>
<html lang="{html.escape(words.language)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">{reload}
<title>{html.escape(title)}</title><link rel="stylesheet" href="/track.css"></head>"""


def page_html(order_id: str, statuses: list[ShownStatus], words: Words, zone: ZoneInfo, now: datetime) -> str:
    view = present(statuses, words, zone, now)
    latest = statuses[-1].status.value if statuses else "RECEIVED"
    items = "\n".join(
        f'<li class="status" data-seq="{s.seq}"><time class="when" datetime="{html.escape(s.at_utc)}">'
        f"{html.escape(when(utc(s.at_utc), zone))}</time> "
        f'<span class="what">{html.escape(step_text(s, words))}</span></li>'
        for s in statuses
    )
    headline = (
        f'<p id="current" class="headline" data-status="{latest}" data-situation="{view.situation.value}">'
        f"{html.escape(view.headline)}</p>"
    )
    updates = (
        f'<p class="updates"><span id="live-note" hidden>{html.escape(words.updated_live)}</span>'
        f"<noscript>{html.escape(words.refresh)}</noscript></p>"
    )
    return f"""{_head(words, words.title, refresh=True)}
<body><main>
<h1>{html.escape(words.title)}</h1>
<p class="order">{html.escape(words.order.format(order_id=order_id))}</p>
<section class="now {view.situation.value}" aria-labelledby="now-heading">
<h2 id="now-heading">{html.escape(words.now)}</h2>
<div id="live" role="status" aria-live="polite" aria-atomic="true">
{headline}
{_optional("detail", view.detail)}
{_optional("eta", view.eta)}
{_optional("action", view.action)}
</div>
</section>
<section aria-labelledby="progress-heading">
<h2 id="progress-heading">{html.escape(words.progress)}</h2>
<ol id="statuses" class="timeline">
{items}
</ol>
</section>
{updates}
</main><script src="/track.js"></script></body></html>
"""


def unknown_html(words: Words) -> str:
    """The page for a link that leads to no order (unknown, expired, revoked: all the same, naming none)."""
    return f"""{_head(words, words.unknown.title, refresh=False)}
<body><main>
<h1>{html.escape(words.unknown.title)}</h1>
<p>{html.escape(words.unknown.body)}</p>
</main></body></html>
"""
