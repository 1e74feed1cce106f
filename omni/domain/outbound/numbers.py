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


_T = _pnu.PhoneNumberType
_SPECIAL_TYPES = (
    ("premium_rate", _T.PREMIUM_RATE),
    ("toll_free", _T.TOLL_FREE),
    ("shared_cost", _T.SHARED_COST),
    ("voip", _T.VOIP),
    ("personal_number", _T.PERSONAL_NUMBER),
    ("pager", _T.PAGER),
    ("uan", _T.UAN),
    ("voicemail", _T.VOICEMAIL),
)
_NOT_STRIPPED = (
    _pnu.ValidationResult.TOO_SHORT,
    _pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    _pnu.ValidationResult.INVALID_LENGTH,
)
_Desc = tuple[frozenset[int], "re.Pattern[str] | None"] | None


def _desc(desc: Any) -> _Desc:
    """A number description's lengths and its pattern compiled once (``_is_number_matching_desc``)."""
    if desc is None:
        return None
    pattern = desc.national_number_pattern
    return frozenset(desc.possible_length), re.compile(pattern) if pattern else None


def _matches(nat: str, desc: _Desc) -> bool:
    if desc is None:
        return False
    lengths, pattern = desc
    if lengths and len(nat) not in lengths:
        return False
    return pattern is not None and pattern.fullmatch(nat) is not None


class _Plan:
    """One region's metadata with its patterns compiled once."""

    def __init__(self, md: Any) -> None:
        self.md = md
        self.cc: int = md.country_code
        self.cc_text = str(md.country_code)
        self.general = _desc(md.general_desc)
        self.general_pattern = self.general[1] if self.general else None
        self.special = [(kind, _desc(getattr(md, name))) for name, kind in _SPECIAL_TYPES]
        self.fixed = _desc(md.fixed_line)
        self.mobile = _desc(md.mobile)
        self.same = bool(md.same_mobile_and_fixed_line_pattern)
        self.idd = re.compile(md.international_prefix) if md.international_prefix else None
        npp = md.national_prefix_for_parsing
        self.national_prefix = re.compile(npp) if npp else None
        self.transform = bool(md.national_prefix_transform_rule)
        self.leading = re.compile(md.leading_digits) if md.leading_digits is not None else None

    def kind(self, nat: str) -> int:
        """``_number_type_helper``, the same tests in the same order."""
        if not _matches(nat, self.general):
            return _T.UNKNOWN
        for kind, desc in self.special:
            if _matches(nat, desc):
                return kind
        if _matches(nat, self.fixed):
            if self.same or _matches(nat, self.mobile):
                return _T.FIXED_LINE_OR_MOBILE
            return _T.FIXED_LINE
        if not self.same and _matches(nat, self.mobile):
            return _T.MOBILE
        return _T.UNKNOWN

    def strip_national_prefix(self, number: str) -> str:
        """``_maybe_strip_national_prefix_carrier_code``'s number (the library's own call when the
        prefix is there)."""
        if not number or self.national_prefix is None:
            return number
        found = self.national_prefix.match(number)
        if found is None:
            return number
        if self.transform or self.general_pattern is None:
            return str(_pnu._maybe_strip_national_prefix_carrier_code(number, self.md)[1])
        rest = number[found.end() :]
        if (
            self.general_pattern.fullmatch(number) is not None
            and self.general_pattern.fullmatch(rest) is None
        ):
            return number  # the number was viable as it is and would not be without the prefix
        return rest


@lru_cache(maxsize=512)
def _plan(region: str) -> _Plan | None:
    md = PhoneMetadata.metadata_for_region(region, None)
    return _Plan(md) if md is not None else None


@lru_cache(maxsize=512)
def _cc_plan(cc: int, region: str) -> _Plan | None:
    if region != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return _plan(region)  # the same metadata object: its plan is shared
    md = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
    return _Plan(md) if md is not None else None


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


def _country_code(digits: str, plus: bool, home: _Plan) -> tuple[int, str] | None:
    """``_maybe_extract_country_code`` for a digits-only number: (country code or 0, the rest);
    ``None`` for what the fast path leaves to the library (an IDD, an error)."""
    if plus:
        if len(digits) <= 2 or digits[0] == "0":
            return None
        for n in range(1, min(len(digits), 3) + 1):
            if int(digits[:n]) in _pnu.COUNTRY_CODE_TO_REGION_CODE:
                return int(digits[:n]), digits[n:]
        return None
    if home.idd is not None and home.idd.match(digits):
        return None
    if digits.startswith(home.cc_text) and home.general_pattern is not None:
        potential = home.strip_national_prefix(digits[len(home.cc_text) :])
        general = home.general_pattern
        if (general.fullmatch(digits) is None and general.fullmatch(potential) is not None) or (
            _pnu._test_number_length(digits, home.md) == _pnu.ValidationResult.TOO_LONG
        ):
            return home.cc, potential
    return 0, ""


def fast_number(raw: str, default_region: str = "RU") -> Number | None:
    """``parse_number(raw, default_region)`` for a valid number in a plain shape, else ``None``
    (the caller then asks ``parse_number``, which also gives the reason of a refusal)."""
    text = raw.strip()
    if not text or _SHAPE.fullmatch(text) is None or "+" in text[1:]:
        return None
    digits = text.translate(_DROP)
    if len(digits) < _MIN_DIGITS or not default_region:
        return None
    home = _plan(default_region.upper())
    if home is None:
        return None
    found = _country_code(digits, text[0] == "+", home)
    if found is None:
        return None
    cc, nat = found
    plan: _Plan | None = home
    if cc != 0:
        number_region = _pnu.region_code_for_country_code(cc)
        if number_region != default_region:
            plan = _cc_plan(cc, number_region)
    else:
        nat += digits
        cc = home.cc
    if plan is None or len(nat) < 2:
        return None
    stripped = plan.strip_national_prefix(nat)
    if stripped != nat and _pnu._test_number_length(stripped, plan.md) not in _NOT_STRIPPED:
        nat = stripped
    if len(nat) < 2 or len(nat) > _MAX_NSN or nat[0] == "0":
        return None
    regions = _pnu.COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not regions:
        return None
    region: str | None = None
    kind = _T.UNKNOWN
    if len(regions) == 1:
        region = regions[0]
    else:
        for candidate in regions:
            candidate_plan = _plan(candidate)
            if candidate_plan is None:
                continue
            if candidate_plan.leading is not None:
                if candidate_plan.leading.match(nat):
                    region = candidate
                    break
            else:
                kind = candidate_plan.kind(nat)
                if kind != _T.UNKNOWN:
                    region = candidate
                    break
    if region is None:
        return None
    number_plan = _cc_plan(cc, region)
    if number_plan is None:
        return None
    if kind == _T.UNKNOWN or number_plan is not _plan(region):
        kind = number_plan.kind(nat)
    if kind == _T.UNKNOWN:
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
