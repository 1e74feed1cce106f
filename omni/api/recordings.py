"""``GET /api/v1/conversations/{id}/recording``: a call recording, streamed with Range support.

Browsers seek in an ``<audio>`` element with ``Range: bytes=N-`` requests; a ranged request is
answered ``206`` with exactly those bytes, an unsatisfiable one ``416``. ``?download=1`` makes
it an attachment. Access is the conversation's (``omni.domain.recordings.access_recording``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from litestar import Controller, Request, Response, get
from litestar.openapi import ResponseSpec
from litestar.response import Stream

from omni.api.contracts import Id, Name
from omni.api.core import DEPS
from omni.api.edge import REFUSALS
from omni.domain import recordings
from omni.domain.auth import Principal
from omni.services import Services

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    """The requested range lies outside the file."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a single-range ``Range`` header; ``None`` = whole file
    (no header, a multi-range or a malformed one: RFC 9110 lets a server ignore it)."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable
    return start, end


async def _chunks(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as fh:
        await fh.seek(start)
        left = length
        while left > 0:
            data = await fh.read(min(CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data


class RecordingController(Controller):
    path = "/api/v1/conversations/{conversation_id:int}/recording"
    dependencies = DEPS

    @get(
        "/",
        responses={
            200: ResponseSpec(None, media_type="audio/*", description="The whole recording"),
            206: ResponseSpec(None, description="The requested byte range (`Content-Range`)"),
            416: ResponseSpec(None, description="The range lies outside the recording"),
            404: REFUSALS[404],
        },
    )
    async def recording(
        self,
        request: Request[Any, Any, Any],
        who: Principal,
        services: Services,
        conversation_id: Id,
        download: Name = "",
    ) -> Response[Any]:
        async with services.db.transaction() as session:
            path = await recordings.access_recording(
                session, who, conversation_id, services.settings.voice.recordings_dir
            )
        size = (await anyio.Path(path).stat()).st_size
        name = f"conversation-{conversation_id}{path.suffix.lower()}"
        disposition = "attachment" if download.lower() in ("1", "true", "yes") else "inline"
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'{disposition}; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=0",
        }
        try:
            wanted = parse_range(request.headers.get("range", ""), size)
        except RangeNotSatisfiable:
            return Response(b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        start, end = wanted if wanted is not None else (0, size - 1)
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        if wanted is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Stream(
            _chunks(path, start, length),
            status_code=206 if wanted is not None else 200,
            media_type=recordings.media_type(path),
            headers=headers,
        )


__all__ = ["RecordingController", "parse_range"]
