"""Do-not-call lists over REST: ``/api/v1/dnc`` (list/search, add), ``/api/v1/dnc/{id}``
(delete), ``/api/v1/dnc/check`` (call or don't call, with the entry), ``/api/v1/dnc/upload``.

Thin: ``campaign`` picks a campaign's list (absent: the global one); roles, scope, parsing and
the audit record are ``omni.domain.outbound.dnc``'s. Refused values of a bulk add or an upload
come back with their reason in the caller's language.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter

from omni.api.admin_bodies import BigRowId
from omni.api.admin_responses import READ, REMOVE, WRITE, OkOut
from omni.api.contracts import NO_NUL, IntId, OptIntId
from omni.api.core import DEPS
from omni.api.deps import request_language
from omni.db import models as m
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput
from omni.domain.outbound import dnc
from omni.services import Services

Raw = Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]
"""One number or prefix as typed (``8 (495) 123-45-67``, ``+7495*``)."""
Reason = Annotated[str, msgspec.Meta(max_length=256, pattern=NO_NUL)]
Query = Annotated[str, Parameter(max_length=64, pattern=NO_NUL)]
Number = Annotated[str, Parameter(min_length=1, max_length=64, pattern=NO_NUL)]
Offset = Annotated[int, Parameter(ge=0, le=10_000_000)]
Limit = Annotated[int, Parameter(ge=1, le=dnc.MAX_LIMIT)]


class DncAdd(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``number``: one value, refused (422 on ``number``) when bad or already listed;
    ``numbers``: up to 1,000, bad ones and duplicates skipped and reported."""

    campaign: IntId | None = None
    number: Raw | None = None
    numbers: Annotated[list[Raw], msgspec.Meta(max_length=dnc.MAX_NUMBERS)] | None = None
    reason: Reason = ""


class DncEntryOut(msgspec.Struct):
    id: int
    campaign_id: int | None
    number: str
    prefix: bool
    pattern: str
    """How people write it: the number, or ``+7495*`` for a prefix."""
    reason: str
    created_by: int | None
    created_at: str


class DncPageOut(msgspec.Struct):
    total: int
    offset: int
    limit: int
    entries: list[DncEntryOut]


class RejectedOut(msgspec.Struct):
    line: int
    """1-based: the position in ``numbers`` or the line of the file."""
    text: str
    detail: str


class DncAddOut(msgspec.Struct):
    added: int
    duplicates: int
    invalid: int
    entries: list[DncEntryOut]
    """The rows added (an upload leaves this empty: read the list)."""
    duplicate_numbers: list[str]
    """The first 100 values already listed (or given twice)."""
    rejected: list[RejectedOut]
    """The first 100 refused values with the reason."""


class DncCheckOut(msgspec.Struct):
    number: str
    """The number in E.164."""
    call: bool
    """``false``: a do-not-call entry forbids it (``entry``)."""
    entry: DncEntryOut | None


def _entry(row: m.DncEntry) -> DncEntryOut:
    return msgspec.convert(dnc.dnc_dict(row), DncEntryOut)


def _result(result: dnc.AddResult, lang: str) -> DncAddOut:
    return DncAddOut(
        added=result.added_count,
        duplicates=result.duplicate_count,
        invalid=result.invalid_count,
        entries=[_entry(e) for e in result.added],
        duplicate_numbers=result.duplicates,
        rejected=[RejectedOut(r.line, r.text, r.error.localized(lang)) for r in result.invalid],
    )


class DncController(Controller):
    path = "/api/v1/dnc"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_entries(
        self,
        who: Principal,
        services: Services,
        campaign: OptIntId = None,
        q: Query = "",
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> DncPageOut:
        """A page of the global list (or ``campaign``'s), newest first; ``q`` finds numbers and
        prefixes containing those digits."""
        async with services.db.transaction() as session:
            rows, total = await dnc.list_dnc(session, who, campaign, q=q, offset=offset, limit=limit)
            return DncPageOut(total=total, offset=offset, limit=limit, entries=[_entry(r) for r in rows])

    @post("/", responses=WRITE)
    async def add_entries(
        self, request: Request[Any, Any, Any], who: Principal, services: Services, data: DncAdd
    ) -> DncAddOut:
        if (data.number is None) == (data.numbers is None):
            raise InvalidInput("send either 'number' or 'numbers'", field="number")
        values = [data.number] if data.number is not None else list(data.numbers or [])
        async with services.db.transaction() as session:
            result = await dnc.check_add_dnc(
                session, who, data.campaign, values, reason=data.reason, strict=data.number is not None
            )
            return _result(result, request_language(request))

    @post("/upload", responses=WRITE)
    async def upload(
        self,
        request: Request[Any, Any, Any],
        who: Principal,
        services: Services,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
        campaign: OptIntId = None,
    ) -> DncAddOut:
        """A CSV or TXT file in the form field ``file``: one number (or ``+7495*`` prefix) per
        line, or in the first column; a header line is skipped. ``reason`` (form field) is kept
        with every entry."""
        upload = data.get("file")
        reason = data.get("reason")
        async with services.db.transaction() as session:
            await dnc.access_dnc_list(session, who, campaign, manage=True)  # refuse before reading
            if not isinstance(upload, UploadFile):
                raise InvalidInput("send the file in a form field named 'file'", field="file")
            content = await upload.read()
            result = await dnc.check_upload_dnc(
                session,
                who,
                campaign,
                content,
                filename=(upload.filename or "")[:256],
                reason=reason if isinstance(reason, str) else "",
            )
            return _result(result, request_language(request))

    @get("/check", responses=READ)
    async def check(
        self, who: Principal, services: Services, number: Number, campaign: OptIntId = None
    ) -> DncCheckOut:
        """May ``number`` be called (in ``campaign``: its own list and the global one)?"""
        async with services.db.transaction() as session:
            e164, entry = await dnc.check_dnc(session, who, campaign, number)
            return DncCheckOut(number=e164, call=entry is None, entry=_entry(entry) if entry else None)

    @delete("/{entry_id:int}", responses=REMOVE, status_code=200)
    async def remove(self, who: Principal, services: Services, entry_id: BigRowId) -> OkOut:
        async with services.db.transaction() as session:
            await dnc.check_remove_dnc(session, who, entry_id)
        return OkOut()


CONTROLLERS = [DncController]
