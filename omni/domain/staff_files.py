"""The staff file area: documents shared among staff (price lists, scripts, instructions) in
folders, each readable by the roles it lists.

Supervisors and admins upload, rename, move and delete, and read everything; a file with no
roles is read by every staff role, one with roles by those roles. A file a caller may not read
is "not found" to them, so its name does not leak. Uploads pass the same checks as chat attachments
(``omni.domain.files.check_upload``: size, declared type, signatures) with the limits of
``settings.media``; a refused upload stores nothing.
"""

from __future__ import annotations

import asyncio
import secrets
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
from omni.domain.files import check_upload
from omni.settings import Settings, get_settings

__all__ = [
    "AREA",
    "MANAGERS",
    "access_staff_file",
    "clean_roles",
    "do_create_folder",
    "do_delete_folder",
    "do_delete_staff_file",
    "do_rename_folder",
    "do_update_staff_file",
    "do_upload_staff_file",
    "list_folders",
    "list_staff_files",
    "may_read",
    "staff_file_dict",
]

AREA = "staff"
MANAGERS = (m.Role.SUPERVISOR, m.Role.ADMIN)
MAX_NAME = 256
MAX_UPLOAD = 200 * 1024 * 1024
"""The upload route's ceiling; ``settings.media.max_staff_file_bytes`` is the limit in force."""


def clean_roles(roles: list[str] | None) -> list[str]:
    """Known role names, deduplicated in a stable order; refuses an unknown one."""
    out: list[str] = []
    for role in roles or []:
        value = str(role).strip()
        if value not in {r.value for r in m.Role}:
            raise InvalidInput("unknown role '{role}'", role=value[:32], field="roles")
        if value not in out:
            out.append(value)
    return sorted(out)


def may_read(who: Principal, row: m.StaffFile) -> bool:
    """Managers (who upload and arrange the files) read all; others by the file's roles."""
    return who.role in MANAGERS or not row.roles or who.role.value in row.roles


def staff_file_dict(row: m.StaffFile, stored: m.StoredFile | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "folder": row.folder,
        "name": row.name,
        "roles": list(row.roles or []),
        "size": stored.size if stored else 0,
        "content_type": stored.content_type if stored else "",
        "download_url": f"/api/v1/staff-files/{row.id}/download",
        "uploaded_by": row.uploaded_by,
        "created_at": row.created_at.isoformat(),
    }


async def _name_free(session: AsyncSession, folder: str, name: str, *, but: int | None = None) -> None:
    query = select(m.StaffFile.id).where(m.StaffFile.folder == folder, m.StaffFile.name == name)
    if but is not None:
        query = query.where(m.StaffFile.id != but)
    if await session.scalar(query) is not None:
        raise Conflict("a file named '{name}' is already in this folder", name=name)


async def list_staff_files(
    session: AsyncSession, who: Principal, folder: str | None = None
) -> list[tuple[m.StaffFile, m.StoredFile]]:
    """What the caller may read (one folder when given, ``""`` = the root), by folder and name."""
    query = (
        select(m.StaffFile, m.StoredFile)
        .join(m.StoredFile, m.StoredFile.id == m.StaffFile.file_id)
        .order_by(m.StaffFile.folder, m.StaffFile.name)
    )
    if folder is not None:
        query = query.where(m.StaffFile.folder == folders.clean_folder(folder))
    rows = (await session.execute(query)).all()
    return [(row[0], row[1]) for row in rows if may_read(who, row[0])]


async def list_folders(session: AsyncSession, who: Principal) -> list[str]:
    """Folders with something the caller may read, and (for managers) every folder."""
    readable = {f.folder for f, _ in await list_staff_files(session, who)}
    if who.role in MANAGERS:
        return await folders.folder_tree(session, AREA, readable)
    return folders.with_parents(readable)


async def access_staff_file(session: AsyncSession, who: Principal, staff_file_id: int) -> m.StaffFile:
    row = await session.get(m.StaffFile, staff_file_id)
    if row is None or not may_read(who, row):
        raise NotFound("file not found")
    return row


