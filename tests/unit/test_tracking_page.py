"""The tracking page's words and times, as data: what a customer reads for each status, in the site's local time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flightctl.delivery.events import DeliveryState
from flightctl.errors import ConfigError
from flightctl.ground.customer_status import CustomerStatus, Step
from flightctl.ground.registry import ShownStatus
from flightctl.ground.tracking_page import Situation, clock, page_html, present, status_event, unknown_html, when
from flightctl.ground.tracking_words import load_words

LONDON = ZoneInfo("Europe/London")
WORDS = load_words()


def shown(
    status: CustomerStatus,
    step: Step | str,
    at: datetime,
    seq: int,
    eta: datetime | None = None,
    place: str | None = None,
) -> ShownStatus:
    text = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    eta_text = eta.strftime("%Y-%m-%dT%H:%M:%SZ") if eta is not None else None
    return ShownStatus("KWL-1", status, text, str(step), eta_text, seq, place)


WINTER = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
BOOKED = shown(CustomerStatus.ACCEPTED, Step.BOOKED, WINTER, 1)
DEPARTED = shown(
    CustomerStatus.DEPARTED, Step.ON_ITS_WAY, WINTER + timedelta(minutes=2), 3, WINTER + timedelta(minutes=9)
)
ARRIVING = shown(
    CustomerStatus.ARRIVING, Step.ABOVE_DROP, WINTER + timedelta(minutes=8), 5, WINTER + timedelta(minutes=10)
)
DELIVERED = shown(CustomerStatus.DELIVERED, Step.DELIVERED, WINTER + timedelta(minutes=10), 7)
RETURNING = shown(CustomerStatus.PROBLEM, Step.RETURNING, WINTER + timedelta(minutes=6), 6)
NOT_LEFT = shown(CustomerStatus.PROBLEM, Step.NOT_LEFT, WINTER + timedelta(minutes=1), 2)
AT_AIRSTRIP = shown(
    CustomerStatus.DELIVERED, Step.ARRIVED_AT_AIRSTRIP, WINTER + timedelta(minutes=10), 7, place="North Ronaldsay"
)

STORIES = {
    Situation.RECEIVED: [],
    Situation.BOOKED: [BOOKED],
    Situation.ON_ITS_WAY: [BOOKED, DEPARTED],
    Situation.ARRIVING: [BOOKED, DEPARTED, ARRIVING],
    Situation.DELIVERED: [BOOKED, DEPARTED, ARRIVING, DELIVERED],
    Situation.AT_AIRSTRIP: [BOOKED, DEPARTED, AT_AIRSTRIP],
    Situation.DELAYED: [BOOKED, DEPARTED, RETURNING],
    Situation.FAILED: [BOOKED, NOT_LEFT],
}


class VisibleText(HTMLParser):
    """The text a person sees: no attributes, no script, no title."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "title", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "title", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def visible(page: str) -> str:
    parser = VisibleText()
    parser.feed(page)
    return " ".join(parser.parts)


def test_an_event_at_2330_utc_reads_in_london_time_in_summer_and_in_winter() -> None:
    """Test that 23:30 UTC in July is half past midnight the next day (BST), and in November 23:30 (GMT)."""
    assert when(datetime(2026, 7, 14, 23, 30, tzinfo=UTC), LONDON) == "Wed 15 Jul, 00:30"
    assert when(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), LONDON) == "Mon 30 Nov, 23:30"


def test_near_a_change_of_the_clocks_a_time_says_which_clock_it_is() -> None:
    """Test that in the week around the last Sunday of March or October a time names GMT or BST, since an
    hour either way is then a real doubt; otherwise it does not."""
    assert when(datetime(2026, 3, 29, 0, 30, tzinfo=UTC), LONDON) == "Sun 29 Mar, 00:30 GMT"
    assert when(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), LONDON) == "Sun 29 Mar, 02:30 BST"
    assert when(datetime(2026, 10, 27, 12, 0, tzinfo=UTC), LONDON) == "Tue 27 Oct, 12:00 GMT"
    assert when(datetime(2026, 6, 10, 12, 0, tzinfo=UTC), LONDON) == "Wed 10 Jun, 13:00"


