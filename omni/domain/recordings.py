"""Call recordings: which file a caller may play, and nothing outside the recordings directory.

The voice adapter stores the ``MixMonitor`` path on the call (``calls.recording_path``); the
directory is shared read-only with the app (docker/asterisk/README.md). A stored path is only
trusted after it resolves (symlinks and ``..`` included) inside ``settings.voice.recordings_dir``,
so a bad row can never serve another file of the host.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.auth import Principal, access_conversation, visible_conversations_filter, visible_queue_ids
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.masking import masker_for
from omni.domain.search import MAX_LIMIT, _digits, _digits_match

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


# --- finding recordings (the search page's recordings tab) ---------------------------------


@dataclass(frozen=True, slots=True)
class RecordingRow:
    call_id: int
    conversation_id: int
    caller_number: str | None
    operator_id: int | None
    operator_name: str
    at: datetime
    talk_seconds: float


async def find_recordings(
    session: AsyncSession,
    who: Principal,
    *,
    phone: str = "",
    operator_id: int | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[RecordingRow], bool]:
    """Recorded calls by the caller's number (digits), operator and date, newest first, in
    the caller's scope; each plays through ``GET /api/v1/conversations/{id}/recording``."""
    if who.role == m.Role.AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit is between 1 and {n}", field="limit", n=MAX_LIMIT)
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("the start date is after the end date", field="date_from")
    c, call = m.Conversation, m.Call
    where: list[Any] = [
        call.recording_path != "",
        *visible_conversations_filter(await visible_queue_ids(session, who), who),
    ]
    digits = _digits(phone)
    if phone.strip() and not digits:
        raise InvalidInput("a phone number needs digits", field="phone")
    if digits:
        where.append(_digits_match(call.caller_number, digits))
    if operator_id is not None:
        where.append(
            or_(
                call.agent_user_id == operator_id,
                and_(call.agent_user_id.is_(None), c.assigned_user_id == operator_id),
            )
        )
    if date_from is not None:
        where.append(call.created_at >= date_from)
    if date_to is not None:
        where.append(call.created_at < date_to)
    masker = await masker_for(session, who)
    user_id = func.coalesce(call.agent_user_id, c.assigned_user_id)
    rows = (
        await session.execute(
            select(
                call.id,
                call.conversation_id,
                call.caller_number,
                user_id,
                m.User.display_name,
                m.User.username,
                call.created_at,
                call.talk_seconds,
            )
            .join(c, c.id == call.conversation_id)
            .outerjoin(m.User, m.User.id == user_id)
            .where(*where)
            .order_by(call.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
    ).all()
    out = [
        RecordingRow(
            call_id=r[0],
            conversation_id=r[1],
            caller_number=masker.phone(r[2]),
            operator_id=r[3],
            operator_name=r[4] or r[5] or "",
            at=r[6],
            talk_seconds=float(r[7] or 0),
        )
        for r in rows[:limit]
    ]
    return out, len(rows) > limit
