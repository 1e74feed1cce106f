"""What a report is asked for, and what of it the caller may see.

A filter is resolved into a ``Scope`` before any report runs: the queues and operators the
caller may read, intersected with what they asked for. Every report reads only through the
scope, so a supervisor can't see another group's queue by asking for its id, and an empty
intersection is an empty report, not an error (ids don't leak).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import grants
from omni.domain.auth import Principal, visible_queue_ids, visible_user_ids
from omni.domain.errors import InvalidInput, PermissionDenied
from omni.domain.reports.config import ReportConfig
from omni.domain.reports.period import Grouping, Period, Preset, days, preset

READERS = (m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.AUDITOR)
"""Who reads reports; operators read only their own statistics (``reports.own``)."""

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
"""Rows of one page of a paginated report; an export streams every row instead."""
MAX_QUERY = 100
MAX_DURATION = 7 * 24 * 3600

REPORT_OPTIONS: dict[str, tuple[float, float]] = {
    "target_sl": (1, 99.9),
    "interval_minutes": (15, 30),
    "weeks": (1, 52),
    "max_occupancy": (1, 100),
    "chat_concurrency": (1, 50),
}
"""A report's own settings (the staffing forecast's), as the filter carries them to
``Scope.extra``: name → (lowest, highest). A report lists the ones it reads in its ``filters``."""
WHOLE_OPTIONS = ("interval_minutes", "weeks", "chat_concurrency")


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """A report request as a user puts it together; empty tuples mean "any"."""

    period: Period
    grouping: Grouping = Grouping.DAY
    queue_ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()
    """Operator groups: their queues (``Queue.group_id``) and their members."""
    user_ids: tuple[int, ...] = ()
    channels: tuple[str, ...] = ()
    inbox_ids: tuple[int, ...] = ()
    result_code_ids: tuple[int, ...] = ()
    label_ids: tuple[int, ...] = ()
    """Contact history: conversations with any of these labels (``omni.domain.labels``)."""
    q: str = ""
    """Contact search (contact history): part of a name, a phone number or a channel identity."""
    min_duration: int | None = None
    """Talk seconds at least / at most (contact history); ``None`` = no bound."""
    max_duration: int | None = None
    offset: int = 0
    """The page of a paginated report: rows skipped, and at most ``limit`` rows."""
    limit: int = DEFAULT_LIMIT
    options: tuple[tuple[str, float], ...] = ()
    """The report's own settings that were given (``REPORT_OPTIONS``), for ``Scope.extra``."""


