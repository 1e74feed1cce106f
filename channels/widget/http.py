"""HTTP side of the widget: attachment upload and download for visitors, and the PDF of their
conversation (``GET /api/v1/widget/transcript``).

The visitor proves who they are with the signed visitor token from ``welcome``; files are
stored under their identity and can only be sent in their own messages.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body
from litestar.response import File

from channels.widget import VISITOR_PURPOSE
from omni import crypto
from omni.api.contracts import ErrorBody, Id, Name, Text
from omni.api.deps import request_language, services_of
from omni.api.edge import REFUSALS
from omni.api.files_http import serve
from omni.db import models as m
from omni.domain import files, identities, inboxes, transcript_pdf
from omni.domain.errors import DomainError, InvalidInput, NotAuthenticated, NotFound, TooManyRequests
from omni.i18n import error_body, pick_language


async def _visitor(
    request: Request[Any, Any, Any], inbox_token: str, visitor_token: str
) -> tuple[m.Inbox, str]:
    if "\x00" in inbox_token:  # a form field (upload): the edge's NUL guard reads JSON only
        raise NotFound("unknown or disabled widget")
    services = services_of(request)
    identity = crypto.unsign_value(services.settings.effective_secret_key(), VISITOR_PURPOSE, visitor_token)
    async with services.db.transaction() as session:
        inbox = await inboxes.public_inbox(session, inbox_token, "widget")
    if inbox is None:
        raise NotFound("unknown or disabled widget")
    if identity is None or not (identity.startswith((f"v:{inbox.id}:", f"user:{inbox.id}:"))):
        raise NotAuthenticated("the visitor token is not valid for this widget")
    return inbox, identity


class FileOut(msgspec.Struct):
    """``omni.domain.files.descriptor``: what a message's ``attachments`` hold."""

    id: str
    name: str
    type: str
    size: int
    url: str


class WidgetFileController(Controller):
    path = "/api/v1/widget/files"

    @post(
        "/",
        status_code=201,
        opt={"csrf": "exempt"},  # the visitor token authenticates, not a cookie
        responses={401: REFUSALS[401], 404: REFUSALS[404]},
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[FileOut]:
        """Called by the widget from the customer's site: every answer, errors included,
        carries CORS headers so the widget can show the reason. The form: ``file``, ``inbox``
        (the widget's public token), ``visitor`` (the signed visitor token)."""
        cors = {"Access-Control-Allow-Origin": "*"}
        try:
            body = await self._store(request, data)
        except DomainError as exc:
            refusal = msgspec.convert(
                {**error_body(exc, request_language(request)), "field": exc.field}, ErrorBody
            )
            # This route answers its refusals itself (with CORS); they are documented as ErrorBody.
            return Response(refusal, status_code=exc.status_code, headers=cors)  # type: ignore[arg-type]
        return Response(body, status_code=201, headers=cors)

    async def _store(self, request: Request[Any, Any, Any], data: dict[str, Any]) -> FileOut:
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("send the file in a form field named 'file'", field="file")
        inbox, identity = await _visitor(request, str(data.get("inbox", "")), str(data.get("visitor", "")))
        services = services_of(request)
        limits = services.settings.widget
        content = await upload.read(limits.max_upload_bytes + 1)
        async with services.db.transaction() as session:
            row = await files.do_store_upload(
                session,
                data_dir=services.settings.data_dir,
                inbox_id=inbox.id,
                owner=identity,
                name=upload.filename or "file",
                content_type=(upload.content_type or "").split(";")[0].strip().lower(),
                data=content,
                max_bytes=limits.max_upload_bytes,
                allowed=limits.allowed_upload_types,
            )
            return msgspec.convert(files.descriptor(row), FileOut)

    @get("/{file_id:str}", responses={401: REFUSALS[401], 404: REFUSALS[404]})
    async def download(
        self, request: Request[Any, Any, Any], file_id: Name, inbox: Name, visitor: Text
    ) -> File:
        _, identity = await _visitor(request, inbox, visitor)
        async with services_of(request).db.transaction() as session:
            row = await files.get_file(session, file_id)
            if row.owner != identity and not await _in_visitor_conversation(session, row, identity):
                raise NotFound("file not found")
        return serve(row)


class WidgetTranscriptController(Controller):
    path = "/api/v1/widget/transcript"

    @get(
        "/",
        responses={
            200: ResponseSpec(None, media_type="application/pdf", description="The transcript (attachment)"),
            401: REFUSALS[401],
            404: REFUSALS[404],
            429: REFUSALS[429],
        },
    )
    async def visitor_transcript(
        self,
        request: Request[Any, Any, Any],
        inbox: Name,
        visitor: Text,
        conversation_id: Id | None = None,
        lang: Name = "",
    ) -> Response[bytes]:
        """The visitor's own conversation as a PDF (default: their latest in this widget); any
        other conversation is "not found". Counted with the transcript mails
        (``widget.transcripts_per_minute``)."""
        box, identity = await _visitor(request, inbox, visitor)
        services = services_of(request)
        limiter = services.limits.limiter(
            "widget-transcript", services.settings.widget.transcripts_per_minute
        )
        if not await limiter.allow(identity):
            raise TooManyRequests("too many transcript requests, wait a minute")
        async with services.db.transaction() as session:
            said = await transcript_pdf.visitor_pdf(
                session,
                "widget",
                identity,
                box.id,
                conversation_id,
                pick_language(lang, request.headers.get("accept-language", "")),
            )
        pdf = await asyncio.to_thread(transcript_pdf.render, said)
        name = transcript_pdf.filename(said.conversation_id)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )


async def _in_visitor_conversation(session: Any, row: m.StoredFile, identity: str) -> bool:
    """Operators' attachments are readable by the visitor of the same conversation."""
    if row.conversation_id is None:
        return False
    return await identities.identity_in_conversation(session, row.conversation_id, identity)


CONTROLLERS = [WidgetFileController, WidgetTranscriptController]
"""The widget's HTTP routes, mounted by the composition root through ``channels.widget.setup``."""
