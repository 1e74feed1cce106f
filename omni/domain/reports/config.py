"""The install's reporting settings: time zone, short-abandon grace and business days.

Reports and the live monitor read the same row, so "today" and "offered" mean the same thing on
the wall screen, in the supervisor's monitor and in the month's report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.admin.changes import _changed
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, PermissionDenied

ROW_ID = 1
MAX_SHORT_ABANDON_SECONDS = 600


@dataclass(frozen=True, slots=True)
class ReportConfig:
    timezone: str
    short_abandon_seconds: int
    business_days: tuple[int, ...]

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def is_business_day(self, local: datetime) -> bool:
        return local.weekday() in self.business_days


DEFAULT = ReportConfig(timezone="UTC", short_abandon_seconds=5, business_days=(0, 1, 2, 3, 4))


def zone(name: str) -> ZoneInfo:
    """The zone by IANA name, refused with the field named when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("{field}: unknown time zone {name}", field="timezone", name=name) from None


def zone_names() -> list[str]:
    """Every IANA zone name, sorted (the admin form's choices)."""
    return sorted(available_timezones())


def _of(row: m.InstallSettings | None) -> ReportConfig:
    if row is None:
        return DEFAULT
    return ReportConfig(
        timezone=row.timezone,
        short_abandon_seconds=row.short_abandon_seconds,
        business_days=tuple(sorted(int(d) for d in row.business_days)),
    )


async def get_config(session: AsyncSession) -> ReportConfig:
    """The install's settings; the defaults (UTC, 5 s, Monday–Friday) until an admin saves them."""
    return _of(await session.get(m.InstallSettings, ROW_ID))


async def locked_row(session: AsyncSession) -> m.InstallSettings:
    """The install settings row, locked for a change; made with the defaults on the first one."""
    row = await session.get(m.InstallSettings, ROW_ID, with_for_update=True)
    if row is None:
        row = m.InstallSettings(
            id=ROW_ID,
            timezone=DEFAULT.timezone,
            short_abandon_seconds=DEFAULT.short_abandon_seconds,
            business_days=list(DEFAULT.business_days),
            totp_roles=[],
        )
        session.add(row)
    return row


async def check_update_config(
    session: AsyncSession,
    who: Principal,
    *,
    timezone: str | None = None,
    short_abandon_seconds: int | None = None,
    business_days: list[int] | None = None,
) -> ReportConfig:
    """Admins change the install settings; every change is audited and announced."""
    if not who.is_admin:
        raise PermissionDenied("only an admin changes the install settings")
    errors: list[InvalidInput] = []
    if timezone is not None:
        try:
            zone(timezone)
        except InvalidInput as exc:
            errors.append(exc)
    if short_abandon_seconds is not None and not 0 <= short_abandon_seconds <= MAX_SHORT_ABANDON_SECONDS:
        errors.append(
            InvalidInput(
                "{field} must be between {min} and {max}",
                field="short_abandon_seconds",
                min=0,
                max=MAX_SHORT_ABANDON_SECONDS,
            )
        )
    if business_days is not None and (not business_days or any(not 0 <= d <= 6 for d in business_days)):
        errors.append(InvalidInput("{field}: pick one or more days of the week", field="business_days"))
    if errors:
        first = errors[0]
        raise InvalidInput(first.template, field=first.field, errors=errors, **first.params)
    row = await locked_row(session)
    changes: dict[str, Any] = {}
    if timezone is not None and timezone != row.timezone:
        # the daily status tier is kept per local day of the install's zone: re-sum it, after
        # any rollup pass in flight has committed (its rows must be among those deleted)
        from omni.domain.reports.daily import rebuild_all_days
        from omni.domain.reports.rollups import hold_rebuilds

        await hold_rebuilds(session)
        await rebuild_all_days(session, zone(timezone))
    if timezone is not None:
        row.timezone = changes["timezone"] = timezone
    if short_abandon_seconds is not None:
        row.short_abandon_seconds = changes["short_abandon_seconds"] = short_abandon_seconds
    if business_days is not None:
        row.business_days = changes["business_days"] = sorted(set(business_days))
    row.updated_at = datetime.now(UTC)
    await session.flush()
    audit.record(session, who, "install.update", object_type="install", object_id=ROW_ID, data=changes)
    _changed(session, "install", ROW_ID, "updated")
    return _of(row)
