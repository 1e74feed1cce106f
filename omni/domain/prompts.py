"""The prompt manager: audio prompts uploaded as WAV or MP3, converted with sox to what Asterisk
plays (8 kHz mono 16-bit WAV), organised in folders and picked by id in scenario nodes
(``prompt_id``) and campaigns (drop / machine messages).

A prompt keeps two files: the converted WAV under the prompts directory (``sound`` is its path
without the extension, what ``Playback()``/``STREAM FILE`` take; the browser previews the same
file) and the upload as it came, a :class:`~omni.db.models.StoredFile`, for download. A refused
upload stores neither, nor a row. Supervisors and admins manage prompts; every change is audited.

Deleting a prompt a scenario still uses is refused with the scenarios' keys (a scenario would
otherwise fall silent on the call); campaigns let go of it (their columns are ``SET NULL`` and
the voice adapter falls back to the text).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.unit_of_work import unit_of_work
from omni.domain import audit, folders
from omni.domain.auth import Principal, check_role
from omni.domain.errors import Conflict, InvalidInput, NotFound
from omni.domain.files import human_size
from omni.settings import Settings, get_settings

__all__ = [
    "AREA",
    "MANAGERS",
    "access_prompt",
    "convert_audio",
    "do_create_folder",
    "do_delete_folder",
    "do_delete_prompt",
    "do_rename_folder",
    "do_update_prompt",
    "do_upload_prompt",
    "list_folders",
    "list_prompts",
    "prompt_dict",
    "prompt_ids_in",
    "prompt_sound",
    "prompt_users",
    "sniff_audio",
    "welcome_sound",
]

log = logging.getLogger(__name__)

AREA = "prompts"
MANAGERS = (m.Role.SUPERVISOR, m.Role.ADMIN)
READERS = (m.Role.SUPERVISOR, m.Role.ADMIN, m.Role.AUDITOR)
MAX_NAME = 128
MAX_UPLOAD = 100 * 1024 * 1024
"""The upload route's ceiling; ``settings.media.max_prompt_bytes`` is the limit in force."""
SOX_TIMEOUT_SECONDS = 120
RATE, CHANNELS, SAMPLE_BYTES = 8000, 1, 2


