"""Folders of the prompt manager and the staff file area.

An item names its folder by path (``prompts.folder``, ``staff_files.folder``); a
``media_folders`` row keeps a folder that has nothing in it yet. The tree a page shows is the
union of both, with every parent of a path included.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.errors import Conflict, InvalidInput

__all__ = [
    "check_empty",
    "check_move",
    "clean_folder",
    "clean_name",
    "do_create_folder",
    "folder_tree",
    "inside",
    "moved_path",
    "under",
    "with_parents",
]

MAX_SEGMENT = 64
MAX_PATH = 256
Area = str
"""``prompts`` or ``staff``."""


def clean_folder(path: str, *, field: str = "folder") -> str:
    """``" /a//b/ "`` → ``"a/b"``; refuses ``..``, control characters and overlong names."""
    parts = [p.strip() for p in (path or "").replace("\\", "/").split("/")]
    parts = [p for p in parts if p]
    for part in parts:
        if part in (".", "..") or any(ord(ch) < 32 for ch in part) or len(part) > MAX_SEGMENT:
            raise InvalidInput(
                "folder '{name}': 1 to {max_len} characters, no control characters, not '..'",
                name=part[:MAX_SEGMENT],
                max_len=MAX_SEGMENT,
                field=field,
            )
    cleaned = "/".join(parts)
    if len(cleaned) > MAX_PATH:
        raise InvalidInput("a folder path is at most {max_len} characters", max_len=MAX_PATH, field=field)
    return cleaned


def clean_name(name: str, *, max_len: int, field: str = "name") -> str:
    """A display name: trimmed, one line, no slashes (they separate folders)."""
    cleaned = " ".join((name or "").split())
    if not cleaned or len(cleaned) > max_len or "/" in cleaned or any(ord(ch) < 32 for ch in cleaned):
        raise InvalidInput(
            "name: 1 to {max_len} characters on one line, without '/'", max_len=max_len, field=field
        )
    return cleaned


def under(path: str, folder: str) -> bool:
    """Is ``path`` the folder itself or inside it?"""
    return path == folder or path.startswith(folder + "/")


def inside(column: Any, folder: str) -> ColumnElement[bool]:
    """SQL for ``under(column, folder)``: the folder itself or anything below it."""
    return or_(column == folder, column.startswith(folder + "/", autoescape=True))


def check_move(old: str, new: str) -> tuple[str, str]:
    """The cleaned paths of a folder rename, refusing an empty name or a move into itself."""
    old, new = clean_folder(old), clean_folder(new, field="new")
    if not old or not new:
        raise InvalidInput("name the folder", field="folder" if not old else "new")
    if under(new, old):
        raise InvalidInput("a folder can't move into itself", field="new")
    return old, new


async def check_empty(session: AsyncSession, column: Any, folder: str) -> None:
    """Only an empty folder may be deleted: items are deleted one by one, each with its checks."""
    if await session.scalar(select(column).where(inside(column, folder)).limit(1)) is not None:
        raise Conflict("the folder '{folder}' is not empty", folder=folder)


def moved_path(path: str, old: str, new: str) -> str:
    """``path`` after the folder ``old`` is renamed to ``new``."""
    return new + path[len(old) :] if under(path, old) else path


def with_parents(paths: set[str]) -> list[str]:
    out: set[str] = set()
    for path in paths:
        parts = path.split("/")
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)) if path)
    return sorted(out)


async def folder_tree(session: AsyncSession, area: Area, item_folders: set[str]) -> list[str]:
    """Every folder of ``area`` (sorted paths, parents included, the root not listed)."""
    rows = set(await session.scalars(select(m.MediaFolder.path).where(m.MediaFolder.area == area)))
    return with_parents(rows | item_folders)


async def do_create_folder(session: AsyncSession, area: Area, path: str) -> str:
    cleaned = clean_folder(path)
    if not cleaned:
        raise InvalidInput("name the folder", field="folder")
    exists = await session.scalar(
        select(m.MediaFolder.id).where(m.MediaFolder.area == area, m.MediaFolder.path == cleaned)
    )
    if exists is not None:
        raise Conflict("the folder '{folder}' already exists", folder=cleaned)
    session.add(m.MediaFolder(area=area, path=cleaned))
    await session.flush()
    return cleaned


async def do_rename_folder_rows(session: AsyncSession, area: Area, old: str, new: str) -> None:
    """Move the folder rows of ``old`` (and below) to ``new``; items are the caller's."""
    rows = list(await session.scalars(select(m.MediaFolder).where(m.MediaFolder.area == area)))
    taken = {r.path for r in rows if not under(r.path, old)}
    for row in rows:
        if under(row.path, old):
            target = moved_path(row.path, old, new)
            if target in taken:
                await session.delete(row)
            else:
                row.path = target
                taken.add(target)
    if new not in taken:
        session.add(m.MediaFolder(area=area, path=new))
    await session.flush()


async def do_delete_folder_rows(session: AsyncSession, area: Area, path: str) -> None:
    await session.execute(
        delete(m.MediaFolder).where(
            m.MediaFolder.area == area,
            (m.MediaFolder.path == path) | m.MediaFolder.path.startswith(path + "/", autoescape=True),
        )
    )