def test_a_time_today_is_the_clock_alone_another_day_names_the_day() -> None:
    now = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    assert clock(datetime(2026, 11, 30, 14, 10, tzinfo=UTC), LONDON, now) == "14:10"
    assert clock(datetime(2026, 11, 29, 14, 10, tzinfo=UTC), LONDON, now) == "Sun 29 Nov, 14:10"


@pytest.mark.parametrize(
    ("situation", "headline", "eta", "action"),
    [
        (Situation.RECEIVED, "We have your order", "", ""),
        (Situation.BOOKED, "Your parcel is booked on a drone", "", ""),
        (Situation.ON_ITS_WAY, "Your parcel is on its way", "Expected between 14:07 and 14:12", "Nothing to do"),
        (Situation.ARRIVING, "Your parcel is arriving", "Arriving in about 2 minutes", "Nothing to do"),
        (Situation.DELIVERED, "Delivered at 14:10", "", "Please collect your parcel"),
        (
            Situation.AT_AIRSTRIP,
            "Arrived at 14:10",
            "",
            "Please collect your parcel at North Ronaldsay airstrip.",
        ),
        (Situation.DELAYED, "Your delivery is delayed", "", "we will contact you about a new delivery"),
        (Situation.FAILED, "Your parcel could not go by drone", "", "another way to send it"),
    ],
)
def test_the_present_comes_first_in_plain_words(situation: Situation, headline: str, eta: str, action: str) -> None:
    """Test the headline, arrival and what-to-do for each situation a customer can be in, at 14:08 local."""
    now = WINTER + timedelta(minutes=8)
    view = present(STORIES[situation], WORDS, LONDON, now)
    assert view.situation is situation
    assert view.headline == headline
    assert view.eta == eta
    assert action in view.action
    assert view.detail.rstrip(".") != view.headline, "the headline is not said twice"
    if situation is Situation.DELAYED:
        assert view.detail == "The drone is bringing your parcel back to the depot. We will rebook it."
    if situation is Situation.AT_AIRSTRIP:
        assert view.detail == "Your parcel has arrived at North Ronaldsay airstrip."


def test_an_island_airstrip_is_named_escaped_and_a_diversion_never_says_where() -> None:
    """Test that an arrival names its airstrip, escaped like any text from a drone; one whose event did not name
    it reads as the island's airstrip; a diverted leg says it could not land, and names no airstrip."""
    now = WINTER + timedelta(minutes=12)
    hostile = shown(CustomerStatus.DELIVERED, Step.ARRIVED_AT_AIRSTRIP, WINTER, 7, place="<script>x</script>")
    page = page_html("KWL-1", [BOOKED, hostile], WORDS, LONDON, now)
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt; airstrip" in page
    unnamed = shown(CustomerStatus.DELIVERED, Step.ARRIVED_AT_AIRSTRIP, WINTER, 7)
    assert present([unnamed], WORDS, LONDON, now).action == "Please collect your parcel at the island's airstrip."
    diverted = shown(CustomerStatus.PROBLEM, Step.DIVERTED, WINTER, 6)
    view = present([BOOKED, diverted], WORDS, LONDON, now)
    assert view.situation is Situation.DELAYED
    assert view.detail.startswith("The weather closed the island's airstrip")


@pytest.mark.parametrize("situation", list(Situation))
def test_no_iso_time_and_no_internal_name_is_ever_visible(situation: Situation) -> None:
    """Test the visible text of the page in every situation: no ISO-8601 or UTC time, no customer status or
    delivery state in capitals; the order's id and the timeline are there."""
    page = page_html("KWL-1", STORIES[situation], WORDS, LONDON, WINTER + timedelta(minutes=8))
    text = visible(page)
    assert not re.search(r"\d{4}-\d{2}-\d{2}|T\d{2}:\d{2}|UTC|Z\b", text), text
    for name in [*(s.value for s in CustomerStatus), *(s.value for s in DeliveryState), "RECEIVED"]:
        assert name not in text, name
    assert "Order KWL-1" in text
    assert text.count("Mon 30 Nov, 14:") == len(STORIES[situation])
    assert 'lang="en-GB"' in page


