"""The monitoring page offers Listen only where the grant's scope allows it (issue 16), in real
Chromium against the AMI emulator: with listen held at ``group``, a live call of an operator
outside the supervisor's groups shows Whisper and Barge but no Listen; once the operator joins
one of their groups, the page offers Listen and it originates ChanSpy."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain import grants
from omni.domain.auth import Principal
from tests import factories as f
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import actions, until
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page
from tests.e2e.test_voice_browser import CALLER, TIMEOUT, server, world  # noqa: F401 (fixtures)


async def test_listen_is_offered_only_on_calls_of_operators_in_the_supervisors_groups(
    server: LiveServer,  # noqa: F811
    emulator: AmiEmulator,
    world: dict[str, Any],  # noqa: F811
    browser: Browser,
) -> None:
    async with server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        sup = await s.scalar(select(m.User).where(m.User.username == "sup"))
        op = await s.scalar(select(m.User).where(m.User.username == "op"))
        assert sup is not None and op is not None
        team = m.Group(name="Team Sam")
        s.add(team)
        await s.flush()
        s.add(m.SupervisorScope(supervisor_id=sup.id, group_id=team.id))  # Olga is not in it
        root = Principal(boss.id, boss.username, m.Role.ADMIN)
        await grants.check_set_role_grants(s, root, "supervisor", {}, {grants.CALL_LISTEN: grants.GROUP})
    await until(lambda: server.services.adapters.get("voice").ami.ready)  # type: ignore[union-attr]
    _, op_page = await staff_page(browser, server.url, "op")
    await expect(op_page.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)
    emulator.incoming_call(CALLER, "Ivan", inbox=world["inbox"])
    await until(lambda: emulator.ringing("101"))
    emulator.answer("101")
    conv_id = await until(lambda: _talking(server))

    sup_context, sup_page = await staff_page(browser, server.url, "sup")
    controls = sup_page.locator(f'[data-testid=conversation][data-conversation-id="{conv_id}"]')
    await expect(controls.get_by_test_id("call-whisper")).to_be_visible(timeout=TIMEOUT)
    await expect(controls.get_by_test_id("call-barge")).to_be_visible()
    await expect(controls.get_by_test_id("call-listen")).to_have_count(0)
    await sup_page.screenshot(path=screenshot_path("supervisor-listen-out-of-group.png"), full_page=True)

    async with server.services.db.transaction() as s:
        s.add(m.GroupMember(group_id=team.id, user_id=op.id))
    await sup_page.reload()
    await controls.get_by_test_id("call-listen").click(timeout=TIMEOUT)
    await expect(sup_page.get_by_test_id("action-result")).to_have_text(
        "Your phone rings: pick it up to listen.", timeout=TIMEOUT
    )
    spy = await until(
        lambda: [a for a in actions(emulator, "Originate") if a.get("Application") == "ChanSpy"]
    )
    assert spy[-1]["Channel"] == "PJSIP/201"
    await sup_context.close()


async def _talking(srv: LiveServer) -> int | None:
    async with srv.services.db.transaction() as s:
        conv = await s.scalar(
            select(m.Conversation).where(
                m.Conversation.medium == m.Medium.VOICE, m.Conversation.status == m.ConversationStatus.ACTIVE
            )
        )
        return conv.id if conv is not None else None
