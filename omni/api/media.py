"""The prompt manager and the staff file area over REST: ``/api/v1/prompts…`` and
``/api/v1/staff-files…``.

Thin: roles, checks, conversion and audit are ``omni.domain.prompts``'/``staff_files``'. Uploads
are ``multipart/form-data`` with the file in the field ``file`` (a browser's ``FormData``;
other fields as named on each route). Folders are addressed in bodies and query strings, never
in the path (they contain slashes). Files go out with ``nosniff`` and a sandboxing CSP; names
are sent RFC 6266-encoded, so any name (Cyrillic, quotes) is safe in ``Content-Disposition``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import File
from msgspec import UNSET, UnsetType

from omni.api.admin_responses import READ, REMOVE, WRITE, OkOut, out, out_list
from omni.api.contracts import NO_NUL, IntId
from omni.api.core import DEPS
from omni.db import models as m
from omni.domain import prompts, staff_files
from omni.domain.auth import Principal, check_role
from omni.domain.errors import InvalidInput, NotFound
from omni.services import Services

FolderPath = Annotated[str, msgspec.Meta(max_length=256, pattern=NO_NUL)]
FolderQuery = Annotated[str, Parameter(max_length=256, pattern=NO_NUL)]
ItemName = Annotated[str, msgspec.Meta(max_length=256, pattern=NO_NUL)]
Description = Annotated[str, msgspec.Meta(max_length=2000, pattern=NO_NUL)]
RoleName = Annotated[str, msgspec.Meta(max_length=32, pattern=NO_NUL)]
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}
FORM_SLACK = 64 * 1024


class FolderIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: FolderPath


class FolderRename(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: FolderPath
    """The folder as it is (``greetings/day``)."""
    new: FolderPath
    """Its new path: a rename (``greetings/daytime``) or a move (``archive/day``)."""


class FoldersOut(msgspec.Struct):
    folders: list[str]
    """Every folder path, parents included; the root (``""``) is implied."""


class PromptUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: ItemName | UnsetType = UNSET
    folder: FolderPath | UnsetType = UNSET
    description: Description | UnsetType = UNSET


class PromptOut(msgspec.Struct):
    id: int
    folder: str
    name: str
    description: str
    sound: str
    """What Asterisk's ``Playback()`` takes (the converted WAV without its extension)."""
    duration_ms: int
    has_original: bool
    audio_url: str
    """The converted 8 kHz WAV, for an ``<audio>`` element."""
    original_url: str
    created_by: int | None
    created_at: str | None
    updated_at: str | None


class StaffFileUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: ItemName | UnsetType = UNSET
    folder: FolderPath | UnsetType = UNSET
    roles: Annotated[list[RoleName], msgspec.Meta(max_length=8)] | UnsetType = UNSET
    """Roles that may download it; empty = every staff role (admins always may)."""


class StaffFileOut(msgspec.Struct):
    id: int
    folder: str
    name: str
    roles: list[str]
    size: int
    content_type: str
    download_url: str
    uploaded_by: int | None
    created_at: str | None


def _text(form: dict[str, Any], key: str, max_len: int = 256) -> str:
    value = form.get(key, "")
    if not isinstance(value, str):
        raise InvalidInput("'{key}' must be text", key=key, field=key)
    if len(value) > max_len or "\x00" in value:
        raise InvalidInput("{field} must be at most {max_len} characters", max_len=max_len, field=key)
    return value


async def _file(form: dict[str, Any]) -> tuple[bytes, str, str]:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("send the file in a form field named 'file'", field="file")
    data = await upload.read()
    return data, Path(upload.filename or "file").name[:256], (upload.content_type or "")[:128]


def _serve(path: str, filename: str, media_type: str, *, inline: bool) -> File:
    if not path or not Path(path).is_file():
        raise NotFound("file not found")
    return File(
        path=Path(path),
        filename=filename,
        media_type=media_type,
        content_disposition_type="inline" if inline else "attachment",
        headers=HEADERS,
    )


