"""The prompt manager: real WAV/MP3 uploads become 8 kHz mono 16-bit WAVs Asterisk plays;
refusals store nothing; folders; deletion guarded by the scenarios that play a prompt."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bots import service as scenarios
from omni.db import models as m
from omni.domain import prompts
from omni.domain.errors import Conflict, InvalidInput, PermissionDenied
from omni.services import Services
from omni.settings import Settings
from tests import factories as f
from tests.media.audio import tone


def _exists(path: str) -> bool:
    return Path(path).exists()


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _format(path: str) -> tuple[int, int, int, int]:
    with wave.open(path + ".wav", "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()


async def _count(services: Services) -> tuple[int, int]:
    async with services.db.transaction() as s:
        return (
            await s.scalar(select(func.count()).select_from(m.Prompt)) or 0,
            await s.scalar(select(func.count()).select_from(m.StoredFile)) or 0,
        )


@pytest.mark.parametrize(
    ("suffix", "rate", "channels"),
    [(".wav", 44100, 2), (".wav", 16000, 1), (".wav", 8000, 2), (".mp3", 44100, 2), (".mp3", 22050, 1)],
)
async def test_upload_converts_to_8khz_mono_16bit(
    services: Services, settings: Settings, tmp_path: Path, suffix: str, rate: int, channels: int
) -> None:
    data = tone(tmp_path / f"src{suffix}", rate=rate, channels=channels, seconds=1.5)
    async with services.db.transaction() as s:
        sup = f.who(await f.user(s, "sup", m.Role.SUPERVISOR))
        row = await prompts.do_upload_prompt(
            s,
            sup,
            "greetings/day",
            "Hello",
            data,
            f"hello{suffix}",
            "application/octet-stream",
            settings=settings,
        )
        prompt_id = row.id
    async with services.db.transaction() as s:
        sound = await prompts.prompt_sound(s, prompt_id)
        row = await s.get_one(m.Prompt, prompt_id)
        original = await s.get_one(m.StoredFile, row.file_id)
    assert sound is not None and sound.startswith(str(settings.prompts_dir))
    got_rate, got_channels, width, frames = _format(sound)
    assert (got_rate, got_channels, width) == (8000, 1, 2)
    assert 1400 <= row.duration_ms <= 1600 and abs(frames / 8 - row.duration_ms) <= 1
    assert _read(original.path) == data
    assert original.content_type == ("audio/wav" if suffix == ".wav" else "audio/mpeg")
    assert row.folder == "greetings/day"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.4 not audio at all", "is not a WAV or MP3 file"),
        (b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk", "could not read the audio"),
        (b"", "the file is empty"),
    ],
)
async def test_non_audio_or_corrupt_upload_is_refused_and_nothing_is_stored(
    services: Services, settings: Settings, data: bytes, message: str
) -> None:
    async with services.db.transaction() as s:
        sup = f.who(await f.user(s, "sup", m.Role.SUPERVISOR))
    before = await _count(services)
    with pytest.raises(InvalidInput, match=message):
        async with services.db.transaction() as s:
            await prompts.do_upload_prompt(s, sup, "", "x", data, "x.wav", "audio/wav", settings=settings)
    assert await _count(services) == before
    leftovers = [p for p in settings.data_dir.rglob("*") if p.is_file()] if settings.data_dir.exists() else []
    assert not [p for p in leftovers if "uploads" in p.parts or "media" in p.parts]


async def test_too_long_or_too_big_prompt_is_refused_with_the_limit(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    settings.media.max_prompt_seconds = 1
    data = tone(tmp_path / "long.wav", seconds=3)
    async with services.db.transaction() as s:
        sup = f.who(await f.user(s, "sup", m.Role.SUPERVISOR))
    with pytest.raises(InvalidInput, match="3 s long; at most 1 s"):
        async with services.db.transaction() as s:
            await prompts.do_upload_prompt(s, sup, "", "x", data, "long.wav", "audio/wav", settings=settings)
    assert await _count(services) == (0, 0)
    assert not list(settings.prompts_dir.glob("*.wav"))
    settings.media.max_prompt_bytes = 1024
    with pytest.raises(InvalidInput, match="larger than 1 KB"):
        async with services.db.transaction() as s:
            await prompts.do_upload_prompt(s, sup, "", "x", data, "long.wav", "audio/wav", settings=settings)
    assert await _count(services) == (0, 0)


async def test_operators_cannot_manage_prompts(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    data = tone(tmp_path / "a.wav")
    async with services.db.transaction() as s:
        op = f.who(await f.user(s, "op"))
        with pytest.raises(PermissionDenied):
            await prompts.do_upload_prompt(s, op, "", "x", data, "a.wav", "audio/wav", settings=settings)
        with pytest.raises(PermissionDenied):
            await prompts.list_prompts(s, op)


async def test_folders_rename_moves_prompts_and_empty_folders_persist(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    data = tone(tmp_path / "a.wav", seconds=0.5)
    async with services.db.transaction() as s:
        sup = f.who(await f.user(s, "sup", m.Role.SUPERVISOR))
        await prompts.do_create_folder(s, sup, "/empty/")
        a = await prompts.do_upload_prompt(
            s, sup, "ivr/day", "Menu", data, "a.wav", "audio/wav", settings=settings
        )
        b = await prompts.do_upload_prompt(
            s, sup, "ivr", "Bye", data, "a.wav", "audio/wav", settings=settings
        )
        assert await prompts.list_folders(s, sup) == ["empty", "ivr", "ivr/day"]
        with pytest.raises(Conflict):
            await prompts.do_upload_prompt(
                s, sup, "ivr", "Bye", data, "a.wav", "audio/wav", settings=settings
            )
        with pytest.raises(InvalidInput):
            await prompts.do_create_folder(s, sup, "a/../b")
        await prompts.do_rename_folder(s, sup, "ivr", "menus/main")
        assert (a.folder, b.folder) == ("menus/main/day", "menus/main")
        assert await prompts.list_folders(s, sup) == ["empty", "menus", "menus/main", "menus/main/day"]
        assert [p.name for p in await prompts.list_prompts(s, sup, "menus/main")] == ["Bye"]
        moved = await prompts.do_update_prompt(s, sup, a.id, folder="empty", name="Main menu")
        actions = list(await s.scalars(select(m.AuditLog.action).order_by(m.AuditLog.id)))
        assert actions == [
            "prompt.folder_create", "prompt.upload", "prompt.upload", "prompt.folder_rename", "prompt.update"
        ]  # fmt: skip
        assert (moved.folder, moved.name) == ("empty", "Main menu")
        with pytest.raises(Conflict):
            await prompts.do_delete_folder(s, sup, "empty")
        await prompts.do_delete_folder(s, sup, "menus/main/day")


async def test_deleting_a_prompt_a_scenario_plays_is_refused_with_the_scenario(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    data = tone(tmp_path / "a.wav", seconds=0.5)
    async with services.db.transaction() as s:
        sup = f.who(await f.user(s, "sup", m.Role.SUPERVISOR))
        row = await prompts.do_upload_prompt(
            s, sup, "", "Hello", data, "a.wav", "audio/wav", settings=settings
        )
        prompt_id, sound = row.id, row.sound
        doc = {
            "name": "IVR",
            "start": "hi",
            "nodes": [
                {"id": "hi", "type": "message", "content": {"text": "Hi", "prompt_id": prompt_id},
                 "ports": {"next": "bye"}},
                {"id": "bye", "type": "close", "result_code": "done"},
            ],
        }  # fmt: skip
        await scenarios.create(s, sup, "ivr_main", "IVR", doc)
    with pytest.raises(Conflict, match="ivr_main"):
        async with services.db.transaction() as s:
            await prompts.do_delete_prompt(s, sup, prompt_id)
    assert _exists(sound + ".wav")
    async with services.db.transaction() as s:
        sc = await scenarios.by_key(s, "ivr_main")
        assert sc is not None
        doc["nodes"][0]["content"] = {"text": "Hi"}  # type: ignore[index]
        await scenarios.save_draft(s, sup, sc.id, doc)
    async with services.db.transaction() as s:
        await prompts.do_delete_prompt(s, sup, prompt_id)
    assert not _exists(sound + ".wav")
    assert await _count(services) == (0, 0)


async def test_deleting_a_campaigns_drop_and_machine_prompt_clears_them(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    data = tone(tmp_path / "a.wav", seconds=0.5)
    async with services.db.transaction() as s:
        sup = f.who(await f.user(s, "sup", m.Role.SUPERVISOR))
        queue = await f.queue(s, "Q", [])
        row = await prompts.do_upload_prompt(
            s,
            sup,
            "",
            "Sorry",
            data,
            "a.wav",
            "audio/wav",
            settings=settings,
        )
        campaign = m.Campaign(
            name="dial", channel="voice", dial_mode="predictive", queue_id=queue.id,
            drop_prompt_id=row.id, machine_prompt_id=row.id, drop_text="Sorry, all busy",
        )  # fmt: skip
        s.add(campaign)
        await s.flush()
        campaign_id, prompt_id = campaign.id, row.id
    async with services.db.transaction() as s:
        await prompts.do_delete_prompt(s, sup, prompt_id)
    async with services.db.transaction() as s:
        kept = await s.get_one(m.Campaign, campaign_id)
        assert (kept.drop_prompt_id, kept.machine_prompt_id) == (None, None)
        assert kept.drop_text == "Sorry, all busy", "the text is spoken instead"
        assert await prompts.prompt_sound(s, prompt_id) is None


def test_a_document_without_prompt_ids_dumps_and_hashes_as_before() -> None:
    """Old documents keep their revision hash (republishing one reuses its revision), and a
    picked prompt survives the round trip."""
    from bots.scenario import load

    old: dict[str, Any] = {
        "name": "Old",
        "start": "hi",
        "nodes": [
            {
                "id": "hi",
                "type": "message",
                "content": {"text": "Hi", "prompt": "omni/hi"},
                "ports": {"next": "bye"},
            },
            {"id": "bye", "type": "close", "result_code": "done"},
        ],
    }
    scenario = load(old)
    assert "prompt_id" not in str(scenario.logic())
    picked = load(
        {**old, "nodes": [{**old["nodes"][0], "content": {"text": "Hi", "prompt_id": 7}}, old["nodes"][1]]}
    )
    assert picked.logic()["nodes"][0]["content"]["prompt_id"] == 7
    assert load(picked.model_dump(mode="json", by_alias=True)).content_hash() == picked.content_hash()
    assert picked.content_hash() != scenario.content_hash()
