"""A voice inbox's welcome prompt is picked from the prompt manager on the admin form; an id
that names no prompt is refused next to the field, and a prompt an inbox uses can't be deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni.db import models as m
from omni.domain import prompts
from omni.domain.errors import Conflict
from tests import factories as f
from tests.media.audio import tone
from tests.web.test_admin_pages import World, client_for, field_error, post_form, world  # noqa: F401


async def test_voice_inbox_picks_a_welcome_prompt(world: World, tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    settings = world.server.settings
    async with world.server.services.db.transaction() as s:
        sup = f.who(await s.get_one(m.User, world.ids["sup"]))
        prompt = await prompts.do_upload_prompt(
            s, sup, "ivr", "Welcome", tone(tmp_path / "w.wav"), "w.wav", "audio/wav", settings=settings
        )
        prompt_id = prompt.id
    async with client_for(world, "root") as c:
        form = (await c.get("/admin/inboxes/new")).text
        assert f'<option value="{prompt_id}">ivr/Welcome</option>' in form
        bad = await post_form(
            c, "/admin/inboxes/new", "/admin/inboxes/new", name="Line", channel="voice",
            queue_id=str(world.ids["q_a"]), welcome_prompt_id="999",
        )  # fmt: skip
        assert bad.status_code == 400 and "999" in (field_error(bad.text, "welcome_prompt_id") or "")
        ok = await post_form(
            c, "/admin/inboxes/new", "/admin/inboxes/new", name="Line", channel="voice",
            queue_id=str(world.ids["q_a"]), welcome_prompt_id=str(prompt_id),
        )  # fmt: skip
        assert ok.status_code in (302, 303), ok.text
        inbox_id = int(ok.headers["location"].split("/")[3].split("?")[0])
        page = (await c.get(ok.headers["location"])).text
        assert f'<option value="{prompt_id}" selected>' in page
    async with world.server.services.db.transaction() as s:
        inbox = await s.get_one(m.Inbox, inbox_id)
        assert inbox.config == {"welcome_prompt_id": prompt_id}
    with pytest.raises(Conflict, match="inbox 'Line'"):
        async with world.server.services.db.transaction() as s:
            await prompts.do_delete_prompt(s, sup, prompt_id)
