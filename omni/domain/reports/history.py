"""Contact history: every conversation and call of a period, searchable, newest first.

Unlike the other reports it reads the conversations themselves (one row per contact), so it is
paginated on the page (``offset`` / ``limit``, ``total_rows``) and streamed by exports
(``ReportSpec.stream``): a month of 100,000 contacts is never held in memory. The date range
uses ``conversations.created_at`` (indexed with the queue and the operator by migration
``0010_history``), so a search only reads the period's rows.

Scope is the conversation's own rule (``omni.domain.auth.access_conversation``): a supervisor
sees the conversations of their groups' queues, so every row they see opens (transcript:
``GET /api/v1/conversations/{id}``, recording: ``…/{id}/recording``). Admins and auditors see
every conversation, those without a queue (bot-only) included.

Durations (seconds): *wait* from the first enqueue to the answer (or to the end when nobody
answered); *talk* the call's connected time minus hold (voice, from the PBX) or, for chats,
accept → wrap-up (or close) minus hold; *handling* accept → close (talk, hold and wrap-up).
The duration filter reads *talk*; an unanswered contact counts as 0.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.masking import UNMASKED, masker_for
from omni.domain.reports.filters import Scope
from omni.domain.reports.registry import FILTERS, SEARCH_FILTERS, ReportSpec, register
from omni.domain.reports.table import Cell, Column, Kind, ReportTable
from omni.i18n import enum_label

KEY = "contact_history"
STREAM_BATCH = 1000

COLUMNS = (
    Column("started", Kind.DATETIME, "Started"),
    Column("channel", Kind.TEXT, "Channel"),
    Column("inbox", Kind.TEXT, "Inbox"),
    Column("contact", Kind.TEXT, "Contact"),
    Column("phone", Kind.TEXT, "Phone or identity"),
    Column("queue", Kind.TEXT, "Queue"),
    Column("operator", Kind.TEXT, "Operator"),
    Column("status", Kind.TEXT, "Status"),
    Column("result_code", Kind.TEXT, "Result code"),
    Column("wait", Kind.SECONDS, "Wait"),
    Column("talk", Kind.SECONDS, "Talk"),
    Column("handle", Kind.SECONDS, "Handling"),
    Column("recording", Kind.TEXT, "Recording"),
    Column("conversation_id", Kind.COUNT, "Conversation"),
)
"""``recording`` is a flag (true/false); ``conversation_id`` is what the page opens."""

_PHONEISH = re.compile(r"^[\d\s()+\-.]+$")

C = m.Conversation


def _seconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def talk_expr(dialect: str) -> ColumnElement[Any]:
    """Talk seconds in SQL, as ``_talk`` computes them for the row (0 when unanswered)."""
    chat = _seconds_between(func.coalesce(C.wrap_up_at, C.closed_at), C.accepted_at, dialect) - C.hold_seconds
    return func.coalesce(case((m.Call.id.is_not(None), m.Call.talk_seconds), else_=chat), 0.0)


def _identity() -> Any:
    """A contact's first channel identity, for contacts without a phone number."""
    return (
        select(m.ContactIdentity.value)
        .where(m.ContactIdentity.contact_id == C.contact_id)
        .order_by(m.ContactIdentity.id)
        .limit(1)
        .correlate(C)
        .scalar_subquery()
    )


def _search(q: str) -> ColumnElement[bool]:
    """Contacts whose name, e-mail, phone (digits anywhere, whatever the punctuation typed) or
    any channel identity contains the search. Matched on the contacts first (a semi-join), so
    the period's conversations are not each tested against every pattern."""
    clauses: list[ColumnElement[bool]] = [
        m.Contact.name.icontains(q, autoescape=True),
        m.Contact.email.icontains(q, autoescape=True),
    ]
    digits = re.sub(r"\D", "", q)
    if digits and _PHONEISH.match(q):
        clauses.append(m.Contact.phone.contains(digits, autoescape=True))
    contacts = select(m.Contact.id).where(or_(*clauses))
    identities = select(m.ContactIdentity.contact_id).where(
        m.ContactIdentity.value.icontains(q, autoescape=True)
    )
    return C.contact_id.in_(contacts.union(identities))