@dataclass(frozen=True, slots=True)
class FilterParams:
    """A filter as the user chose it, before "yesterday" means a date: what a scheduled mailing
    stores (as JSON) and resolves anew each time it is sent."""

    preset: Preset | None = None
    since: date | None = None
    until: date | None = None
    grouping: Grouping = Grouping.DAY
    queue_ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()
    user_ids: tuple[int, ...] = ()
    channels: tuple[str, ...] = ()
    inbox_ids: tuple[int, ...] = ()
    result_code_ids: tuple[int, ...] = ()
    label_ids: tuple[int, ...] = ()
    q: str = ""
    min_duration: int | None = None
    max_duration: int | None = None
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    target_sl: float | None = None
    """The staffing forecast's options (``REPORT_OPTIONS``); ``None`` = the report's default."""
    interval_minutes: int | None = None
    weeks: int | None = None
    max_occupancy: float | None = None
    chat_concurrency: int | None = None

    def options(self) -> tuple[tuple[str, float], ...]:
        """The report options that were given, by name."""
        given = ((name, getattr(self, name)) for name in REPORT_OPTIONS)
        return tuple((name, value) for name, value in given if value is not None)

    def check(self) -> None:
        """Refuse a search, duration or page that can't be asked of a report, naming the field."""
        if len(self.q) > MAX_QUERY or "\x00" in self.q:
            raise InvalidInput("the search is at most {limit} characters", field="q", limit=MAX_QUERY)
        for name, value in (("min_duration", self.min_duration), ("max_duration", self.max_duration)):
            if value is not None and not 0 <= value <= MAX_DURATION:
                raise InvalidInput("a duration is from 0 to {limit} seconds", field=name, limit=MAX_DURATION)
        if (
            self.min_duration is not None
            and self.max_duration is not None
            and self.min_duration > self.max_duration
        ):
            raise InvalidInput("the shortest duration is longer than the longest", field="max_duration")
        if self.offset < 0:
            raise InvalidInput("{field} is not valid: {problem}", field="offset", problem="< 0")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInput("a page is from 1 to {limit} rows", field="limit", limit=MAX_LIMIT)
        for option, given in self.options():
            low, high = REPORT_OPTIONS[option]
            if not low <= given <= high:  # NaN too
                raise InvalidInput("{field} must be between {min} and {max}", field=option, min=low, max=high)
        if self.interval_minutes not in (None, 15, 30):
            raise InvalidInput("{field} must be 15 or 30", field="interval_minutes")

    def resolve(self, tz: tzinfo, now: datetime) -> ReportFilter:
        """The concrete filter at ``now``: a preset wins; dates alone default the other end to today;
        nothing at all means today."""
        self.check()
        if self.preset is not None:
            period = preset(self.preset, now, tz)
        elif self.since is not None or self.until is not None:
            today = now.astimezone(tz).date()
            first = self.since or self.until or today
            period = days(first, self.until or today, tz)
        else:
            period = preset(Preset.TODAY, now, tz)
        return ReportFilter(
            period=period,
            grouping=self.grouping,
            queue_ids=self.queue_ids,
            group_ids=self.group_ids,
            user_ids=self.user_ids,
            channels=self.channels,
            inbox_ids=self.inbox_ids,
            result_code_ids=self.result_code_ids,
            label_ids=self.label_ids,
            q=self.q.strip(),
            min_duration=self.min_duration,
            max_duration=self.max_duration,
            offset=self.offset,
            limit=self.limit,
            options=self.options(),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "until"):
            data[key] = data[key].isoformat() if data[key] else None
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FilterParams:
        """Parse a stored filter, refusing what doesn't fit with the field named."""
        try:
            return cls(
                preset=Preset(data["preset"]) if data.get("preset") else None,
                since=date.fromisoformat(data["since"]) if data.get("since") else None,
                until=date.fromisoformat(data["until"]) if data.get("until") else None,
                grouping=Grouping(data.get("grouping") or Grouping.DAY),
                queue_ids=tuple(int(x) for x in data.get("queue_ids") or ()),
                group_ids=tuple(int(x) for x in data.get("group_ids") or ()),
                user_ids=tuple(int(x) for x in data.get("user_ids") or ()),
                channels=tuple(str(x) for x in data.get("channels") or ()),
                inbox_ids=tuple(int(x) for x in data.get("inbox_ids") or ()),
                result_code_ids=tuple(int(x) for x in data.get("result_code_ids") or ()),
                label_ids=tuple(int(x) for x in data.get("label_ids") or ()),
                q=str(data.get("q") or ""),
                min_duration=_int_or_none(data.get("min_duration")),
                max_duration=_int_or_none(data.get("max_duration")),
                offset=int(data.get("offset") or 0),
                limit=int(data.get("limit") or DEFAULT_LIMIT),
                target_sl=_float_or_none(data.get("target_sl")),
                interval_minutes=_int_or_none(data.get("interval_minutes")),
                weeks=_int_or_none(data.get("weeks")),
                max_occupancy=_float_or_none(data.get("max_occupancy")),
                chat_concurrency=_int_or_none(data.get("chat_concurrency")),
            )
        except (TypeError, ValueError, AttributeError):
            raise InvalidInput("{field} is not valid: {problem}", field="filters", problem="filter") from None


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


@dataclass(frozen=True, slots=True)
class Scope:
    """A filter narrowed to what the caller may see.

    ``queue_ids`` / ``user_ids`` are ``None`` for "every one" (an admin or auditor who asked
    for none in particular); otherwise the exact set to read, possibly empty.
    """

    filter: ReportFilter
    config: ReportConfig
    who: Principal
    queue_ids: frozenset[int] | None
    user_ids: frozenset[int] | None
    now: datetime
    extra: dict[str, object] = field(default_factory=dict)
    reach: str = grants.ALL
    """The grant scope the caller reads at (``omni.domain.grants``): at ``own`` only the
    ``OWN_REPORTS`` run, narrowed to the caller's own conversations."""

    @property
    def period(self) -> Period:
        return self.filter.period

    @property
    def empty(self) -> bool:
        """Nothing visible matches: every report is empty (and runs no query)."""
        return self.queue_ids == frozenset() and self.user_ids == frozenset()


