"""``GET /api/v1/search``: find messages, notes, contacts and calls; ``GET /api/v1/search/recordings``:
recorded calls by phone, operator and date. Both answer only what the caller may see
(``omni.domain.search``), phones and e-mails masked as their role requires.

Snippets come as segments (``{"text", "hit"}``), never as HTML: a client highlights the
``hit`` pieces after escaping the text itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import Parameter

from omni.api.contracts import INT32_MAX, NO_NUL, between
from omni.api.core import DEPS
from omni.domain import recordings, search
from omni.domain.auth import Principal
from omni.services import Services

Query = Annotated[
    str,
    Parameter(
        max_length=search.MAX_QUERY,
        pattern=NO_NUL,
        description='Words (websearch syntax on PostgreSQL: "phrase", or, -word) or a phone number',
    ),
]
Short = Annotated[str, Parameter(max_length=64, pattern=NO_NUL)]


class Kind(StrEnum):
    MESSAGE = "message"
    NOTE = "note"
    CONTACT = "contact"
    CALL = "call"


class Sort(StrEnum):
    RELEVANCE = "relevance"
    NEWEST = "newest"


Kinds = Annotated[list[Kind] | None, Parameter(max_items=4, description="What to find (default: all kinds)")]
OptionalId = Annotated[int | None, between(1, INT32_MAX)]
Offset = Annotated[
    int,
    Parameter(ge=0, le=10_000, description="Hits to skip", schema_extra={"minimum": 0, "maximum": 10_000}),
]
Limit = Annotated[
    int, Parameter(ge=1, le=search.MAX_LIMIT, schema_extra={"minimum": 1, "maximum": search.MAX_LIMIT})
]
Day = Annotated[date | None, Parameter(description="A calendar day (UTC); `until` is inclusive")]


class SegmentOut(msgspec.Struct):
    text: str
    hit: bool


class HitOut(msgspec.Struct):
    kind: str
    conversation_id: int | None
    message_id: int | None
    contact_id: int | None
    at: datetime | None
    channel: str
    status: str
    title: str
    snippet: list[SegmentOut]
    score: float


class SearchOut(msgspec.Struct):
    hits: list[HitOut]
    offset: int
    limit: int
    has_more: bool


class RecordingOut(msgspec.Struct):
    call_id: int
    conversation_id: int
    caller_number: str | None
    operator_id: int | None
    operator_name: str
    at: datetime
    talk_seconds: float
    url: str


class RecordingsOut(msgspec.Struct):
    recordings: list[RecordingOut]
    offset: int
    limit: int
    has_more: bool


def _start(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), UTC) if day else None


def _end(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), UTC) + timedelta(days=1) if day else None


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands naive UTC datetimes back; the API always says which zone."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class SearchController(Controller):
    path = "/api/v1/search"
    dependencies = DEPS

    @get("/", summary="Search messages, notes, contacts and calls")
    async def find(
        self,
        who: Principal,
        services: Services,
        q: Query = "",
        kind: Kinds = None,
        channel: Short = "",
        queue_id: OptionalId = None,
        operator_id: OptionalId = None,
        status: Short = "",
        result_code_id: OptionalId = None,
        label: Short = "",
        since: Day = None,
        until: Day = None,
        sort: Sort = Sort.RELEVANCE,
        offset: Offset = 0,
        limit: Limit = 20,
    ) -> SearchOut:
        """One page of hits in the caller's scope. ``label`` works once labels register their
        filter (``omni.domain.search.register_filter``); until then it is refused with 422."""
        query = search.SearchQuery(
            text=q,
            kinds=tuple(k.value for k in kind) if kind else search.KINDS,
            channel=channel or None,
            queue_id=queue_id,
            operator_id=operator_id,
            status=status or None,
            result_code_id=result_code_id,
            date_from=_start(since),
            date_to=_end(until),
            extra={"label": label} if label else {},
            sort=sort.value,
            offset=offset,
            limit=limit,
        )
        async with services.db.transaction() as session:
            page = await search.search(session, who, query)
        return SearchOut(
            hits=[
                HitOut(
                    kind=h.kind,
                    conversation_id=h.conversation_id,
                    message_id=h.message_id,
                    contact_id=h.contact_id,
                    at=_aware(h.at),
                    channel=h.channel,
                    status=h.status,
                    title=h.title,
                    snippet=[SegmentOut(s.text, s.hit) for s in h.snippet],
                    score=h.score,
                )
                for h in page.hits
            ],
            offset=page.offset,
            limit=page.limit,
            has_more=page.has_more,
        )

    @get("/recordings", summary="Recorded calls by phone, operator and date")
    async def recordings(
        self,
        who: Principal,
        services: Services,
        phone: Short = "",
        operator_id: OptionalId = None,
        since: Day = None,
        until: Day = None,
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> RecordingsOut:
        """Newest first; ``url`` plays the recording (``GET /api/v1/conversations/{id}/recording``)."""
        async with services.db.transaction() as session:
            rows, more = await recordings.find_recordings(
                session,
                who,
                phone=phone,
                operator_id=operator_id,
                date_from=_start(since),
                date_to=_end(until),
                offset=offset,
                limit=limit,
            )
        return RecordingsOut(
            recordings=[
                RecordingOut(
                    call_id=r.call_id,
                    conversation_id=r.conversation_id,
                    caller_number=r.caller_number,
                    operator_id=r.operator_id,
                    operator_name=r.operator_name,
                    at=_aware(r.at) or r.at,
                    talk_seconds=r.talk_seconds,
                    url=f"/api/v1/conversations/{r.conversation_id}/recording",
                )
                for r in rows
            ],
            offset=offset,
            limit=limit,
            has_more=more,
        )


CONTROLLERS = [SearchController]