def _where(scope: Scope, dialect: str) -> list[ColumnElement[bool]]:
    f = scope.filter
    where: list[ColumnElement[bool]] = [C.created_at >= scope.period.start, C.created_at < scope.period.end]
    if scope.empty:
        return [false()]
    if scope.queue_ids is not None:
        where.append(C.queue_id.in_(scope.queue_ids))
    if f.user_ids and scope.user_ids is not None:  # a group alone narrows by its queues (above)
        where.append(C.assigned_user_id.in_(scope.user_ids))
    if f.channels:
        where.append(C.channel.in_(f.channels))
    if f.inbox_ids:
        where.append(C.inbox_id.in_(f.inbox_ids))
    if f.result_code_ids:
        where.append(C.result_code_id.in_(f.result_code_ids))
    if f.label_ids:
        labelled = select(m.ConversationLabel.conversation_id).where(
            m.ConversationLabel.label_id.in_(f.label_ids)
        )
        where.append(C.id.in_(labelled))
    if f.q:
        where.append(_search(f.q))
    if f.min_duration is not None or f.max_duration is not None:
        talk = talk_expr(dialect)
        if f.min_duration is not None:
            where.append(talk >= f.min_duration)
        if f.max_duration is not None:
            where.append(talk <= f.max_duration)
    return where


def _by_duration(scope: Scope) -> bool:
    return scope.filter.min_duration is not None or scope.filter.max_duration is not None


def _matching(stmt: Any, scope: Scope, dialect: str) -> Any:
    """``stmt`` over the conversations that match (the call joined only to filter by talk)."""
    stmt = stmt.select_from(C)
    if _by_duration(scope):
        stmt = stmt.outerjoin(m.Call, m.Call.conversation_id == C.id)
    return stmt.where(and_(*_where(scope, dialect)))


def _details(stmt: Any) -> Any:
    return (
        stmt.join(m.Contact, m.Contact.id == C.contact_id)
        .outerjoin(m.Call, m.Call.conversation_id == C.id)
        .outerjoin(m.Inbox, m.Inbox.id == C.inbox_id)
        .outerjoin(m.Queue, m.Queue.id == C.queue_id)
        .outerjoin(m.User, m.User.id == C.assigned_user_id)
        .outerjoin(m.ResultCode, m.ResultCode.id == C.result_code_id)
    )


def _columns() -> Any:
    return select(
        C.id,
        C.created_at,
        C.channel,
        C.status,
        C.first_enqueued_at,
        C.accepted_at,
        C.wrap_up_at,
        C.closed_at,
        C.hold_seconds,
        m.Inbox.name.label("inbox"),
        m.Contact.name.label("contact"),
        m.Contact.phone,
        m.Call.id.label("call_id"),
        m.Call.caller_number,
        m.Call.talk_seconds,
        m.Call.recording_path,
        _identity().label("identity"),
        m.Queue.name.label("queue"),
        m.User.display_name,
        m.User.username,
        m.ResultCode.name.label("code_name"),
        m.ResultCode.name_ru.label("code_name_ru"),
    )


def _rows_query(scope: Scope, dialect: str) -> Select[Any]:
    """Every matching row with its details, newest first (what an export streams)."""
    query: Select[Any] = (
        _details(_columns()).where(and_(*_where(scope, dialect))).order_by(C.created_at.desc(), C.id.desc())
    )
    return query