def check_reader(who: Principal) -> None:
    if who.role not in READERS:
        raise PermissionDenied("reports are for supervisors, admins and auditors")


OWN_REPORTS: frozenset[str] = frozenset({"contact_history", "operator_performance"})
"""Reports whose every row belongs to one operator's conversations and honours
``Scope.user_ids``: the only ones a reader at the ``own`` grant scope may run."""


async def report_reach(session: AsyncSession, who: Principal, *, export: bool = False) -> str:
    """The scope the caller reads reports at (``grants.PAGE_REPORTS``; for an export also
    ``grants.REPORT_EXPORT``, the narrower of the two), or 403 naming the missing grant.
    Operators read reports only when an admin gave their role the grant (at ``own``)."""
    reach = await grants.grant_scope(session, who, grants.PAGE_REPORTS)
    if reach is None:
        if who.role in READERS:
            await grants.check(session, who, grants.PAGE_REPORTS)
        raise PermissionDenied("reports are for supervisors, admins and auditors")
    if export:
        reach_export = await grants.grant_scope(session, who, grants.REPORT_EXPORT)
        if reach_export is None:
            await grants.check(session, who, grants.REPORT_EXPORT)
            raise AssertionError("unreachable: the check refuses")
        reach = min(reach, reach_export, key=grants.SCOPES.index)
    return reach


def report_visible(key: str, roles: tuple[str, ...] | None, who: Principal, reach: str) -> bool:
    """Whether the reports list shows the report to the caller (and it runs for them)."""
    if roles is not None and who.role.value not in roles:
        return False
    return reach != grants.OWN or key in OWN_REPORTS


def check_report_in_reach(key: str, reach: str, who: Principal, roles: tuple[str, ...] | None = None) -> None:
    """At the ``own`` scope only reports limited to one operator's conversations run; a report
    limited to some roles (``ReportSpec.roles``) refuses the others with a clear 403."""
    if roles is not None and who.role.value not in roles:
        raise PermissionDenied("the report '{report}' is not available to your role", report=key)
    if reach == grants.OWN and key not in OWN_REPORTS:
        raise PermissionDenied("this report is not limited to your own conversations")


def _narrow(asked: set[int] | None, visible: set[int] | None) -> frozenset[int] | None:
    if asked is None:
        return None if visible is None else frozenset(visible)
    return frozenset(asked if visible is None else asked & visible)


async def resolve_scope(
    session: AsyncSession,
    who: Principal,
    f: ReportFilter,
    config: ReportConfig,
    now: datetime,
    *,
    export: bool = False,
) -> Scope:
    """Narrow ``f`` to the caller's queues and operators at the caller's grant scope
    (``report_reach``): at ``own`` to the caller's own conversations, whatever was asked."""
    reach = await report_reach(session, who, export=export)
    if reach == grants.OWN:
        f = replace(f, user_ids=f.user_ids or (who.id,))  # another operator asked: nothing
        visible_q: set[int] | None = None
        visible_u: set[int] | None = {who.id}
    elif who.role in (m.Role.ADMIN, m.Role.AUDITOR):
        visible_q = None
        visible_u = None
    else:
        visible_q = await visible_queue_ids(session, who) or set()
        visible_u = await visible_user_ids(session, who) or set()
    asked_q: set[int] | None = set(f.queue_ids) if f.queue_ids else None
    asked_u: set[int] | None = set(f.user_ids) if f.user_ids else None
    if f.group_ids:
        group_queues = set(await session.scalars(select(m.Queue.id).where(m.Queue.group_id.in_(f.group_ids))))
        group_users = set(
            await session.scalars(
                select(m.GroupMember.user_id).where(m.GroupMember.group_id.in_(f.group_ids))
            )
        )
        asked_q = group_queues if asked_q is None else asked_q & group_queues
        asked_u = group_users if asked_u is None else asked_u & group_users
    return Scope(
        filter=f,
        config=config,
        who=who,
        queue_ids=_narrow(asked_q, visible_q),
        user_ids=_narrow(asked_u, visible_u),
        now=now,
        extra=dict(f.options),
        reach=reach,
    )
