"""The "takes outbound" status flag: built-in defaults, the admin domain, the statuses form (ru)."""

from __future__ import annotations

from sqlalchemy import select

from omni.db import models as m
from omni.domain import admin
from omni.services import Services
from tests import factories as f
from tests.web.test_admin_pages import World, client_for, form_of, post_form, world  # noqa: F401  (fixture)


async def test_available_statuses_take_outbound_by_default_and_pauses_do_not(services: Services) -> None:
    async with services.db.transaction() as s:
        flags = dict((await s.execute(select(m.OperatorStatus.code, m.OperatorStatus.takes_outbound))).all())
        assert flags["available"] is True
        assert not any(flags[code] for code in ("offline", "pause", "dnd", "ringing", "talking", "wrap_up"))
        root = f.who(await f.user(s, "root", m.Role.ADMIN))
        ready = await admin.check_create_status(
            s, root, {"code": "ready", "name": "Ready", "kind": "available"}
        )
        lunch = await admin.check_create_status(s, root, {"code": "lunch", "name": "Lunch", "kind": "pause"})
        inbound = await admin.check_create_status(
            s, root, {"code": "in_only", "name": "Inbound only", "kind": "available", "takes_outbound": False}
        )
        assert (ready.takes_outbound, lunch.takes_outbound, inbound.takes_outbound) == (True, False, False)
        # Blending is the install's policy: even the built-in status may stop taking outbound.
        available = await s.scalar(select(m.OperatorStatus).where(m.OperatorStatus.code == "available"))
        assert available is not None
        await admin.check_update_status(s, root, available.id, {"takes_outbound": False})
        assert available.takes_outbound is False


async def test_the_statuses_form_shows_and_saves_takes_outbound_in_russian(world: World) -> None:  # noqa: F811
    async with world.server.services.db.transaction() as s:
        root = await s.get_one(m.User, world.ids["admin"])
        root.language = "ru"
        available = await s.scalar(select(m.OperatorStatus).where(m.OperatorStatus.code == "available"))
        assert available is not None
        status_id = available.id
    async with client_for(world, "root") as c:
        page = await c.get(f"/admin/statuses/{status_id}")
        assert page.status_code == 200
        assert "Принимает исходящие (кампании)" in page.text
        assert form_of(page.text).get("takes_outbound")
        saved = await post_form(
            c, f"/admin/statuses/{status_id}", f"/admin/statuses/{status_id}", takes_outbound=None
        )
        assert saved.status_code in (302, 303), saved.text
    async with world.server.services.db.transaction() as s:
        assert (await s.get_one(m.OperatorStatus, status_id)).takes_outbound is False