class PromptController(Controller):
    path = "/api/v1/prompts"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_prompts(
        self, who: Principal, services: Services, folder: FolderQuery | None = None
    ) -> list[PromptOut]:
        """All prompts, or one folder's (``folder=`` with an empty value is the root)."""
        async with services.db.transaction() as session:
            rows = await prompts.list_prompts(session, who, folder)
            return out_list([prompts.prompt_dict(r) for r in rows], PromptOut)

    @post("/", status_code=201, responses=WRITE, request_max_body_size=prompts.MAX_UPLOAD + FORM_SLACK)
    async def upload(self, who: Principal, services: Services, data: Form) -> PromptOut:
        """A WAV or MP3 in ``file``; ``folder``, ``name`` (default: the file's name) and
        ``description`` as form fields. Converted to 8 kHz mono 16-bit WAV; a file that is not
        audio, damaged, too big or too long is refused (422) and nothing is kept."""
        check_role(who, *prompts.MANAGERS)  # before reading the body
        content, filename, content_type = await _file(data)
        async with services.db.transaction() as session:
            row = await prompts.do_upload_prompt(
                session,
                who,
                _text(data, "folder"),
                _text(data, "name", 128),
                content,
                filename,
                content_type,
                description=_text(data, "description", 2000),
                settings=services.settings,
            )
            return out(prompts.prompt_dict(row), PromptOut)

    @get("/folders", responses=READ)
    async def folders(self, who: Principal, services: Services) -> FoldersOut:
        async with services.db.transaction() as session:
            return FoldersOut(folders=await prompts.list_folders(session, who))

    @post("/folders", status_code=201, responses=WRITE)
    async def create_folder(self, who: Principal, services: Services, data: FolderIn) -> FoldersOut:
        async with services.db.transaction() as session:
            await prompts.do_create_folder(session, who, data.path)
            return FoldersOut(folders=await prompts.list_folders(session, who))

    @patch("/folders", responses=WRITE)
    async def rename_folder(self, who: Principal, services: Services, data: FolderRename) -> FoldersOut:
        """Rename or move a folder with everything in it (prompt ids stay the same)."""
        async with services.db.transaction() as session:
            await prompts.do_rename_folder(session, who, data.path, data.new)
            return FoldersOut(folders=await prompts.list_folders(session, who))

    @delete("/folders", status_code=200, responses=REMOVE)
    async def delete_folder(self, who: Principal, services: Services, path: FolderQuery = "") -> FoldersOut:
        """An empty folder only (409 otherwise)."""
        async with services.db.transaction() as session:
            await prompts.do_delete_folder(session, who, path)
            return FoldersOut(folders=await prompts.list_folders(session, who))

    @get("/{prompt_id:int}", responses=READ)
    async def get_prompt(self, who: Principal, services: Services, prompt_id: IntId) -> PromptOut:
        async with services.db.transaction() as session:
            return out(prompts.prompt_dict(await prompts.access_prompt(session, who, prompt_id)), PromptOut)

    @patch("/{prompt_id:int}", responses=WRITE)
    async def update_prompt(
        self, who: Principal, services: Services, prompt_id: IntId, data: PromptUpdate
    ) -> PromptOut:
        """Rename or move; scenarios keep playing it (they hold its id)."""
        async with services.db.transaction() as session:
            row = await prompts.do_update_prompt(
                session,
                who,
                prompt_id,
                name=data.name if isinstance(data.name, str) else None,
                folder=data.folder if isinstance(data.folder, str) else None,
                description=data.description if isinstance(data.description, str) else None,
            )
            return out(prompts.prompt_dict(row), PromptOut)

    @delete("/{prompt_id:int}", status_code=200, responses=REMOVE)
    async def delete_prompt(self, who: Principal, services: Services, prompt_id: IntId) -> OkOut:
        """409 naming the scenarios while one plays it; campaigns' drop/machine prompts are cleared."""
        async with services.db.transaction() as session:
            await prompts.do_delete_prompt(session, who, prompt_id)
        return OkOut()

    @get("/{prompt_id:int}/audio", responses=READ)
    async def audio(self, who: Principal, services: Services, prompt_id: IntId) -> File:
        """The converted WAV (what callers hear), inline for the browser's ``<audio>``."""
        async with services.db.transaction() as session:
            row = await prompts.access_prompt(session, who, prompt_id)
        return _serve(row.sound + ".wav" if row.sound else "", f"{row.name}.wav", "audio/wav", inline=True)

    @get("/{prompt_id:int}/original", responses=READ)
    async def original(self, who: Principal, services: Services, prompt_id: IntId) -> File:
        """The upload as it came (WAV or MP3), as a download."""
        async with services.db.transaction() as session:
            row = await prompts.access_prompt(session, who, prompt_id)
            stored = await session.get(m.StoredFile, row.file_id) if row.file_id else None
        if stored is None:
            raise NotFound("file not found")
        return _serve(stored.path, stored.name, stored.content_type, inline=False)


