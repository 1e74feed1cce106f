"""``/readyz`` reports the voice link: the app (voice enabled) started before Asterisk, Asterisk
coming up, and Asterisk stopping again behind a proxy that accepts and closes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.channels.voice.ami_emulator import AmiEmulator
from tests.conftest import (
    LiveServer,
    _asyncpg_url,
    create_test_database,
    drop_test_database,
    free_port,
    make_settings,
)
from tests.helpers import HTTP_TIMEOUT, until


@pytest.fixture
async def emulator() -> AsyncIterator[AmiEmulator]:
    emu = AmiEmulator(free_port())  # not listening: Omni starts first
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture
async def server(pg_template: str, emulator: AmiEmulator, tmp_path: Any) -> AsyncIterator[LiveServer]:
    name = await create_test_database(pg_template)
    settings = make_settings(_asyncpg_url(name), data_dir=tmp_path)
    v = settings.voice
    v.enabled = True
    v.ami_port = emulator.port
    v.ami_secret = emulator.secret
    v.reconnect_min_seconds = 0.05
    v.reconnect_max_seconds = 0.2
    v.agi_port = 0
    srv = LiveServer(settings)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
        await drop_test_database(name)


async def test_readyz_reports_voice_down_until_asterisk_answers_and_when_it_goes(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as http:

        async def readyz() -> httpx.Response:
            return await http.get("/readyz")

        down = await readyz()
        assert down.status_code == 503
        body = down.json()
        assert body["ready"] is False and body["checks"]["database"] == "ok"
        assert body["checks"]["voice"].startswith("error: AMI link to 127.0.0.1:")
        assert "connect" in body["checks"]["voice"]

        await emulator.start()  # Asterisk comes up after Omni

        async def up() -> bool:
            return (await readyz()).status_code == 200

        await until(up)
        assert (await readyz()).json() == {
            "ready": True,
            "checks": {"database": "ok", "redis": "ok", "voice": "ok"},
        }

        await emulator.accept_then_close()  # Asterisk stops behind a proxy / published port

        async def refused_by_the_proxy() -> bool:
            response = await readyz()
            voice = str(response.json()["checks"]["voice"])
            return response.status_code == 503 and "closed before Asterisk answered the login" in voice

        await until(refused_by_the_proxy)

        await emulator.start()
        await until(up)
