"""Customer numbers for dialing: E.164, the number's region and its local time zone.

The zone decides when a customer may be called, so it comes from the number plan
(``phonenumbers``: a Vladivostok number is ``Asia/Vladivostok``), unless the list gives one;
numbers the plan can't place (mobile ranges spanning zones, unknown countries) use the
campaign's zone. A number that can't be parsed is refused with the reason, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from omni.domain.errors import InvalidInput

__all__ = ["Number", "check_zone", "parse_number", "zone_of"]


@dataclass(frozen=True, slots=True)
class Number:
    e164: str
    region: str
    """ISO 3166 region of the number (``"RU"``), empty when unknown."""
    zone: str
    """IANA zone the number plan gives when it names exactly one, else empty."""


def parse_number(raw: str, default_region: str = "RU") -> Number:
    """The number in E.164 with its region and zone; ``InvalidInput`` says why it is refused."""
    text = raw.strip()
    if not text:
        raise InvalidInput("the phone number is empty", field="phone")
    try:
        parsed = phonenumbers.parse(text, default_region or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput("'{raw}' is not a phone number", raw=text, field="phone") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput("'{raw}' is not a valid phone number", raw=text, field="phone")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(parsed) or ""
    return Number(e164, region, _plan_zone(e164))


_PLAN_FIXES = {("RU", "Europe/Bucharest"): "Europe/Kaliningrad"}
"""The number plan names a zone with the right winter offset but the wrong rules: Kaliningrad's
+7 401 range says Bucharest, which moves its clocks in summer while Kaliningrad stays UTC+2."""


@lru_cache(maxsize=65536)
def _plan_zone(e164: str) -> str:
    parsed = phonenumbers.parse(e164, None)
    zones = [z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    if len(zones) != 1:
        return ""
    return _PLAN_FIXES.get((phonenumbers.region_code_for_number(parsed) or "", zones[0]), zones[0])


def check_zone(name: str, *, field: str = "timezone") -> str:
    """``name`` when it is a known IANA zone, else ``InvalidInput``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput("unknown time zone '{zone}'", zone=name, field=field) from exc
    return name


def zone_of(number: Number, override: str, fallback: str) -> str:
    """The zone a target is called in: the list's, else the number plan's, else the campaign's."""
    return override or number.zone or fallback