async def do_upload_staff_file(
    session: AsyncSession,
    who: Principal,
    folder: str,
    data: bytes,
    filename: str,
    content_type: str,
    *,
    name: str = "",
    roles: list[str] | None = None,
    settings: Settings | None = None,
) -> m.StaffFile:
    check_role(who, *MANAGERS)
    settings = settings or get_settings()
    folder = folders.clean_folder(folder)
    name = folders.clean_name(name or Path(filename or "").name, max_len=MAX_NAME)
    allowed_roles = clean_roles(roles)
    check_upload(
        name,
        content_type,
        data,
        max_bytes=settings.media.max_staff_file_bytes,
        allowed=settings.media.staff_file_types,
    )
    await _name_free(session, folder, name)
    stored = m.StoredFile(
        id=secrets.token_urlsafe(18),
        inbox_id=None,
        owner="staff-files",
        name=name,
        content_type=content_type,
        size=len(data),
        path="",
    )
    uploads = settings.data_dir / "uploads"
    path = uploads / stored.id
    try:
        await asyncio.to_thread(uploads.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, data)
        stored.path = str(path)
        session.add(stored)
        await session.flush()
        row = m.StaffFile(
            folder=folder,
            name=name,
            file_id=stored.id,
            roles=allowed_roles,
            uploaded_by=who.id,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        await session.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    audit.record(
        session, who, "staff_file.upload", object_type="staff_file", object_id=row.id,
        data={"folder": folder, "name": name, "roles": allowed_roles, "size": len(data)},
    )  # fmt: skip
    return row


async def do_update_staff_file(
    session: AsyncSession,
    who: Principal,
    staff_file_id: int,
    *,
    name: str | None = None,
    folder: str | None = None,
    roles: list[str] | None = None,
) -> m.StaffFile:
    check_role(who, *MANAGERS)
    row = await access_staff_file(session, who, staff_file_id)
    new_name = folders.clean_name(name, max_len=MAX_NAME) if name is not None else row.name
    new_folder = folders.clean_folder(folder) if folder is not None else row.folder
    if (new_name, new_folder) != (row.name, row.folder):
        await _name_free(session, new_folder, new_name, but=row.id)
    row.name, row.folder = new_name, new_folder
    if roles is not None:
        row.roles = clean_roles(roles)
    stored = await session.get(m.StoredFile, row.file_id)
    if stored is not None:
        stored.name = new_name
    await session.flush()
    audit.record(
        session, who, "staff_file.update", object_type="staff_file", object_id=row.id,
        data={"folder": row.folder, "name": row.name, "roles": list(row.roles)},
    )  # fmt: skip
    return row


async def do_delete_staff_file(session: AsyncSession, who: Principal, staff_file_id: int) -> None:
    check_role(who, *MANAGERS)
    row = await access_staff_file(session, who, staff_file_id)
    stored = await session.get(m.StoredFile, row.file_id)
    audit.record(
        session, who, "staff_file.delete", object_type="staff_file", object_id=row.id,
        data={"folder": row.folder, "name": row.name},
    )  # fmt: skip
    await session.delete(row)
    if stored is not None:
        path = Path(stored.path)
        await session.delete(stored)
        unit_of_work(session).call_after_commit(lambda: path.unlink(missing_ok=True))
    await session.flush()


async def do_create_folder(session: AsyncSession, who: Principal, path: str) -> str:
    check_role(who, *MANAGERS)
    cleaned = await folders.do_create_folder(session, AREA, path)
    audit.record(session, who, "staff_file.folder_create", object_type="staff_folder", object_id=cleaned)
    return cleaned


async def do_rename_folder(session: AsyncSession, who: Principal, old: str, new: str) -> str:
    check_role(who, *MANAGERS)
    old, new = folders.check_move(old, new)
    rows = list(await session.scalars(select(m.StaffFile).where(folders.inside(m.StaffFile.folder, old))))
    if not rows and old not in await list_folders(session, who):
        raise NotFound("folder not found")
    for row in rows:
        target = folders.moved_path(row.folder, old, new)
        await _name_free(session, target, row.name, but=row.id)
        row.folder = target
    await session.flush()
    await folders.do_rename_folder_rows(session, AREA, old, new)
    audit.record(
        session, who, "staff_file.folder_rename", object_type="staff_folder", object_id=old, data={"new": new}
    )
    return new


async def do_delete_folder(session: AsyncSession, who: Principal, path: str) -> None:
    check_role(who, *MANAGERS)
    path = folders.clean_folder(path)
    await folders.check_empty(session, m.StaffFile.folder, path)
    await folders.do_delete_folder_rows(session, AREA, path)
    audit.record(session, who, "staff_file.folder_delete", object_type="staff_folder", object_id=path)
