"""The words of the customer's tracking page: one catalogue per language (configs/tracking/<language>.toml).

Every key must be present, and every placeholder a text needs must be in it, so a catalogue an operator edited
is refused when the relay starts, naming the key, never found wrong by a customer.
"""

from __future__ import annotations

import string
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from flightctl.config import StrictModel, configs_dir, read_toml, validation_problems
from flightctl.errors import ConfigError

DEFAULT_LANGUAGE = "en-GB"


class Headlines(StrictModel):
    received: str = Field(max_length=200)
    booked: str = Field(max_length=200)
    on_its_way: str = Field(max_length=200)
    arriving: str = Field(max_length=200)
    delivered: str = Field(max_length=200)
    at_airstrip: str = Field(max_length=200)
    delayed: str = Field(max_length=200)
    failed: str = Field(max_length=200)


class Steps(StrictModel):
    received: str = Field(max_length=500)
    booked: str = Field(max_length=500)
    not_by_drone: str = Field(max_length=500)
    on_its_way: str = Field(max_length=500)
    above_drop: str = Field(max_length=500)
    delivered: str = Field(max_length=500)
    returning: str = Field(max_length=500)
    returning_wind: str = Field(max_length=500)
    returning_battery: str = Field(max_length=500)
    returning_drop_point: str = Field(max_length=500)
    checking: str = Field(max_length=500)
    not_left: str = Field(max_length=500)
    back_at_depot: str = Field(max_length=500)
    arrived_at_airstrip: str = Field(max_length=500)
    diverted: str = Field(max_length=500)


class Actions(StrictModel):
    received: str = Field(max_length=500)
    booked: str = Field(max_length=500)
    on_its_way: str = Field(max_length=500)
    arriving: str = Field(max_length=500)
    delivered: str = Field(max_length=500)
    at_airstrip: str = Field(max_length=500)
    delayed: str = Field(max_length=500)
    failed: str = Field(max_length=500)


class Unknown(StrictModel):
    title: str = Field(max_length=200)
    body: str = Field(max_length=1000)


# The placeholders each text is given: a text may use fewer (a language may not need the time), never others.
PLACEHOLDERS = {
    "order": {"order_id"},
    "expected_between": {"early", "late"},
    "arriving_in": {"minutes"},
    "headline.delivered": {"time"},
    "headline.at_airstrip": {"time", "airstrip"},
    "step.arrived_at_airstrip": {"airstrip"},
    "action.at_airstrip": {"airstrip"},
}


class Words(StrictModel):
    language: str = Field(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")  # the page's lang attribute
    title: str = Field(max_length=200)
    order: str = Field(max_length=200)
    progress: str = Field(max_length=200)
    now: str = Field(max_length=200)
    updated_live: str = Field(max_length=500)
    refresh: str = Field(max_length=500)
    expected_between: str = Field(max_length=200)
    arriving_in: str = Field(max_length=200)
    arriving_now: str = Field(max_length=200)
    unnamed_airstrip: str = Field(max_length=100)  # stands in for {airstrip} when an event did not name it
    headline: Headlines
    step: Steps
    action: Actions
    unknown: Unknown

    @model_validator(mode="after")
    def _placeholders(self) -> Words:
        for path, allowed in PLACEHOLDERS.items():
            text = self._text(path)
            used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
            if used - allowed:
                given = ", ".join(f"{{{name}}}" for name in sorted(allowed))
                raise ValueError(f"{path}: {{{sorted(used - allowed)[0]}}} is not given to this text (it has {given})")
        return self

    def _text(self, path: str) -> str:
        value: object = self
        for part in path.split("."):
            value = getattr(value, part)
        return str(value)


def load_words(path: Path | None = None) -> Words:
    """The catalogue at ``path``, or the shipped British English one."""
    path = path or configs_dir() / "tracking" / f"{DEFAULT_LANGUAGE}.toml"
    try:
        return Words.model_validate(read_toml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None