def _page_query(scope: Scope, dialect: str) -> Select[Any]:
    """One page: the page's ids first (the indexes, no details), then the details of those rows
    only, so a far page doesn't build the details of every row it skips."""
    f = scope.filter
    ids = (
        _matching(select(C.id, C.created_at), scope, dialect)
        .order_by(C.created_at.desc(), C.id.desc())
        .offset(f.offset)
        .limit(f.limit)
        .subquery("page")
    )
    query: Select[Any] = _details(_columns().join(ids, ids.c.id == C.id)).order_by(
        ids.c.created_at.desc(), ids.c.id.desc()
    )
    return query


def _secs(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def _talk(row: Any) -> float | None:
    if row.call_id is not None:
        return float(row.talk_seconds or 0.0)
    chat = _secs(row.wrap_up_at or row.closed_at, row.accepted_at)
    return None if chat is None else max(0.0, chat - (row.hold_seconds or 0))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class _Labels(dict[tuple[str, str], str]):
    """Channel and status labels in the reader's language, looked up once per value."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang
        self.masker = UNMASKED
        """Phones as the reader may see them (``omni.domain.masking``), set by ``run``/``stream``."""

    def __missing__(self, key: tuple[str, str]) -> str:
        self[key] = label = enum_label(self.lang, *key)
        return label


def _row(row: Any, scope: Scope, labels: _Labels | None = None) -> list[Cell]:
    lang = scope.who.language
    tz = scope.config.tz
    labels = labels if labels is not None else _Labels(lang)
    answered_or_ended = row.accepted_at or row.closed_at
    code = None
    if row.code_name is not None:
        code = row.code_name_ru if lang == "ru" and row.code_name_ru else row.code_name
    return [
        row.created_at.astimezone(tz),
        labels["channel", row.channel],
        row.inbox,
        row.contact or None,
        labels.masker.phone(row.phone or row.caller_number or row.identity),
        row.queue,
        (row.display_name or row.username) if row.username is not None else None,
        labels["status", row.status],
        code,
        _round(_secs(answered_or_ended, row.first_enqueued_at)),
        _round(_talk(row)),
        _round(_secs(row.closed_at, row.accepted_at)),
        bool(row.recording_path),
        row.id,
    ]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def run(session: AsyncSession, scope: Scope) -> ReportTable:
    """One page (``offset`` / ``limit``) and how many rows match in all (``total_rows``)."""
    dialect = _dialect(session)
    table = ReportTable(KEY, COLUMNS, notes=["rpt.note.history"])
    if scope.empty:
        table.total_rows = 0
        return table
    total = await session.scalar(_matching(select(func.count(C.id)), scope, dialect))
    table.total_rows = int(total or 0)
    f = scope.filter
    if f.limit > 0 and f.offset < table.total_rows:
        page = await session.execute(_page_query(scope, dialect))
        labels = _Labels(scope.who.language)
        labels.masker = await masker_for(session, scope.who)
        table.rows = [_row(r, scope, labels) for r in page]
    return table


async def stream(session: AsyncSession, scope: Scope) -> AsyncIterator[list[Cell]]:
    """Every matching row, newest first, fetched in batches from a server-side cursor (one
    round trip and one greenlet switch per batch, not per row)."""
    if scope.empty:
        return
    dialect = _dialect(session)
    labels = _Labels(scope.who.language)
    labels.masker = await masker_for(session, scope.who)
    query = _rows_query(scope, dialect).execution_options(yield_per=STREAM_BATCH)
    result = await session.stream(query)
    async for batch in result.partitions(STREAM_BATCH):
        for row in batch:
            yield _row(row, scope, labels)


def page(scope: Scope, offset: int, limit: int) -> Scope:
    """The same search at another page."""
    return replace(scope, filter=replace(scope.filter, offset=offset, limit=limit))


FILTERS_OFFERED: Sequence[str] = (*FILTERS, *SEARCH_FILTERS)

SPEC = register(
    ReportSpec(
        KEY,
        run,
        filters=tuple(f for f in FILTERS_OFFERED if f != "grouping"),
        paginated=True,
        order=100,
        stream=stream,
    )
)
