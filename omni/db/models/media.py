"""Audio prompts, the staff file area and the text-to-speech cache.

Prompts and synthesised speech are files Asterisk plays: the row keeps ``sound``, the path
``Playback()`` takes (no extension; the converted file sits beside it), and the original upload
in ``stored_files`` for preview and download. Staff files are documents shared among staff by
folder, readable by the roles listed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import Base, utcnow

__all__ = ["MediaFolder", "Prompt", "StaffFile", "TtsCache"]


class Prompt(Base):
    """An uploaded audio prompt, converted to what Asterisk plays, picked by id in scenario
    nodes, IVR settings and campaigns (drop / machine messages)."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("folder", "name", name="uq_prompts_folder_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    folder: Mapped[str] = mapped_column(String(256), default="")
    """Slash-separated folder path (``"greetings/holidays"``); empty = the root."""
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    file_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("stored_files.id", ondelete="SET NULL")
    )
    """The upload as it came (WAV/MP3): what the browser previews and downloads."""
    sound: Mapped[str] = mapped_column(String(512), default="")
    """What ``Playback()`` takes: the converted file's path without its extension."""
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffFile(Base):
    """A document in the shared staff file area (price lists, scripts, instructions)."""

    __tablename__ = "staff_files"
    __table_args__ = (UniqueConstraint("folder", "name", name="uq_staff_files_folder_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    folder: Mapped[str] = mapped_column(String(256), default="")
    name: Mapped[str] = mapped_column(String(256))
    file_id: Mapped[str] = mapped_column(String(64), ForeignKey("stored_files.id", ondelete="CASCADE"))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Roles that may read it (``["operator", "supervisor"]``); empty = every staff role.
    Admins always can; only supervisors and admins upload, rename and delete."""
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TtsCache(Base):
    """One rendered utterance: the same text, language and voice are synthesised once."""

    __tablename__ = "tts_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """sha256 hex of ``engine|voice|lang|text`` (the text after numbers/dates/money are spelled)."""
    lang: Mapped[str] = mapped_column(String(8), default="ru")
    text: Mapped[str] = mapped_column(Text, default="")
    sound: Mapped[str] = mapped_column(String(512), default="")
    """What ``Playback()`` takes (path without extension)."""
    size: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaFolder(Base):
    """A folder of the prompt manager or the staff file area, so an empty folder exists before
    anything is uploaded into it. Items name their folder by path (``prompts.folder``)."""

    __tablename__ = "media_folders"
    __table_args__ = (UniqueConstraint("area", "path", name="uq_media_folders_area_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    area: Mapped[str] = mapped_column(String(16))
    """``prompts`` or ``staff``."""
    path: Mapped[str] = mapped_column(String(256))
    """Slash-separated (``greetings/holidays``); parents are rows of their own."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