def sniff_audio(data: bytes) -> str | None:
    """``audio/wav`` or ``audio/mpeg`` from the first bytes (the declared type is not trusted)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


async def convert_audio(src: Path, kind: str, dst: Path) -> int:
    """Convert ``src`` (``wav``/``mp3``) to 8 kHz mono 16-bit WAV at ``dst``; the duration in ms.

    Raises ``ValueError`` with sox's complaint when the audio can't be read."""
    proc = await asyncio.create_subprocess_exec(
        "sox", "-V1", "-t", kind, str(src),
        "-r", str(RATE), "-c", str(CHANNELS), "-b", "16", "-e", "signed-integer", "-t", "wav", str(dst),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), SOX_TIMEOUT_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ValueError("sox took too long") from None
    if proc.returncode != 0:
        raise ValueError(err.decode(errors="replace").strip()[:500] or f"sox exited {proc.returncode}")

    def measure() -> int:
        with wave.open(str(dst), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, CHANNELS, SAMPLE_BYTES):
                raise ValueError("sox wrote an unexpected format")
            return w.getnframes() * 1000 // RATE

    try:
        return await asyncio.to_thread(measure)
    except (wave.Error, EOFError) as exc:
        raise ValueError(str(exc)) from exc


def prompt_dict(row: m.Prompt) -> dict[str, Any]:
    return {
        "id": row.id,
        "folder": row.folder,
        "name": row.name,
        "description": row.description,
        "sound": row.sound,
        "duration_ms": row.duration_ms,
        "has_original": row.file_id is not None,
        "audio_url": f"/api/v1/prompts/{row.id}/audio",
        "original_url": f"/api/v1/prompts/{row.id}/original",
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


async def _name_free(session: AsyncSession, folder: str, name: str, *, but: int | None = None) -> None:
    query = select(m.Prompt.id).where(m.Prompt.folder == folder, m.Prompt.name == name)
    if but is not None:
        query = query.where(m.Prompt.id != but)
    if await session.scalar(query) is not None:
        raise Conflict("a prompt named '{name}' is already in this folder", name=name)


async def do_upload_prompt(
    session: AsyncSession,
    who: Principal,
    folder: str,
    name: str,
    data: bytes,
    filename: str,
    content_type: str,
    *,
    description: str = "",
    settings: Settings | None = None,
) -> m.Prompt:
    """Store an uploaded WAV/MP3 as a prompt Asterisk can play.

    The declared ``content_type`` is only a hint: the first bytes decide, and sox must be able
    to read the whole file. Refusals (not audio, unreadable, too big, too long, a name taken)
    leave no file and no row behind."""
    check_role(who, *MANAGERS)
    settings = settings or get_settings()
    media = settings.media
    folder = folders.clean_folder(folder)
    name = folders.clean_name(name or Path(filename or "").stem, max_len=MAX_NAME)
    if not data:
        raise InvalidInput("the file is empty", field="file")
    if len(data) > media.max_prompt_bytes:
        raise InvalidInput(
            "the file is larger than {human_size}",
            human_size=human_size(media.max_prompt_bytes),
            field="file",
        )
    kind = sniff_audio(data)
    if kind is None:
        raise InvalidInput(
            "'{name}' is not a WAV or MP3 file (declared as '{content_type}')",
            name=Path(filename or "file").name[:256],
            content_type=(content_type or "?")[:100],
            field="file",
        )
    await _name_free(session, folder, name)
    target_dir = settings.prompts_dir
    token = secrets.token_hex(12)
    work = target_dir / ".incoming" / token
    final = target_dir / f"{token}.wav"
    stored_path: Path | None = None
    try:
        await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
        src = work / ("upload.wav" if kind == "audio/wav" else "upload.mp3")
        await asyncio.to_thread(src.write_bytes, data)
        try:
            duration_ms = await convert_audio(src, "wav" if kind == "audio/wav" else "mp3", work / "out.wav")
        except ValueError as exc:
            log.info("prompt upload %r refused: sox could not read it: %s", filename, exc)
            raise InvalidInput(
                "could not read the audio in '{name}': the file is damaged or not really {kind}",
                name=Path(filename or "file").name[:256],
                kind="WAV" if kind == "audio/wav" else "MP3",
                field="file",
            ) from exc
        if duration_ms <= 0:
            raise InvalidInput(
                "'{name}' contains no sound", name=Path(filename or "file").name[:256], field="file"
            )
        if duration_ms > media.max_prompt_seconds * 1000:
            raise InvalidInput(
                "the prompt is {seconds} s long; at most {max_seconds} s",
                seconds=duration_ms // 1000,
                max_seconds=media.max_prompt_seconds,
                field="file",
            )
        await asyncio.to_thread((work / "out.wav").replace, final)
        original = m.StoredFile(
            id=secrets.token_urlsafe(18),
            inbox_id=None,
            owner=f"prompt:{token}",
            name=Path(filename or f"{name}.{'wav' if kind == 'audio/wav' else 'mp3'}").name[:256],
            content_type=kind,
            size=len(data),
            path="",
        )
        uploads = settings.data_dir / "uploads"
        stored_path = uploads / original.id
        await asyncio.to_thread(uploads.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(stored_path.write_bytes, data)
        original.path = str(stored_path)
        session.add(original)
        await session.flush()
        now = datetime.now(UTC)
        row = m.Prompt(
            folder=folder,
            name=name,
            description=description[:2000],
            file_id=original.id,
            sound=str(final.with_suffix("")),
            duration_ms=duration_ms,
            created_by=who.id,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
    except BaseException:
        final.unlink(missing_ok=True)
        if stored_path is not None:
            stored_path.unlink(missing_ok=True)
        raise
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    audit.record(
        session, who, "prompt.upload", object_type="prompt", object_id=row.id,
        data={"folder": folder, "name": name, "duration_ms": duration_ms, "source": kind},
    )  # fmt: skip
    return row


async def access_prompt(session: AsyncSession, who: Principal, prompt_id: int) -> m.Prompt:
    check_role(who, *READERS)
    row = await session.get(m.Prompt, prompt_id)
    if row is None:
        raise NotFound("prompt not found")
    return row


async def list_prompts(session: AsyncSession, who: Principal, folder: str | None = None) -> list[m.Prompt]:
    """Prompts of one folder (``folder`` given; ``""`` is the root), else all; by folder, name."""
    check_role(who, *READERS)
    query = select(m.Prompt).order_by(m.Prompt.folder, m.Prompt.name)
    if folder is not None:
        query = query.where(m.Prompt.folder == folders.clean_folder(folder))
    return list(await session.scalars(query))


async def list_folders(session: AsyncSession, who: Principal) -> list[str]:
    check_role(who, *READERS)
    used = set(await session.scalars(select(m.Prompt.folder).distinct()))
    return await folders.folder_tree(session, AREA, used)


async def do_create_folder(session: AsyncSession, who: Principal, path: str) -> str:
    check_role(who, *MANAGERS)
    cleaned = await folders.do_create_folder(session, AREA, path)
    audit.record(session, who, "prompt.folder_create", object_type="prompt_folder", object_id=cleaned)
    return cleaned


async def do_rename_folder(session: AsyncSession, who: Principal, old: str, new: str) -> str:
    """Rename (or move) a folder with everything in it; a name clash inside refuses it all."""
    check_role(who, *MANAGERS)
    old, new = folders.check_move(old, new)
    rows = list(await session.scalars(select(m.Prompt).where(folders.inside(m.Prompt.folder, old))))
    known = await list_folders(session, who)
    if not rows and old not in known:
        raise NotFound("folder not found")
    for row in rows:
        target = folders.moved_path(row.folder, old, new)
        await _name_free(session, target, row.name, but=row.id)
        row.folder = target
        row.updated_at = datetime.now(UTC)
    await session.flush()
    await folders.do_rename_folder_rows(session, AREA, old, new)
    audit.record(
        session, who, "prompt.folder_rename", object_type="prompt_folder", object_id=old, data={"new": new}
    )
    return new


async def do_delete_folder(session: AsyncSession, who: Principal, path: str) -> None:
    """Only an empty folder goes (prompts are deleted one by one, each checked for users)."""
    check_role(who, *MANAGERS)
    path = folders.clean_folder(path)
    await folders.check_empty(session, m.Prompt.folder, path)
    await folders.do_delete_folder_rows(session, AREA, path)
    audit.record(session, who, "prompt.folder_delete", object_type="prompt_folder", object_id=path)


async def do_update_prompt(
    session: AsyncSession,
    who: Principal,
    prompt_id: int,
    *,
    name: str | None = None,
    folder: str | None = None,
    description: str | None = None,
) -> m.Prompt:
    """Rename or move a prompt; its id (what scenarios hold) and its sound stay the same."""
    check_role(who, *MANAGERS)
    row = await access_prompt(session, who, prompt_id)
    new_name = folders.clean_name(name, max_len=MAX_NAME) if name is not None else row.name
    new_folder = folders.clean_folder(folder) if folder is not None else row.folder
    if (new_name, new_folder) != (row.name, row.folder):
        await _name_free(session, new_folder, new_name, but=row.id)
    changed = {"name": new_name, "folder": new_folder}
    row.name, row.folder = new_name, new_folder
    if description is not None:
        row.description = description[:2000]
    row.updated_at = datetime.now(UTC)
    await session.flush()
    audit.record(session, who, "prompt.update", object_type="prompt", object_id=row.id, data=changed)
    return row


def prompt_ids_in(document: Any) -> Iterator[int]:
    """Every ``prompt_id`` a scenario document (or any JSON) carries."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "prompt_id" and isinstance(value, int) and not isinstance(value, bool):
                yield value
            else:
                yield from prompt_ids_in(value)
    elif isinstance(document, list):
        for item in document:
            yield from prompt_ids_in(item)


