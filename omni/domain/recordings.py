"""Call recordings: which file a caller may play, and nothing outside the recordings directory.

The voice adapter stores the ``MixMonitor`` path on the call (``calls.recording_path``); the
directory is shared read-only with the app (docker/asterisk/README.md). A stored path is only
trusted after it resolves (symlinks and ``..`` included) inside ``settings.voice.recordings_dir``,
so a bad row can never serve another file of the host.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.auth import Principal, access_conversation
from omni.domain.errors import NotFound, PermissionDenied

log = logging.getLogger(__name__)

MEDIA_TYPES: dict[str, str] = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".gsm": "audio/x-gsm",
}
"""By extension; MixMonitor's format follows the file name it is given."""

__all__ = ["MEDIA_TYPES", "access_recording", "check_recording_path", "media_type"]


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def check_recording_path(root: Path, stored: str) -> Path:
    """The stored path as a file inside ``root``, or refuse (outside: 403, missing: 404)."""
    base = root.resolve()
    candidate = (base / stored).resolve()  # an absolute stored path replaces ``base``
    if not candidate.is_relative_to(base):
        log.warning("recording path %r is outside the recordings directory %s; refused", stored, base)
        raise PermissionDenied("the recording is outside the recordings directory")
    if not candidate.is_file():
        raise NotFound("the recording file is missing")
    return candidate


async def access_recording(session: AsyncSession, who: Principal, conversation_id: int, root: Path) -> Path:
    """The recording of a conversation the caller may open (``access_conversation``)."""
    conv = await access_conversation(session, who, conversation_id)
    stored = await session.scalar(select(m.Call.recording_path).where(m.Call.conversation_id == conv.id))
    if not stored:
        raise NotFound("this conversation has no recording")
    return check_recording_path(root, stored)
