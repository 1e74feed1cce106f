# ruff: noqa: ASYNC240  (a test looks at the few small files it made)
"""``render``: espeak-ng + sox make one 8 kHz file per distinct text, cached in ``tts_cache``
(real programs, real PostgreSQL); a second render is a lookup, two at once leave one file."""

from __future__ import annotations

import asyncio
import logging
import sys
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select

from omni.db import models as m
from omni.domain import speech
from omni.services import Services
from omni.settings import Settings, SpeechSettings

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _settings(services: Services, tmp_path: Path, **speech_options: Any) -> Settings:
    options: dict[str, Any] = {"engine": "espeak", "cache_dir": tmp_path / "tts", **speech_options}
    return services.settings.model_copy(update={"speech": SpeechSettings(**options)})


def _wavs(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "tts").rglob("*") if p.is_file())


async def _render(services: Services, settings: Settings, text: str, lang: str, now: datetime = T0) -> str:
    async with services.db.transaction() as s:
        return await speech.render(s, settings, text, lang, now=now)


async def test_one_file_per_text_and_the_second_render_is_a_cache_hit(
    services: Services, tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="omni.domain.speech")
    settings = _settings(services, tmp_path)
    sound = await _render(services, settings, "Ваш долг 1 500,50 ₽", "ru")
    wav = Path(sound + ".wav")
    assert Path(sound).is_absolute() and wav.parent.parent == (tmp_path / "tts").resolve()
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), "what Asterisk plays"
        assert w.getnframes() > 8000 // 2, "there is speech in it"
    first = wav.stat()

    again = await _render(services, settings, "Ваш  долг 1 500,50 ₽", "ru-RU", now=T0 + timedelta(minutes=5))
    assert again == sound, "the same spelled text, language and voice: the same file"
    assert wav.stat().st_mtime_ns == first.st_mtime_ns and wav.stat().st_ino == first.st_ino
    assert caplog.text.count("rendered ") == 1, "espeak-ng ran once"
    async with services.db.transaction() as s:
        row = await s.get_one(m.TtsCache, sound.rsplit("/", 1)[-1])
    assert row.text == "Ваш долг одна тысяча пятьсот рублей пятьдесят копеек" and row.lang == "ru"
    assert row.size == first.st_size
    assert row.last_used_at == T0 + timedelta(minutes=5), "a hit counts as a use (eviction goes by it)"
    assert row.created_at == T0

    other = await _render(services, settings, "Ваш долг 1 500,50 ₽", "en")
    assert other != sound, "another language is another voice and another file"
    assert len(_wavs(tmp_path)) == 2 and caplog.text.count("rendered ") == 2


async def test_two_renders_of_one_text_at_once_leave_one_file_and_one_row(
    services: Services, tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="omni.domain.speech")
    settings = _settings(services, tmp_path)
    sounds = await asyncio.gather(
        *(_render(services, settings, "Payment due 2026-12-01", "en") for _ in range(3))
    )
    assert len(set(sounds)) == 1
    assert _wavs(tmp_path) == [Path(sounds[0] + ".wav")], "no second file, no temporary left behind"
    assert caplog.text.count("rendered ") == 1
    async with services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.TtsCache)) == 1


async def test_a_file_lost_from_the_cache_is_rendered_again(services: Services, tmp_path: Path) -> None:
    settings = _settings(services, tmp_path)
    sound = await _render(services, settings, "Hello", "en")
    Path(sound + ".wav").unlink()
    assert await _render(services, settings, "Hello", "en") == sound
    assert Path(sound + ".wav").is_file()


async def test_over_the_size_limit_the_least_recently_used_files_go(
    services: Services, tmp_path: Path
) -> None:
    probe = await _render(services, _settings(services, tmp_path / "probe"), "three", "en")
    three_size = Path(probe + ".wav").stat().st_size  # espeak-ng says one text the same way each time
    async with services.db.transaction() as s:
        await s.execute(delete(m.TtsCache))
    settings = _settings(services, tmp_path)
    old = await _render(services, settings, "one", "en", now=T0)
    used = await _render(services, settings, "two", "en", now=T0 + timedelta(minutes=1))
    await _render(services, settings, "one", "en", now=T0 + timedelta(minutes=2))  # "one" is used again
    small = _settings(services, tmp_path, cache_max_bytes=Path(old + ".wav").stat().st_size + three_size)
    new = await _render(services, small, "three", "en", now=T0 + timedelta(minutes=3))
    assert Path(new + ".wav").is_file() and Path(old + ".wav").is_file()
    assert not Path(used + ".wav").exists(), "the least recently used file went"
    async with services.db.transaction() as s:
        keys = set(await s.scalars(select(m.TtsCache.key)))
    assert keys == {old.rsplit("/", 1)[-1], new.rsplit("/", 1)[-1]}