async def prompt_users(session: AsyncSession, prompt_id: int) -> list[str]:
    """Keys of the scenarios whose draft or active revision plays the prompt, and
    ``inbox '<name>'`` for voice inboxes that greet callers with it."""
    users: list[str] = []
    for name, config in await session.execute(select(m.Inbox.name, m.Inbox.config)):
        if (config or {}).get("welcome_prompt_id") == prompt_id:
            users.append(f"inbox '{name}'")
    rows = await session.execute(
        select(m.Scenario.key, m.Scenario.draft, m.ScenarioRevision.document).outerjoin(
            m.ScenarioRevision, m.ScenarioRevision.id == m.Scenario.active_revision_id
        )
    )
    for key, draft, active in rows:
        if prompt_id in prompt_ids_in(draft) or prompt_id in prompt_ids_in(active):
            users.append(key)
    return sorted(users)


async def do_delete_prompt(session: AsyncSession, who: Principal, prompt_id: int) -> None:
    """Refused (409, naming them) while a scenario or an inbox plays it; campaigns let go of it."""
    check_role(who, *MANAGERS)
    row = await access_prompt(session, who, prompt_id)
    users = await prompt_users(session, row.id)
    if users:
        raise Conflict(
            "the prompt is used by {users}: pick another prompt there first",
            users=", ".join(users),
        )
    files = [Path(row.sound + ".wav")] if row.sound else []
    if row.file_id is not None:
        original = await session.get(m.StoredFile, row.file_id)
        if original is not None:
            files.append(Path(original.path))
            await session.delete(original)
    audit.record(
        session, who, "prompt.delete", object_type="prompt", object_id=row.id,
        data={"folder": row.folder, "name": row.name},
    )  # fmt: skip
    await session.delete(row)
    await session.flush()

    def remove() -> None:
        for path in files:
            path.unlink(missing_ok=True)

    unit_of_work(session).call_after_commit(remove)


async def welcome_sound(session: AsyncSession, inbox: m.Inbox, conversation_id: int) -> str | None:
    """What the IVR plays as it answers a call of ``inbox`` (``config.welcome_prompt_id``):
    None without one, for a deleted one (logged), and for a caller an operator has already had
    (a transfer to the IVR: they were welcomed when they called)."""
    prompt_id = (inbox.config or {}).get("welcome_prompt_id")
    if not isinstance(prompt_id, int):
        return None
    offered = await session.scalar(
        select(m.Offer.id).where(m.Offer.conversation_id == conversation_id).limit(1)
    )
    if offered is not None:
        return None
    sound = await prompt_sound(session, prompt_id)
    if sound is None:
        log.warning("inbox %s: welcome prompt %s is gone; not played", inbox.id, prompt_id)
    return sound


async def prompt_sound(session: AsyncSession, prompt_id: int) -> str | None:
    """What ``Playback()`` / ``STREAM FILE`` take for the prompt; None when it is gone."""
    sound = await session.scalar(select(m.Prompt.sound).where(m.Prompt.id == prompt_id))
    return sound or None
