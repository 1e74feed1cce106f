# ruff: noqa: E501  (scenario documents read best one node per line)
"""Prompts picked from the prompt manager (``prompt_id``) are what the IVR plays: the emulated
Asterisk channel (FastAGI wire protocol) hears the converted WAV's sound, and a scenario naming
an unknown prompt can't be published."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from bots import runner, service
from channels.voice.agi import AgiServer
from omni.db import models as m
from omni.domain import prompts
from omni.domain.auth import Principal
from omni.services import Services
from omni.settings import Settings
from tests import factories as f
from tests.channels.voice.agi_client import EmulatedCall
from tests.media.audio import tone


def _doc(queue_id: int, menu_prompt: int, bye_prompt: int) -> dict[str, object]:
    return {
        "name": "Prompted menu",
        "start": "menu",
        "nodes": [
            {"id": "menu", "type": "menu",
             "content": {"text": "Sales?", "prompt": "omni/old-name", "prompt_id": menu_prompt},
             "options": [{"id": "sales", "label": "Sales", "dtmf": "1"}],
             "retries": 0, "timeout_seconds": 3,
             "ports": {"opt:sales": "to_sales", "on_max_retries": "bye", "on_no_input": "bye"}},
            {"id": "to_sales", "type": "handoff", "queue_id": queue_id, "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
            {"id": "bye", "type": "close", "result_code": "", "message": {"text": "Goodbye", "prompt_id": bye_prompt}},
        ],
    }  # fmt: skip


def _is_file(path: str) -> bool:
    return Path(path).is_file()


async def test_ivr_plays_the_sound_of_the_prompt_picked_in_the_node(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    runner.install(services.db)
    async with services.db.transaction() as s:
        admin = Principal.of(await f.user(s, "boss", role=m.Role.ADMIN))
        op = await f.user(s, "op")
        sales = await f.queue(s, "sales", [op])
        ib = await f.inbox(s, sales, channel="voice")
        ib.config = {"scenario": "prompted"}
        await f.set_status(s, op, "available")
        menu = await prompts.do_upload_prompt(
            s, admin, "ivr", "Menu", tone(tmp_path / "menu.mp3"), "menu.mp3", "audio/mpeg", settings=settings
        )
        bye = await prompts.do_upload_prompt(
            s,
            admin,
            "ivr",
            "Bye",
            tone(tmp_path / "bye.wav", rate=16000, channels=1),
            "bye.wav",
            "audio/wav",
            settings=settings,
        )
        welcome = await prompts.do_upload_prompt(
            s,
            admin,
            "",
            "Welcome",
            tone(tmp_path / "w.wav", seconds=0.5),
            "w.wav",
            "audio/wav",
            settings=settings,
        )
        ib.config = {"scenario": "prompted", "welcome_prompt_id": welcome.id}
        row = await service.create(s, admin, "prompted", "Prompted", _doc(sales.id, menu.id, bye.id))
        await service.publish(s, admin, row.id)
        token, menu_sound, bye_sound = ib.public_token, menu.sound, bye.sound
        welcome_sound = welcome.sound
        inbox_id, op_id, sales_id = ib.id, op.id, sales.id
    assert _is_file(menu_sound + ".wav")
    agi = AgiServer(services, "127.0.0.1", 0, prompts_dir="/var/lib/omni/prompts")
    await agi.start()
    try:
        call = EmulatedCall("127.0.0.1", agi.port, args=[token], uniqueid="1700000100.1", keys=[None])
        await call.run()
    finally:
        await agi.stop()
    assert call.played == [welcome_sound, menu_sound, bye_sound], (
        "the inbox's welcome, then the prompt manager's sounds (not the old file name)"
    )
    assert call.variables["OMNI_RESULT"] == "closed"
    # A caller an operator already had (a transfer back to the IVR) is not welcomed again.
    conv_id = int(call.variables["OMNI_CONVERSATION"])
    async with services.db.transaction() as s:
        inbox = await s.get_one(m.Inbox, inbox_id)
        assert await prompts.welcome_sound(s, inbox, conv_id) == welcome_sound
        now = datetime.now(UTC)
        s.add(
            m.Offer(
                conversation_id=conv_id, user_id=op_id, queue_id=sales_id, state="accepted", expires_at=now
            )
        )
        await s.flush()
        assert await prompts.welcome_sound(s, inbox, conv_id) is None


async def test_publishing_a_node_with_an_unknown_prompt_is_refused(services: Services) -> None:
    async with services.db.transaction() as s:
        admin = Principal.of(await f.user(s, "boss", role=m.Role.ADMIN))
        sales = await f.queue(s, "sales", [])
        row = await service.create(s, admin, "prompted", "Prompted", _doc(sales.id, 999, 998))
        problems = await service.problems(s, row)
        assert {(p.node, p.code) for p in problems} >= {("menu", "prompt_missing"), ("bye", "prompt_missing")}
        with pytest.raises(service.PublishRefused, match="prompt 999 does not exist"):
            await service.publish(s, admin, row.id)


async def test_a_prompt_file_missing_on_the_shared_directory_is_an_error_naming_its_path(
    services: Services, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Uploaded prompts live in a directory Asterisk must read at the same path. When the file
    is not there (the directory not shared, the file removed) Asterisk answers ``result=-1``
    and the caller hears nothing: the log names the path and the requirement; the call goes on."""
    runner.install(services.db)
    async with services.db.transaction() as s:
        admin = Principal.of(await f.user(s, "boss", role=m.Role.ADMIN))
        sales = await f.queue(s, "sales", [])
        ib = await f.inbox(s, sales, channel="voice")
        ib.config = {"scenario": "prompted"}
        menu = await prompts.do_upload_prompt(
            s, admin, "ivr", "Menu", tone(tmp_path / "m.wav"), "m.wav", "audio/wav", settings=settings
        )
        bye = await prompts.do_upload_prompt(
            s, admin, "ivr", "Bye", tone(tmp_path / "b.wav"), "b.wav", "audio/wav", settings=settings
        )
        row = await service.create(s, admin, "prompted", "Prompted", _doc(sales.id, menu.id, bye.id))
        await service.publish(s, admin, row.id)
        token, menu_sound, bye_sound = ib.public_token, menu.sound, bye.sound
    await anyio.Path(menu_sound + ".wav").unlink()
    agi = AgiServer(services, "127.0.0.1", 0, prompts_dir="/var/lib/omni/prompts")
    await agi.start()
    try:
        call = EmulatedCall("127.0.0.1", agi.port, args=[token], uniqueid="1700000100.9", keys=[None])
        await call.run()
    finally:
        await agi.stop()
    assert call.played == [bye_sound], "the missing menu is not heard; the scenario goes on"
    assert call.variables["OMNI_RESULT"] == "closed"
    assert f"prompt file {menu_sound}.* is missing on this node" in caplog.text
    assert "must be the same path on the Asterisk host" in caplog.text
    assert f"sound file '{menu_sound}' could not be played" in caplog.text
