"""Admin sections for a queue's time rules: business hours with holidays, and escalation steps.

Both edit one JSON column of the queue (``business_hours``, ``escalation``) through the same
``check_update_queue`` the REST API uses (``PATCH /api/v1/queues/{id}``), but as ordinary
inputs: one text box per weekday, one line per holiday, one row per escalation step, each with
its error next to it.
"""

from __future__ import annotations

import itertools
import re
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import admin, calendars
from omni.domain.errors import DomainError, InvalidInput
from omni.web.admin.forms import (
    ADMIN,
    LIMIT,
    SUPERVISOR,
    Cell,
    Field,
    Section,
    Table,
    base_field,
    queue_options,
)

DAYS = range(7)
WHOLE_DAY = [["00:00", "24:00"]]
_SPAN = re.compile(r"\s*((?:[01]?\d|2[0-3]):[0-5]\d|24:00)\s*[-–—]\s*((?:[01]?\d|2[0-3]):[0-5]\d|24:00)\s*")
_HOLIDAY = re.compile(r"(\d{4}-\d{2}-\d{2})\s*(.*)")


@cache
def _zones() -> list[str]:
    return sorted(available_timezones())


def _hhmm(text: str) -> str:
    return text.zfill(5)


class Hours(Section):
    """Weekly hours and holidays of a queue (queues are created on the queues page)."""

    slug = "hours"
    title = "adm.hours"
    edit_roles = (ADMIN, SUPERVISOR)
    create_roles = ()
    can_delete = False

    async def table(self, session: AsyncSession) -> Table:
        rows = []
        for q in await admin.list_queues(session, self.who, limit=LIMIT):
            hours = q.business_hours or {}
            rows.append(
                [
                    Cell(q.name, self.href(q.id)),
                    Cell(hours.get("timezone", "") or self.t("adm.hours.always")),
                    Cell(self._summary(hours)),
                    Cell(str(len(hours.get("holidays") or []) + len(hours.get("calendars") or []))),
                ]
            )
        cols = ["adm.f.name", "adm.hours.timezone", "adm.hours.week", "adm.hours.holidays"]
        return Table([self.t(c) for c in cols], rows)

    def _summary(self, hours: dict[str, Any]) -> str:
        if not hours:
            return self.t("adm.hours.always")
        days = hours.get("days") or {}
        return "; ".join(
            f"{self.t(f'adm.day.{d}')} {', '.join(f'{a}-{b}' for a, b in days[str(d)])}"
            for d in DAYS
            if days.get(str(d))
        )

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.access_queue(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            Field("timezone", t("adm.hours.timezone"), "select", [(z, z) for z in _zones()]),
            *(
                Field(f"day_{d}", t(f"adm.day.{d}"), help=t("adm.hours.day_help") if d == 0 else "")
                for d in DAYS
            ),
            Field("holidays", t("adm.hours.holidays"), "lines", help=t("adm.hours.holidays_help"), rows=5),
            Field(
                "calendars",
                t("adm.hours.calendars"),
                "checks",
                [(str(c.id), c.name) for c in await calendars.list_calendars(session, self.who)],
                numeric=True,
                help=t("adm.hours.calendars_help"),
            ),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        hours = (item.business_hours if item is not None else None) or {}
        days = hours.get("days") or {}
        install = await session.get(m.InstallSettings, 1)  # the install's zone for a first setup
        body: dict[str, Any] = {
            "timezone": hours.get("timezone") or (install.timezone if install is not None else "UTC"),
            "holidays": [f"{h['date']} {h.get('name', '')}".strip() for h in hours.get("holidays") or []],
            "calendars": list(hours.get("calendars") or []),
        }
        for d in DAYS:
            spans = days.get(str(d)) or [] if hours else WHOLE_DAY  # no hours: open 24/7
            body[f"day_{d}"] = ", ".join(f"{a}-{b}" for a, b in spans)
        return body

    def _spans(self, day: int, text: str) -> list[list[str]]:
        spans: list[list[str]] = []
        for part in re.split(r"[,;]", text):
            if not part.strip():
                continue
            match = _SPAN.fullmatch(part)
            if match is None:
                raise InvalidInput(
                    "write the hours as 09:00-18:00, several spans separated by commas (got '{text}')",
                    text=part.strip(),
                    field=f"day_{day}",
                )
            start, end = _hhmm(match[1]), _hhmm(match[2])
            if start >= end:
                raise InvalidInput(
                    "{start}-{end}: the start must come before the end",
                    start=start,
                    end=end,
                    field=f"day_{day}",
                )
            spans.append([start, end])
        spans.sort()
        for before, after in itertools.pairwise(spans):
            if after[0] < before[1]:
                raise InvalidInput(
                    "{before} overlaps {after}",
                    before="-".join(before),
                    after="-".join(after),
                    field=f"day_{day}",
                )
        return spans

    def _holidays(self, lines: list[str]) -> list[dict[str, str]]:
        out = []
        for line in lines:
            match = _HOLIDAY.fullmatch(line)
            if match is None:
                raise InvalidInput(
                    "each line is a date and a name, like 2026-12-31 New Year's Eve (got '{text}')",
                    text=line,
                    field="holidays",
                )
            out.append({"date": match[1], "name": match[2].strip()})
        return out

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        assert item_id is not None  # no creation here: create_roles is empty
        problems: list[DomainError] = []
        days: dict[str, list[list[str]]] = {}
        for d in DAYS:
            try:
                spans = self._spans(d, str(data.get(f"day_{d}", "")))
            except InvalidInput as exc:
                problems.append(exc)
                continue
            if spans:
                days[str(d)] = spans
        holidays: list[dict[str, str]] = []
        try:
            holidays = self._holidays(data.get("holidays") or [])
        except InvalidInput as exc:
            problems.append(exc)
        if problems:
            first = problems[0]
            first.errors = problems if len(problems) > 1 else []
            raise first
        followed = list(data.get("calendars") or [])
        hours: dict[str, Any] | None = {"timezone": data["timezone"], "days": days, "holidays": holidays}
        if followed:
            hours["calendars"] = followed  # type: ignore[index]
        if not holidays and not followed and all(days.get(str(d)) == WHOLE_DAY for d in DAYS):
            hours = None  # around the clock: the queue has no hours at all
        try:
            await admin.check_update_queue(session, self.who, item_id, {"business_hours": hours})
        except DomainError as exc:
            for problem in exc.errors or [exc]:
                problem.field = self._field_of(problem)
            raise
        return item_id

    @staticmethod
    def _field_of(problem: DomainError) -> str:
        """``business_hours.holidays[2].date`` → ``holidays``; a day's span → ``day_N``."""
        name = problem.field or ""
        if ".holidays" in name:
            return "holidays"
        if ".calendars" in name:
            return "calendars"
        day = problem.params.get("day")
        if day is not None:
            return f"day_{day}"
        if "time zone" in problem.template:
            return "timezone"
        return base_field(name) if name != "business_hours" else "_"


class Escalation(Section):
    """A queue's escalation steps: after N seconds waiting, relax the skill levels asked for
    and/or offer to another queue's operators too (the customer keeps their place)."""

    slug = "escalation"
    title = "adm.escalation"
    edit_roles = (ADMIN, SUPERVISOR)
    create_roles = ()
    can_delete = False
    SPARE = 2
    """Empty rows under the existing steps: room to add steps without a script."""

    async def table(self, session: AsyncSession) -> Table:
        names = dict(await queue_options(session, self.who))
        rows = []
        for q in await admin.list_queues(session, self.who, limit=LIMIT):
            steps = q.escalation or []
            text = "; ".join(self._step_text(s, names) for s in steps) or self.t("adm.esc.none")
            rows.append([Cell(q.name, self.href(q.id)), Cell(str(len(steps))), Cell(text)])
        return Table([self.t(c) for c in ("adm.f.name", "adm.esc.steps", "adm.esc.summary")], rows)

    def _step_text(self, step: dict[str, Any], names: dict[str, str]) -> str:
        parts = [self.t("adm.esc.after", seconds=step["after_seconds"])]
        if step.get("relax_levels"):
            parts.append(self.t("adm.esc.relax", levels=step["relax_levels"]))
        if step.get("add_queue_id"):
            parts.append(
                self.t("adm.esc.add", name=names.get(str(step["add_queue_id"]), step["add_queue_id"]))
            )
        return " ".join(parts)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await admin.access_queue(session, self.who, item_id)

    def _rows(self, item: Any | None) -> int:
        return len((item.escalation if item is not None else None) or []) + self.SPARE

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        queues = [
            (v, n) for v, n in await queue_options(session, self.who) if item is None or v != str(item.id)
        ]
        fields = []
        for i in range(self._rows(item)):
            n = i + 1
            fields += [
                Field(f"after_{i}", t("adm.esc.f.after", n=n), "number", nullable=True),
                Field(f"relax_{i}", t("adm.esc.f.relax", n=n), "number", nullable=True),
                Field(
                    f"add_{i}",
                    t("adm.esc.f.add", n=n),
                    "select",
                    [("", t("adm.none")), *queues],
                    numeric=True,
                    nullable=True,
                ),
            ]
        fields[0].help = t("adm.esc.help")
        return fields

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for i, step in enumerate((item.escalation if item is not None else None) or []):
            body[f"after_{i}"] = step.get("after_seconds")
            body[f"relax_{i}"] = step.get("relax_levels", 0)
            body[f"add_{i}"] = step.get("add_queue_id")
        return body

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        assert item_id is not None  # no creation here: create_roles is empty
        rows = sorted({int(k.partition("_")[2]) for k in data if k.startswith("after_")})
        steps: list[dict[str, Any]] = []
        where: list[int] = []  # the form row of each step sent
        problems: list[DomainError] = []
        for i in rows:
            after, relax, add = data.get(f"after_{i}"), data.get(f"relax_{i}"), data.get(f"add_{i}")
            if after is None:
                if relax or add:
                    problems.append(InvalidInput("a step needs its waiting time", field=f"after_{i}"))
                continue
            step: dict[str, Any] = {"after_seconds": after, "relax_levels": relax or 0}
            if add is not None:
                step["add_queue_id"] = add
            steps.append(step)
            where.append(i)
        if problems:
            first = problems[0]
            first.errors = problems if len(problems) > 1 else []
            raise first
        try:
            await admin.check_update_queue(session, self.who, item_id, {"escalation": steps})
        except DomainError as exc:
            for problem in exc.errors or [exc]:
                problem.field = self._field_of(problem.field or "", where)
            raise
        return item_id

    @staticmethod
    def _field_of(name: str, where: list[int]) -> str:
        """``escalation[1].add_queue_id`` → ``add_<form row of step 1>``."""
        match = re.match(r"escalation\[(\d+)\]\.(\w+)", name)
        if match is None:
            return "_"
        row = where[int(match[1])]
        prefix = {"after_seconds": "after", "relax_levels": "relax", "add_queue_id": "add"}.get(
            match[2], "after"
        )
        return f"{prefix}_{row}"