async def test_missing_espeak_is_a_clear_error_with_the_text_to_fall_back_on(
    services: Services, tmp_path: Path, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    settings = _settings(services, tmp_path)
    with pytest.raises(speech.TtsUnavailable) as err:
        await _render(services, settings, "Due 01.12.2026", "en")
    assert "espeak-ng and sox not found" in str(err.value) and "apt-get install espeak-ng sox" in str(
        err.value
    )
    assert err.value.text == "Due first of December twenty twenty-six"
    assert "espeak-ng and sox not found" in caplog.text
    async with services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.TtsCache)) == 0


async def test_engine_settings(services: Services, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="OMNI_TTS_ENGINE must be espeak, app or empty, not 'festival'"):
        SpeechSettings(engine="festival")
    app = _settings(services, tmp_path, engine="app", app="Festival")
    async with services.db.transaction() as s:
        said = await speech.utterance(s, app, "Долг 21 руб.", "ru")
        assert said == speech.Utterance(app="Festival", text="Долг двадцать один рубль")
        with pytest.raises(speech.TtsError, match="only engine espeak renders files"):
            await speech.render(s, app, "x", "en")
        no_app = _settings(services, tmp_path, engine="app")
        with pytest.raises(speech.TtsError, match="OMNI_TTS_APP names no dialplan application"):
            await speech.utterance(s, no_app, "x", "en")
        bad = services.settings.model_copy(
            update={"speech": SpeechSettings.model_construct(engine="festival")}
        )
        with pytest.raises(speech.TtsError, match="unknown OMNI_TTS_ENGINE 'festival'"):
            await speech.utterance(s, bad, "x", "en")
        assert await speech.utterance(s, services.settings, "x", "en") is None, "off by default"


def test_engine_app_without_an_application_fails_at_start() -> None:
    with pytest.raises(ValidationError, match="OMNI_TTS_ENGINE=app needs OMNI_TTS_APP"):
        Settings(speech=SpeechSettings(engine="app"))
    assert Settings(speech=SpeechSettings(engine="app", app="Festival")).tts_app == "Festival"


NODE = """
import asyncio, sys
from pathlib import Path
from sqlalchemy import text
from omni.db import Database
from omni.domain import speech
from omni.settings import Settings, SpeechSettings

async def main() -> None:
    settings = Settings(database_url=sys.argv[1], data_dir=Path(sys.argv[2]),
                        speech=SpeechSettings(engine="espeak", cache_dir=Path(sys.argv[2]) / "tts"))
    db = Database(settings.effective_database_url)
    async with db.transaction() as s:
        await s.execute(text("select 1"))
    print("ready", flush=True)
    sys.stdin.readline()
    async with db.transaction() as s:
        sound = await speech.render(s, settings, "Two nodes, one text", "en")
    print(sound, flush=True)
    await db.dispose()

asyncio.run(main())
"""


async def test_two_nodes_rendering_one_text_at_once_leave_one_file_and_one_row(
    services: Services, tmp_path: Path
) -> None:
    """Across processes nothing is shared but the database and the directory: each writes its
    own temporary file and renames it, the second insert does nothing."""
    args = (sys.executable, "-c", NODE, services.settings.database_url, str(tmp_path))
    pipe = asyncio.subprocess.PIPE
    nodes = [await asyncio.create_subprocess_exec(*args, stdin=pipe, stdout=pipe) for _ in range(2)]
    for node in nodes:
        assert node.stdout is not None and (await node.stdout.readline()).strip() == b"ready"
    for node in nodes:  # both are connected and waiting: let them go together
        assert node.stdin is not None
        node.stdin.write(b"go\n")
        await node.stdin.drain()
    outputs = [await node.communicate() for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0]
    sounds = {out.decode().strip() for out, _ in outputs}
    assert len(sounds) == 1
    assert _wavs(tmp_path) == [Path(sounds.pop() + ".wav")], "one file, no temporary left behind"
    async with services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.TtsCache)) == 1
