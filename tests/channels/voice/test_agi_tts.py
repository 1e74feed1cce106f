# ruff: noqa: E501  (scenario documents read best one node per line)
"""Text to speech in the IVR: a bot text with no prompt file is rendered by espeak-ng (numbers,
dates and money spelled in the caller's language), cached and streamed over the real FastAGI
wire; engine ``app`` runs the dialplan application with the spelled text; a render that cannot
run falls back to the application and says why in the log."""

from __future__ import annotations

import logging
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from bots import runner, service
from channels.voice.agi import AgiServer
from omni.db import models as m
from omni.domain.auth import Principal
from omni.services import Services
from omni.settings import SpeechSettings
from tests import factories as f
from tests.channels.voice.agi_client import EmulatedCall

NOTICE = "Ваш долг {{debt:money}}, оплатите до {{due:date}}"
SPELLED = "Ваш долг одна тысяча пятьсот рублей пятьдесят копеек, оплатите до первого декабря две тысячи двадцать шестого года"
BYE = "До свидания"


def _doc() -> dict[str, Any]:
    return {
        "name": "Notice",
        "start": "notice",
        "variables": [{"name": "debt", "default": 1500.5}, {"name": "due", "default": "2026-12-01"}],
        "nodes": [
            {"id": "notice", "type": "message", "content": {"text": NOTICE}, "ports": {"next": "bye"}},
            {"id": "bye", "type": "close", "result_code": "", "message": {"text": BYE}},
        ],
    }


@dataclass
class Ctx:
    services: Services
    agi: AgiServer
    token: str
    cache: Path

    def call(self, uniqueid: str) -> EmulatedCall:
        return EmulatedCall("127.0.0.1", self.agi.port, args=[self.token], uniqueid=uniqueid, keys=[])

    def speech(self, **options: Any) -> None:
        assert self.agi.settings is not None
        values: dict[str, Any] = {"cache_dir": self.cache, **options}
        self.agi.settings = self.agi.settings.model_copy(update={"speech": SpeechSettings(**values)})


@pytest_asyncio.fixture
async def ctx(services: Services, tmp_path: Path) -> AsyncIterator[Ctx]:
    runner.install(services.db)
    async with services.db.transaction() as s:
        admin = await f.user(s, "boss", role=m.Role.ADMIN)
        queue = await f.queue(s, "q", [])
        ib = await f.inbox(s, queue, channel="voice")
        ib.config = {"scenario": "notice", "language": "ru"}
        row = await service.create(s, Principal.of(admin), "notice", "Notice", _doc())
        await service.publish(s, Principal.of(admin), row.id)
        token = ib.public_token
    agi = AgiServer(services, "127.0.0.1", 0)
    await agi.start()
    try:
        yield Ctx(services, agi, token, tmp_path / "tts")
    finally:
        await agi.stop()


async def test_the_ivr_streams_rendered_speech_and_a_second_call_reuses_the_files(
    ctx: Ctx, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="omni.domain.speech")
    ctx.speech(engine="espeak")
    call = ctx.call("1700000100.1")
    await call.run()
    assert call.variables["OMNI_RESULT"] == "closed" and call.agi_hung_up
    assert len(call.played) == 2 and call.sent("EXEC") == []
    async with ctx.services.db.transaction() as s:
        rows = {r.sound: r for r in await s.scalars(select(m.TtsCache))}
    assert [rows[p].text for p in call.played] == [SPELLED, BYE], "what the caller heard, in Russian words"
    for sound in call.played:
        assert sound.startswith(str(ctx.cache.resolve()))
        with wave.open(sound + ".wav") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    assert caplog.text.count("rendered ") == 2

    again = ctx.call("1700000100.2")
    await again.run()
    assert again.played == call.played, "the same texts: the same files"
    assert caplog.text.count("rendered ") == 2, "no second synthesis: both came from the cache"


async def test_engine_app_runs_the_dialplan_application_with_the_spelled_text(ctx: Ctx) -> None:
    ctx.speech(engine="app", app="Festival")
    call = ctx.call("1700000100.3")
    await call.run()
    assert call.played == [f"tts:Festival:{SPELLED.replace(',', chr(92) + ',')}", f"tts:Festival:{BYE}"]
    assert call.variables["OMNI_RESULT"] == "closed"


async def test_a_render_that_cannot_run_falls_back_to_the_tts_app_and_says_why(
    ctx: Ctx, caplog: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    ctx.speech(engine="espeak")
    ctx.agi.tts_app = "Festival"
    call = ctx.call("1700000100.4")
    await call.run()
    assert call.played[1] == f"tts:Festival:{BYE}"
    assert call.played[0].startswith("tts:Festival:Ваш долг одна тысяча пятьсот рублей"), (
        "spelled all the same"
    )
    assert "espeak-ng and sox not found" in caplog.text and "falling back to Festival" in caplog.text
    assert call.variables["OMNI_RESULT"] == "closed"
