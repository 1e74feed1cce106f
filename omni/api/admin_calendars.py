"""REST of the shared holiday calendars (``omni.domain.calendars``), in ``omni.api.admin`` style.

* ``GET /api/v1/admin/calendars`` (admins, supervisors, auditors): every calendar by name.
* ``POST /api/v1/admin/calendars`` (admins): ``{"name", "dates": [{"date": "2027-01-07",
  "name": "Christmas"}], "yearly": [{"date": "05-09", "name": "Victory Day"}]}``.
* ``GET / PATCH / DELETE /api/v1/admin/calendars/{id}``: one calendar; ``PATCH`` changes what it
  is given (a list replaces the whole list); ``DELETE`` is refused (409) while a queue or
  campaign follows it.

Queues follow calendars in ``business_hours.calendars`` (``PATCH /api/v1/queues/{id}``),
campaigns in ``calendar_ids``. Handlers only translate HTTP to the domain, which checks the
role and the input and writes the audit log.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, patch, post
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import RowId, given
from omni.api.admin_responses import OK, READ, REMOVE, WRITE, OkOut, out, out_list
from omni.api.contracts import Name
from omni.api.core import DEPS
from omni.domain import calendars
from omni.domain.auth import Principal
from omni.services import Services


class DayIn(msgspec.Struct, forbid_unknown_fields=True):
    date: Name
    """``2027-01-07`` in ``dates``, ``01-07`` (month-day) in ``yearly``."""
    name: str | UnsetType = UNSET


class CalendarCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    dates: list[DayIn] | UnsetType = UNSET
    yearly: list[DayIn] | UnsetType = UNSET


class CalendarUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    dates: list[DayIn] | UnsetType = UNSET
    yearly: list[DayIn] | UnsetType = UNSET


class DayOut(msgspec.Struct):
    date: str
    name: str = ""


class CalendarOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    dates: list[DayOut]
    """Dated days off, sorted."""
    yearly: list[DayOut]
    """Days off every year (month-day), sorted."""


class CalendarController(Controller):
    path = "/api/v1/admin/calendars"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_calendars(self, who: Principal, services: Services) -> list[CalendarOut]:
        async with services.db.transaction() as session:
            cals = await calendars.list_calendars(session, who)
            return out_list([calendars.calendar_dict(c) for c in cals], CalendarOut)

    @post("/", responses=WRITE)
    async def create_calendar(self, who: Principal, services: Services, data: CalendarCreate) -> CalendarOut:
        async with services.db.transaction() as session:
            cal = await calendars.check_create_calendar(session, who, given(data))
            return out(calendars.calendar_dict(cal), CalendarOut)

    @get("/{calendar_id:int}", responses=READ)
    async def get_calendar(self, who: Principal, services: Services, calendar_id: RowId) -> CalendarOut:
        async with services.db.transaction() as session:
            cal = await calendars.get_calendar(session, who, calendar_id)
            return out(calendars.calendar_dict(cal), CalendarOut)

    @patch("/{calendar_id:int}", responses=WRITE)
    async def update_calendar(
        self, who: Principal, services: Services, calendar_id: RowId, data: CalendarUpdate
    ) -> CalendarOut:
        async with services.db.transaction() as session:
            cal = await calendars.check_update_calendar(session, who, calendar_id, given(data))
            return out(calendars.calendar_dict(cal), CalendarOut)

    @delete("/{calendar_id:int}", status_code=200, responses=REMOVE)
    async def delete_calendar(self, who: Principal, services: Services, calendar_id: RowId) -> OkOut:
        async with services.db.transaction() as session:
            await calendars.check_delete_calendar(session, who, calendar_id)
        return OK


CONTROLLERS = [CalendarController]
