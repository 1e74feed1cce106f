"""Customer numbers for dialing: E.164, the number's region and its local time zone.

The zone decides when a customer may be called, so it comes from the number plan
(``phonenumbers``: a Vladivostok number is ``Asia/Vladivostok``), unless the list gives one;
numbers the plan can't place (mobile ranges spanning zones, unknown countries) use the
campaign's zone. A number that can't be parsed is refused with the reason, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers import phonenumberutil as _pnu
from phonenumbers import timezone as pn_timezone

from omni.domain.errors import InvalidInput

__all__ = ["Number", "check_zone", "fast_number", "normalise_number", "parse_number", "zone_of"]


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


# --- the importer's fast path ----------------------------------------------------------------
#
# ``phonenumbers.parse`` + ``is_valid_number`` + the time-zone lookup cost ~100 µs a number
# (string extraction, extension and alpha handling, the number's type computed three times, the
# time-zone prefix tried at every length). A list is a million plain numbers, so ``fast_number``
# runs the same library steps for the one shape lists come in — digits with spaces, dashes,
# brackets or dots and at most one leading ``+`` — where the skipped steps do nothing: it calls
# the library's own country-code extraction and national-prefix stripping, computes the type
# once with the library's own matcher, and looks the zone up only at the prefix lengths
# ``phonenumbers``' time-zone data has for that country code. Whenever it is not sure (any
# other character, an error, an invalid number, Italian leading zeros, an unsupported region)
# it answers ``None`` and the caller uses ``parse_number``, so refusals keep their reasons.
# tests/outbound/test_numbers_fast.py compares both over a large varied sample.

_SHAPE = re.compile(r"\+?[0-9 ().\-]+")
_DROP = str.maketrans("", "", "+ ().-")
_MIN_DIGITS = 3
"""Fewer digits can be a non-viable string for ``parse``: leave those to it."""
_MAX_NSN = 17
_TZ_DATA: dict[str, Any] = pn_timezone.TIMEZONE_DATA  # type: ignore[attr-defined]


@lru_cache(maxsize=512)
def _region_metadata(region: str) -> Any:
    return PhoneMetadata.metadata_for_region(region, None)


@lru_cache(maxsize=512)
def _cc_metadata(cc: int, region: str) -> Any:
    return PhoneMetadata.metadata_for_region_or_calling_code(cc, region)


@lru_cache(maxsize=512)
def _leading(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=512)
def _tz_lengths(cc: int) -> tuple[int, ...]:
    """The prefix lengths (longest first) the time-zone data has for numbers of ``cc``."""
    head = str(cc)
    lengths = {len(key) for key in _TZ_DATA if key.startswith(head)}
    return tuple(sorted(lengths, reverse=True))


@lru_cache(maxsize=512)
def _country_zones(cc: int) -> tuple[str, ...]:
    return tuple(pn_timezone._country_level_time_zones_for_number(phonenumbers.PhoneNumber(country_code=cc)))


def _zone(zones: Sequence[str], region: str) -> str:
    known = [z for z in zones if z != "Etc/Unknown"]
    if len(known) != 1:
        return ""
    return _PLAN_FIXES.get((region, known[0]), known[0])


def fast_number(raw: str, default_region: str = "RU") -> Number | None:
    """``parse_number(raw, default_region)`` for a valid number in a plain shape, else ``None``
    (the caller then asks ``parse_number``, which also gives the reason of a refusal)."""
    text = raw.strip()
    if not text or _SHAPE.fullmatch(text) is None or "+" in text[1:]:
        return None
    digits = text.translate(_DROP)
    if len(digits) < _MIN_DIGITS or not default_region:
        return None
    meta = _region_metadata(default_region.upper())
    if meta is None:
        return None
    numobj = phonenumbers.PhoneNumber()
    try:
        cc, nat = _pnu._maybe_extract_country_code(
            "+" + digits if text[0] == "+" else digits, meta, False, numobj
        )
    except phonenumbers.NumberParseException:
        return None
    if cc != 0:
        number_region = _pnu.region_code_for_country_code(cc)
        if number_region != default_region:
            meta = _cc_metadata(cc, number_region)
    else:
        nat += digits
        cc = meta.country_code
    if len(nat) < 2:
        return None
    _carrier, stripped, _ = _pnu._maybe_strip_national_prefix_carrier_code(nat, meta)
    if _pnu._test_number_length(stripped, meta) not in (
        _pnu.ValidationResult.TOO_SHORT,
        _pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        _pnu.ValidationResult.INVALID_LENGTH,
    ):
        nat = stripped
    if len(nat) < 2 or len(nat) > _MAX_NSN or nat[0] == "0":
        return None
    regions = _pnu.COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not regions:
        return None
    region: str | None = None
    kind = _pnu.PhoneNumberType.UNKNOWN
    if len(regions) == 1:
        region = regions[0]
    else:
        for candidate in regions:
            md = _region_metadata(candidate)
            if md is None:
                continue
            if md.leading_digits is not None:
                if _leading(md.leading_digits).match(nat):
                    region = candidate
                    break
            else:
                kind = _pnu._number_type_helper(nat, md)
                if kind != _pnu.PhoneNumberType.UNKNOWN:
                    region = candidate
                    break
    if region is None:
        return None
    md = _cc_metadata(cc, region)
    if md is None:
        return None
    if kind == _pnu.PhoneNumberType.UNKNOWN:
        kind = _pnu._number_type_helper(nat, md)
    if kind == _pnu.PhoneNumberType.UNKNOWN:
        return None
    e164 = f"+{cc}{nat}"
    if not _pnu.is_number_type_geographical(kind, cc):
        return Number(e164, region, _zone(_country_zones(cc), region))
    key = e164[1:]
    for length in _tz_lengths(cc):
        zones = _TZ_DATA.get(key[:length])
        if zones is not None:
            return Number(e164, region, _zone(zones, region))
    return Number(e164, region, _zone(pn_timezone._UNKNOWN_TIME_ZONE_LIST, region))


def normalise_number(raw: str, default_region: str = "RU") -> Number:
    """``parse_number`` through the fast path when it is sure (the importer's per-row call)."""
    return fast_number(raw, default_region) or parse_number(raw, default_region)
