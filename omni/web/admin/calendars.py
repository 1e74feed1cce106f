"""Admin section for shared holiday calendars (``omni.domain.calendars``) at
``/admin/calendars``, the twin of ``/api/v1/admin/calendars``: a name, the dated days off and
the days off every year, one per line with an optional name, and a box to paste a CSV or ICS
list into. Queues attach calendars on the business hours page, campaigns on theirs."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.domain import calendars
from omni.domain.errors import DomainError, InvalidInput
from omni.web.admin.forms import ADMIN, AUDITOR, SUPERVISOR, Cell, Field, Section, Table


def _line(day: dict[str, str]) -> str:
    return f"{day['date']} {day.get('name', '')}".strip()


class Calendars(Section):
    slug = "calendars"
    title = "adm.cal"
    view_roles = (ADMIN, SUPERVISOR, AUDITOR)

    async def table(self, session: AsyncSession) -> Table:
        rows = []
        for cal in await calendars.list_calendars(session, self.who):
            queues, campaigns = await calendars.followers(session, cal.id)
            rows.append(
                [
                    Cell(cal.name, self.href(cal.id)),
                    Cell(str(len(cal.dates or []))),
                    Cell(str(len(cal.yearly or []))),
                    Cell(", ".join([*queues, *campaigns]) or "—"),
                ]
            )
        cols = ("adm.f.name", "adm.cal.dates", "adm.cal.yearly", "adm.cal.followers")
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await calendars.get_calendar(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        return [
            Field("name", t("adm.f.name"), required=True, help=t("adm.cal.name_help")),
            Field("dates", t("adm.cal.dates"), "lines", help=t("adm.cal.dates_help"), rows=8),
            Field("yearly", t("adm.cal.yearly"), "lines", help=t("adm.cal.yearly_help"), rows=4),
            Field("import_text", t("adm.cal.import"), "textarea", help=t("adm.cal.import_help"), rows=4),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"name": "", "dates": [], "yearly": [], "import_text": ""}
        return {
            "name": item.name,
            "dates": [_line(d) for d in item.dates or []],
            "yearly": [_line(d) for d in item.yearly or []],
            "import_text": "",
        }

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        problems: list[DomainError] = []
        dates: list[dict[str, str]] = []
        yearly: list[dict[str, str]] = []
        for key in ("dates", "yearly"):
            try:
                found, every_year = calendars.parse_lines(data.get(key) or [], key)
            except InvalidInput as exc:
                problems.append(exc)
                continue
            if key == "dates" and every_year:
                problems.append(InvalidInput(self.t("adm.cal.yearly_in_dates"), field=key))
            if key == "yearly" and found:
                problems.append(InvalidInput(self.t("adm.cal.dated_in_yearly"), field=key))
            dates += found if key == "dates" else []
            yearly += every_year if key == "yearly" else []
        pasted = str(data.get("import_text") or "")
        if pasted.strip():
            try:
                more, more_yearly = calendars.parse_lines(pasted.splitlines(), "import_text")
            except InvalidInput as exc:
                problems.append(exc)
            else:
                known = {d["date"] for d in dates} | {d["date"] for d in yearly}
                dates += [d for d in more if d["date"] not in known]
                yearly += [d for d in more_yearly if d["date"] not in known]
        if problems:
            first = problems[0]
            first.errors = problems if len(problems) > 1 else []
            raise first
        body = {"name": data.get("name", ""), "dates": dates, "yearly": yearly}
        try:
            if item_id is None:
                cal = await calendars.check_create_calendar(session, self.who, body)
            else:
                cal = await calendars.check_update_calendar(session, self.who, item_id, body)
        except DomainError as exc:
            for problem in exc.errors or [exc]:
                problem.field = (problem.field or "name").split("[")[0]
            raise
        return cal.id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await calendars.check_delete_calendar(session, self.who, item_id)
