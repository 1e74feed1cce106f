"""Admin pages in Russian: enum labels instead of raw values, every field's error at once, and
who among the supervisors sees a queue, an operator or a group (issue 10, items 19, 20, 24)."""

from __future__ import annotations

import re

from omni.db import models as m
from tests import factories as f
from tests.web.test_admin_pages import World, client_for, field_error, post_form, world

__all__ = ["world"]  # the fixture, shared with the other admin page tests


def _cells(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)]


async def _russian(world: World) -> None:
    async with world.server.services.db.transaction() as s:
        root = await s.get_one(m.User, world.ids["admin"])
        root.language = "ru"
        await f.inbox(s, await s.get_one(m.Queue, world.ids["q_a"]), channel="widget", name="Сайт")


async def test_russian_admin_pages_show_enum_labels_not_raw_values(world: World) -> None:
    await _russian(world)
    async with client_for(world, "root") as c:
        queues = _cells((await c.get("/admin/queues")).text)
        assert "Дольше всех свободен" in queues  # strategy longest_idle
        assert "longest_idle" not in queues
        form = (await c.get(f"/admin/queues/{world.ids['q_a']}")).text
        assert '<option value="voicemail">Голосовая почта</option>' in form
        assert '<option value="round_robin">По кругу</option>' in form
        inboxes = _cells((await c.get("/admin/inboxes")).text)
        assert "Веб-чат" in inboxes and "widget" not in inboxes


async def test_admin_form_shows_every_fields_error_at_once_in_russian(world: World) -> None:
    await _russian(world)
    async with client_for(world, "root") as c:
        bad = await post_form(
            c, "/admin/queues/new", "/admin/queues/new", name="x" * 129, sla_seconds="0", priority="soon"
        )
        assert bad.status_code == 400
        assert field_error(bad.text, "name") == "Название: не длиннее 128 символов"
        assert field_error(bad.text, "sla_seconds") == "SLA, с: не меньше 1"
        assert field_error(bad.text, "priority") == "Введите целое число."
    async with world.server.services.db.transaction() as s:
        assert await s.get(m.Queue, world.ids["q_b"] + 1) is None  # nothing stored


async def test_admin_forms_say_which_supervisors_see_the_item(world: World) -> None:
    await _russian(world)
    async with client_for(world, "root") as c:
        seen = (await c.get(f"/admin/queues/{world.ids['q_a']}")).text
        assert 'data-visibility="info"' in seen and "Видят супервизоры: sup." in seen
        unseen = (await c.get(f"/admin/queues/{world.ids['q_b']}")).text
        assert 'data-visibility="warning"' in unseen
        assert "Эту очередь не видит ни один супервизор" in unseen
        new_queue = (await c.get("/admin/queues/new")).text
        assert "Супервизоры видят новую очередь только через её группу" in new_queue
        assert "Видят супервизоры: sup." in (await c.get(f"/admin/users/{world.ids['op_a']}")).text
        lonely = (await c.get(f"/admin/users/{world.ids['op_b']}")).text
        assert "Этого оператора не видит ни один супервизор" in lonely
        assert "Видят супервизоры: sup." in (await c.get(f"/admin/groups/{world.ids['g_a']}")).text
