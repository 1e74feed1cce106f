"""The queue form: overflow to a bot names the scenario it starts."""

from __future__ import annotations

from bots import service as bot_service
from omni.db import models as m
from omni.domain.auth import Principal
from tests.web.test_admin_pages import World, client_for, field_error, form_of, post_form, world

__all__ = ["world"]  # the fixture, shared with the other admin page tests


async def test_queue_form_refuses_overflow_to_a_bot_without_a_published_scenario(world: World) -> None:
    async with world.server.services.db.transaction() as s:
        root = Principal.of(await s.get_one(m.User, world.ids["admin"]))
        doc = {"name": "Sorry", "start": "bye", "nodes": [{"id": "bye", "type": "close", "result_code": ""}]}
        await bot_service.create(s, root, "draft", "Draft", doc)
        sorry = await bot_service.create(s, root, "sorry", "Sorry", doc)
        await bot_service.publish(s, root, sorry.id)
    url = f"/admin/queues/{world.ids['q_a']}"
    async with client_for(world, "root") as c:
        none = await post_form(c, url, url, overflow_action="bot", overflow_scenario="")
        assert none.status_code == 400
        assert "needs overflow_scenario" in (field_error(none.text, "overflow_scenario") or "")
        draft = await post_form(c, url, url, overflow_action="bot", overflow_scenario="draft")
        assert draft.status_code == 400
        assert "'draft' is not a published scenario" in (field_error(draft.text, "overflow_scenario") or "")
        ok = await post_form(c, url, url, overflow_action="bot", overflow_scenario="sorry")
        assert ok.status_code in (302, 303), ok.text
        saved = form_of((await c.get(ok.headers["location"])).text)
        assert (saved["overflow_action"], saved["overflow_scenario"]) == ("bot", "sorry")
