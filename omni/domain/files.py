"""Attachments: size/type-limited uploads stored under the data directory, access-checked.

Type checks use the declared type and, for formats with a signature, the first bytes, so a
script renamed to ``.png`` is refused. Files are served with ``nosniff`` and, except images,
as downloads.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.errors import InvalidInput, NotFound

SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}
MAX_ATTACHMENTS = 10


def human_size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KB"


def check_upload(name: str, content_type: str, data: bytes, *, max_bytes: int, allowed: list[str]) -> None:
    """Refuse, with a message a customer understands, what the install does not accept."""
    if not data:
        raise InvalidInput("the file is empty", field="file")
    if len(data) > max_bytes:
        raise InvalidInput(
            "the file is larger than {human_size}", human_size=human_size(max_bytes), field="file"
        )
    if content_type not in allowed:
        raise InvalidInput(
            "files of type '{content_type}' are not accepted", content_type=content_type, field="file"
        )
    signatures = SIGNATURES.get(content_type)
    if signatures and not data.startswith(signatures):
        raise InvalidInput(
            "'{name}' is not really a {content_type} file", name=name, content_type=content_type, field="file"
        )
    if content_type == "text/plain" and b"\x00" in data[:4096]:
        raise InvalidInput("'{name}' is not a text file", name=name, field="file")


async def do_store_upload(
    session: AsyncSession,
    *,
    data_dir: Path,
    inbox_id: int | None,
    owner: str,
    name: str,
    content_type: str,
    data: bytes,
    max_bytes: int,
    allowed: list[str],
) -> m.StoredFile:
    check_upload(name, content_type, data, max_bytes=max_bytes, allowed=allowed)
    file_id = secrets.token_urlsafe(18)
    folder = data_dir / "uploads"
    path = folder / file_id

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    await asyncio.to_thread(write)
    row = m.StoredFile(
        id=file_id,
        inbox_id=inbox_id,
        owner=owner,
        name=Path(name).name[:256] or "file",
        content_type=content_type,
        size=len(data),
        path=str(path),
    )
    session.add(row)
    return row


def descriptor(f: m.StoredFile) -> dict[str, Any]:
    return {
        "id": f.id,
        "name": f.name,
        "type": f.content_type,
        "size": f.size,
        "url": f"/api/v1/files/{f.id}",
    }


async def access_uploads(session: AsyncSession, owner: str, ids: list[str]) -> list[m.StoredFile]:
    """The uploader's own files not yet sent in a message (call ``do_link_uploads`` once it is stored)."""
    if len(ids) > MAX_ATTACHMENTS:
        raise InvalidInput(
            "at most {max_attachments} attachments per message",
            max_attachments=MAX_ATTACHMENTS,
            field="attachments",
        )
    rows: list[m.StoredFile] = []
    for file_id in ids:
        row = await session.get(m.StoredFile, str(file_id))
        if row is None or row.owner != owner or row.conversation_id is not None:
            raise InvalidInput("attachment {file_id} not found", file_id=file_id, field="attachments")
        rows.append(row)
    return rows


def do_link_uploads(rows: list[m.StoredFile], conversation_id: int) -> None:
    for row in rows:
        row.conversation_id = conversation_id


async def get_file(session: AsyncSession, file_id: str) -> m.StoredFile:
    row = await session.get(m.StoredFile, file_id)
    if row is None:
        raise NotFound("file not found")
    return row


async def save_upload_stream(
    *,
    data_dir: Path,
    owner: str,
    name: str,
    content_type: str,
    chunks: AsyncIterator[bytes],
    max_bytes: int,
) -> m.StoredFile:
    """Like ``do_store_upload`` for a file too large to hold in memory (a call list): the chunks
    go straight to disk, outside any transaction; an over-size or empty upload leaves no file
    behind. The caller checks the content and adds the returned row to its session."""
    file_id = secrets.token_urlsafe(18)
    folder = data_dir / "uploads"
    path = folder / file_id
    await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        async with await anyio.open_file(path, "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidInput(
                        "the file is larger than {human_size}", human_size=human_size(max_bytes), field="file"
                    )
                await fh.write(chunk)
        if size == 0:
            raise InvalidInput("the file is empty", field="file")
    except BaseException:
        await anyio.Path(path).unlink(missing_ok=True)
        raise
    return m.StoredFile(
        id=file_id,
        inbox_id=None,
        owner=owner,
        name=Path(name).name[:256] or "file",
        content_type=content_type,
        size=size,
        path=str(path),
    )


async def do_attach_recording(
    session: AsyncSession,
    *,
    path: Path,
    conversation_id: int,
    inbox_id: int | None,
    name: str,
    max_bytes: int = 50 * 1024 * 1024,
) -> m.StoredFile | None:
    """A voice reply the phone system recorded (``RECORD FILE`` into the recordings directory
    Omni shares with Asterisk) as a file of the conversation: staff who may open the
    conversation play or download it (``/api/v1/files/{id}``). The file stays where it was
    recorded. ``None`` when nothing was recorded (no file, or an empty one: silence only,
    Asterisk's 44-byte WAV header)."""
    try:
        size = (await anyio.Path(path).stat()).st_size
    except OSError:
        return None
    if size <= 44:
        return None
    if size > max_bytes:
        raise InvalidInput(
            "the file is larger than {human_size}", human_size=human_size(max_bytes), field="file"
        )
    row = m.StoredFile(
        id=secrets.token_urlsafe(18),
        inbox_id=inbox_id,
        owner="system:recording",
        conversation_id=conversation_id,
        name=Path(name).name[:256] or "recording.wav",
        content_type="audio/wav",
        size=size,
        path=str(path),
    )
    session.add(row)
    await session.flush()
    return row