class StaffFileController(Controller):
    path = "/api/v1/staff-files"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_files(
        self, who: Principal, services: Services, folder: FolderQuery | None = None
    ) -> list[StaffFileOut]:
        """Files the caller may download (all, or one folder's: ``folder=`` empty is the root)."""
        async with services.db.transaction() as session:
            rows = await staff_files.list_staff_files(session, who, folder)
            return out_list([staff_files.staff_file_dict(f, s) for f, s in rows], StaffFileOut)

    @post("/", status_code=201, responses=WRITE, request_max_body_size=staff_files.MAX_UPLOAD + FORM_SLACK)
    async def upload(self, who: Principal, services: Services, data: Form) -> StaffFileOut:
        """A document in ``file``; ``folder``, ``name`` (default: the file's) and ``roles``
        (comma-separated role names; empty = every staff role) as form fields."""
        check_role(who, *staff_files.MANAGERS)
        content, filename, content_type = await _file(data)
        roles = [r for r in _text(data, "roles").split(",") if r.strip()]
        async with services.db.transaction() as session:
            row = await staff_files.do_upload_staff_file(
                session,
                who,
                _text(data, "folder"),
                content,
                filename,
                content_type,
                name=_text(data, "name"),
                roles=roles,
                settings=services.settings,
            )
            stored = await session.get_one(m.StoredFile, row.file_id)
            return out(staff_files.staff_file_dict(row, stored), StaffFileOut)

    @get("/folders", responses=READ)
    async def folders(self, who: Principal, services: Services) -> FoldersOut:
        async with services.db.transaction() as session:
            return FoldersOut(folders=await staff_files.list_folders(session, who))

    @post("/folders", status_code=201, responses=WRITE)
    async def create_folder(self, who: Principal, services: Services, data: FolderIn) -> FoldersOut:
        async with services.db.transaction() as session:
            await staff_files.do_create_folder(session, who, data.path)
            return FoldersOut(folders=await staff_files.list_folders(session, who))

    @patch("/folders", responses=WRITE)
    async def rename_folder(self, who: Principal, services: Services, data: FolderRename) -> FoldersOut:
        async with services.db.transaction() as session:
            await staff_files.do_rename_folder(session, who, data.path, data.new)
            return FoldersOut(folders=await staff_files.list_folders(session, who))

    @delete("/folders", status_code=200, responses=REMOVE)
    async def delete_folder(self, who: Principal, services: Services, path: FolderQuery = "") -> FoldersOut:
        async with services.db.transaction() as session:
            await staff_files.do_delete_folder(session, who, path)
            return FoldersOut(folders=await staff_files.list_folders(session, who))

    @patch("/{staff_file_id:int}", responses=WRITE)
    async def update_file(
        self, who: Principal, services: Services, staff_file_id: IntId, data: StaffFileUpdate
    ) -> StaffFileOut:
        async with services.db.transaction() as session:
            row = await staff_files.do_update_staff_file(
                session,
                who,
                staff_file_id,
                name=data.name if isinstance(data.name, str) else None,
                folder=data.folder if isinstance(data.folder, str) else None,
                roles=list(data.roles) if isinstance(data.roles, list) else None,
            )
            stored = await session.get_one(m.StoredFile, row.file_id)
            return out(staff_files.staff_file_dict(row, stored), StaffFileOut)

    @delete("/{staff_file_id:int}", status_code=200, responses=REMOVE)
    async def delete_file(self, who: Principal, services: Services, staff_file_id: IntId) -> OkOut:
        async with services.db.transaction() as session:
            await staff_files.do_delete_staff_file(session, who, staff_file_id)
        return OkOut()

    @get("/{staff_file_id:int}/download", responses=READ)
    async def download(self, who: Principal, services: Services, staff_file_id: IntId) -> File:
        """404 for a file the caller's role may not read (its name is not revealed)."""
        async with services.db.transaction() as session:
            row = await staff_files.access_staff_file(session, who, staff_file_id)
            stored = await session.get(m.StoredFile, row.file_id)
        if stored is None:
            raise NotFound("file not found")
        return _serve(stored.path, row.name, stored.content_type, inline=False)


CONTROLLERS = [PromptController, StaffFileController]
