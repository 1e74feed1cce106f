"""The AMI link itself: login (accepted / refused), event lists, ``Response: Follows``,
reconnect with backoff after a drop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from channels.voice.ami import AmiLink
from omni.settings import VoiceSettings
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.conftest import free_port


async def until(check: Any, timeout: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return value


@pytest.fixture
async def emu() -> AsyncIterator[AmiEmulator]:
    e = AmiEmulator(free_port())
    await e.start()
    yield e
    await e.close()


def link_for(emu: AmiEmulator, events: list[Mapping[str, Any]], logins: list[int], **kw: Any) -> AmiLink:
    settings = VoiceSettings(
        ami_port=emu.port, ami_secret=emu.secret, reconnect_min_seconds=0.05, reconnect_max_seconds=0.4, **kw
    )

    async def on_login() -> None:
        logins.append(1)

    return AmiLink(settings, events.append, on_login)


async def test_login_event_list_command_and_reconnect(emu: AmiEmulator) -> None:
    events: list[Mapping[str, Any]] = []
    logins: list[int] = []
    link = link_for(emu, events, logins)
    await link.start()
    try:
        await until(lambda: link.ready)
        emu.incoming_call("+79160000001", inbox=1)
        listing = await link.send({"Action": "CoreShowChannels"})
        assert listing[0]["EventList"] == "start"
        assert [m["Event"] for m in listing[1:]] == ["CoreShowChannel", "CoreShowChannelsComplete"]
        assert listing[1]["Context"] == "omni-wait"
        version = await link.send({"Action": "Command", "Command": "core show version"})
        assert version["Response"] == "Follows" and "Asterisk 20" in version.content
        await until(lambda: any(e.get("UserEvent") == "OmniEnqueue" for e in events))
        emu.drop()
        await until(lambda: not link.ready)
        await until(lambda: link.ready and len(logins) == 2)
        assert emu.logins == 2
    finally:
        await link.stop()


async def test_refused_login_is_an_auth_failure_retried_slowly(emu: AmiEmulator) -> None:
    emu.refuse_login = True
    events: list[Mapping[str, Any]] = []
    logins: list[int] = []
    link = link_for(emu, events, logins)
    await link.start()
    try:
        await until(lambda: link.auth_failed)
        assert not link.ready and logins == []
        assert link._delay == 0.4  # retried at the slowest pace
        emu.refuse_login = False
        await until(lambda: link.ready, timeout=5)  # a fixed secret / unblocked user recovers
        assert not link.auth_failed
    finally:
        await link.stop()