def test_a_live_update_carries_the_same_words_as_the_page() -> None:
    """Test that the event for a status says what the page would say with it as the latest."""
    now = WINTER + timedelta(minutes=8)
    story = STORIES[Situation.DELIVERED]
    update = status_event(story, WORDS, LONDON, now)
    view = present(story, WORDS, LONDON, now)
    assert (update["headline"], update["detail"], update["action"]) == (view.headline, view.detail, view.action)
    assert update["message"] == "Your parcel has been delivered."
    assert update["when"] == "Mon 30 Nov, 14:10"
    assert update["final"] is True
    assert status_event(story[:2], WORDS, LONDON, now)["final"] is False


def test_a_sentence_from_a_registry_before_steps_is_shown_as_it_was() -> None:
    old = shown(CustomerStatus.DEPARTED, "The drone has left with your parcel.", WINTER, 3)
    assert present([old], WORDS, LONDON, WINTER).detail == "The drone has left with your parcel."


def test_an_unknown_link_says_what_to_do_and_names_no_order() -> None:
    text = visible(unknown_html(WORDS))
    assert "check the link in your email or text message" in text
    assert "KWL" not in text


def test_a_catalogue_of_its_own_changes_the_words_and_the_language(tmp_path: Path) -> None:
    """Test that an operator's catalogue (here a Welsh headline) is what the page says, with its lang."""
    shipped = (Path(__file__).parents[2] / "flightctl" / "configs" / "tracking" / "en-GB.toml").read_text()
    welsh = shipped.replace('language = "en-GB"', 'language = "cy"').replace(
        'delivered = "Delivered at {time}"', 'delivered = "Wedi cyrraedd am {time}"'
    )
    (tmp_path / "cy.toml").write_text(welsh)
    words = load_words(tmp_path / "cy.toml")
    page = page_html("KWL-1", STORIES[Situation.DELIVERED], words, LONDON, WINTER + timedelta(minutes=20))
    assert "Wedi cyrraedd am 14:10" in visible(page)
    assert 'lang="cy"' in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('delivered = "Delivered at {time}"', 'delivered = "Delivered at {clock}"'), "headline.delivered: {clock}"),
        (('title = "Your parcel"\n', ""), "title"),
        (('language = "en-GB"', 'language = "English"'), "language"),
    ],
)
def test_a_mistaken_catalogue_is_refused_naming_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    shipped = (Path(__file__).parents[2] / "flightctl" / "configs" / "tracking" / "en-GB.toml").read_text()
    (tmp_path / "words.toml").write_text(shipped.replace(*change, 1))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_words(tmp_path / "words.toml")


def test_a_delivery_turned_back_by_the_wind_says_so() -> None:
    """Test the issue's own example: delayed, because of the wind, and rebooked."""
    wind = shown(CustomerStatus.PROBLEM, Step.RETURNING_WIND, WINTER + timedelta(minutes=6), 6)
    view = present([BOOKED, DEPARTED, wind], WORDS, LONDON, WINTER + timedelta(minutes=7))
    assert view.headline == "Your delivery is delayed"
    assert view.detail == "The drone is bringing your parcel back to the depot because of the wind. We will rebook it."


def test_failed_lookups_slide_out_of_the_window_and_bound_concurrent_guesses() -> None:
    """Test the guessing limit on its own clock: 3 failures in the window block the next look-up, the block
    lifts as the oldest failure slides out, look-ups under way count, and a success does not count."""
    from flightctl.ground.tracking import FailedLookups

    now = [1000.0]
    lookups = FailedLookups(limit=3, window_s=60.0, clock=lambda: now[0])
    for at in (0.0, 10.0, 20.0):
        now[0] = 1000.0 + at
        assert lookups.admit("10.0.0.9")
        lookups.done("10.0.0.9", failed=True)
    now[0] = 1059.0
    assert not lookups.admit("10.0.0.9"), "three failures in the last 60 s"
    assert lookups.admit("10.0.0.10"), "another address is not blocked"
    now[0] = 1060.5  # the first failure (at 1000) has left the window
    assert lookups.admit("10.0.0.9")
    assert not lookups.admit("10.0.0.9"), "the look-up under way counts against the limit"
    lookups.done("10.0.0.9", failed=False)
    assert lookups.admit("10.0.0.9"), "a look-up that found its page is not a failure"
