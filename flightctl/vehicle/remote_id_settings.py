"""The operator's Remote ID settings for one aircraft (the onboard config's ``[remote_id]``), validated when the
config is loaded: the UAS ID, the operator registration number (checked, and kept without its secret part),
the self-ID and the operator's location. ``vehicle.remote_id`` sends them; this module holds no I/O, so a
command that never broadcasts does not import pydantic for them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from flightctl.config import StrictModel

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
# EN 4709-002 / EASA: country (ISO 3166 alpha-3), 12 random characters, a check character, then a hyphen and
# 3 secret characters that are never broadcast. Example from EASA: FIN87astrdge12k8-xyz.
_OPERATOR_ID = re.compile(r"^(?P<country>[A-Z]{3})(?P<random>[0-9a-z]{12})(?P<check>[0-9a-z])-(?P<secret>[0-9a-z]{3})$")
_CAA_PRINTED = re.compile(r"^[A-Z]{3}-OP-[0-9A-Z]{12}$")


def luhn_mod36(payload: str) -> str:
    """The Luhn mod 36 check character of ``payload`` over 0-9a-z (ISO/IEC 7064 style, as EN 4709-002)."""
    total, factor = 0, 2
    for char in reversed(payload):
        value = _BASE36.index(char) * factor
        total += value // 36 + value % 36
        factor = 1 if factor == 2 else 2
    return _BASE36[(36 - total % 36) % 36]


def public_operator_id(registration: str, *, country: str = "GBR") -> str:
    """The broadcast part of an operator registration number, after checking its form and check character.

    ``registration`` is the whole number the authority issued, secret included (``GBR...-xyz``): the check
    character covers the 12 random and the 3 secret characters, so only the whole number can be checked.
    ValueError says what is wrong, and never repeats the secret.
    """
    text = registration.strip()
    if _CAA_PRINTED.match(text):
        raise ValueError(
            "this is the operator ID as printed on the CAA's registration (XXX-OP-...); Remote ID broadcasts the "
            "operator registration number with its check character, issued with 3 secret characters "
            "(EASA's example: FIN87astrdge12k8-xyz): enter that"
        )
    match = _OPERATOR_ID.match(text)
    if match is None:
        raise ValueError(
            "an operator registration number is 3 capital letters (the country), 12 characters 0-9/a-z, a check "
            "character, a hyphen and the 3 secret characters (EASA's example: FIN87astrdge12k8-xyz)"
        )
    if match["country"] != country:
        raise ValueError(f"the operator registration number is from {match['country']}, this operation needs {country}")
    if luhn_mod36(match["random"] + match["secret"]) != match["check"]:
        raise ValueError("the operator registration number's check character does not match: a character is mistyped")
    return f"{match['country']}{match['random']}{match['check']}"


class OperatorLocation(StrictModel):
    """Where the remote pilot station is: the operations room that flies the aircraft, fixed."""

    lat_deg: float = Field(ge=-90, le=90)
    lon_deg: float = Field(ge=-180, le=180)
    alt_m: float = Field(ge=-500, le=9000)  # above the WGS84 ellipsoid, as OpenDroneID wants it

    @field_validator("lat_deg", "lon_deg")
    @classmethod
    def _not_null_island(cls, value: float) -> float:
        if value == 0.0:
            raise ValueError("0 is what ArduPilot reads as 'no operator location': give the real one")
        return value


class RemoteIdSettings(StrictModel):
    """The operator's Remote ID data for one aircraft (the onboard config's ``[remote_id]``). Never a customer's.

    ``operator_id`` is validated and reduced to its public part when the config is loaded: a mistyped number
    stops the program at start-up, and the secret characters are not kept.
    """

    uas_id: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Z]+$")  # the serial number (CTA-2063-A)
    ua_type: Literal["aeroplane", "helicopter-or-multirotor", "hybrid-lift"]
    operator_id: str | None = None
    self_id: str = Field(default="Parcel delivery", max_length=23, pattern=r"^[ -~]*$")
    operator_location: OperatorLocation | None = None
    category: Literal["open", "specific", "certified"] = "specific"
    country: str = Field(default="GBR", pattern=r"^[A-Z]{3}$")

    @field_validator("operator_id")
    @classmethod
    def _operator_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return public_operator_id(value)  # the country is checked against ``country`` at use (see problems())
