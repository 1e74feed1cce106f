"""Find anything: message text, internal notes, contacts and call metadata, in the caller's scope.

Message text is searched with the database's full-text index (migration ``0035_search18``):
on PostgreSQL a GIN index over ``to_tsvector('russian', body) || to_tsvector('english', body)``
queried with ``websearch_to_tsquery`` in both configurations, so "заказа" finds "заказ" and
"orders" finds "order"; on SQLite (embedded mode) an FTS5 table queried with prefix terms of a
light stem (``stem``), which gives the same word-form matching without a stemmer library.
Contacts (name, e-mail, phone, identities) and calls (caller number, the line's DID, the
operator, the result code) are small next to messages and matched by substring, phones by
digits ("8 (916) 123" finds "+7 916 123-45-12").

Scope is ``access_conversation``'s rule in SQL (``visible_conversations_filter``): an operator
finds their queues' conversations and whatever was assigned or offered to them, a supervisor
their groups' queues, an admin everything; contacts follow ``contact_scope_filter``. Phones and
e-mails in hits are masked for a reader without ``PII_VIEW`` (``omni.domain.masking``).

Filters that belong to other features (labels) plug in through ``register_filter``: a name and
a function from the requested value to SQL conditions on ``m.Conversation``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, literal_column, or_, select, text, union
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.auth import (
    Principal,
    visible_conversations_filter,
    visible_queue_ids,
)
from omni.domain.errors import InvalidInput, PermissionDenied
from omni.domain.masking import Masker, mask_text, masker_for
from omni.domain.search_pg import PG_COLUMN, PG_QUEUE, reset_planner, window_ids
from omni.domain.views import view_conditions

__all__ = [
    "FTS_TABLE",
    "KINDS",
    "PG_COLUMN",
    "PG_INDEX",
    "UNMAPPED_COLUMNS",
    "UNMAPPED_INDEXES",
    "Hit",
    "SearchPage",
    "SearchQuery",
    "Segment",
    "register_filter",
    "search",
    "segments",
    "stem",
]

KINDS = ("message", "note", "contact", "call")
"""What a hit can be; ``SearchQuery.kinds`` picks among them (all by default)."""

MAX_QUERY = 200
"""Characters of a query; longer text is a paste, not a search."""

MAX_LIMIT = 100
PG_INDEX = "ix_messages_search"
PG_TSV = "(to_tsvector('russian'::regconfig, body) || to_tsvector('english'::regconfig, body))"
"""The expression of the stored generated column ``messages.search_tsv`` (migration
``0035_search18``); the column is GIN-indexed and not mapped in the models."""
DIGITS_INDEXES = (
    "ix_contacts_phone_digits_trgm",
    "ix_contact_identities_phone_digits_trgm",
    "ix_calls_caller_digits_trgm",
)
"""PostgreSQL trigram indexes on the digits of phone columns (``_sql_digits``), migration
``0043_searchperf2``."""
UNMAPPED_INDEXES = frozenset(
    {
        PG_INDEX,
        "ix_contacts_name_trgm",
        "ix_contacts_email_trgm",
        "ix_contact_identities_value_trgm",
        "ix_messages_search_queue",
        "ix_messages_created_at",
        "ix_messages_search_queue_created",
        *DIGITS_INDEXES,
    }
)
"""PostgreSQL indexes of migrations ``0037_search18`` (GIN, ``pg_trgm``) and
``0040_searchperf18`` (scope and date) and ``0043_searchperf2`` (scope with dates, phone
digits) outside the models."""
UNMAPPED_COLUMNS = frozenset({PG_COLUMN, PG_QUEUE})
"""PostgreSQL-only columns of ``messages`` the models don't map."""

RANK_WINDOW = 200
"""Newest matching messages in scope ranked by relevance (at least a page's worth more when
paging deeper). Bounds the work on millions of messages: the newest matches are found by
walking ``messages`` backwards, so the window's size is what a query costs
(bench/search_bench.py: 2,000 cost an operator's 3 %-frequency word 1 s, 200 about 0.1 s)."""

FTS_TABLE = "messages_fts"
"""SQLite's FTS5 table (external content: ``messages``); its shadow tables share the prefix."""

START, STOP = "\x02", "\x03"
"""Highlight markers inside snippets, turned into ``Segment``s before anything leaves."""

ConversationFilter = Callable[[str], Sequence[ColumnElement[bool]]]
_FILTERS: dict[str, ConversationFilter] = {}


def register_filter(name: str, build: ConversationFilter) -> None:
    """Add a named filter (e.g. ``label``): ``build(value)`` returns conditions on
    ``m.Conversation``. The REST route and the search page pass ``?label=…`` through here."""
    _FILTERS[name] = build


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str = ""
    kinds: tuple[str, ...] = KINDS
    channel: str | None = None
    queue_id: int | None = None
    operator_id: int | None = None
    status: str | None = None
    result_code_id: int | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)
    """Registered filters by name (``register_filter``)."""
    sort: str = "relevance"
    offset: int = 0
    limit: int = 20


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    hit: bool


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str
    conversation_id: int | None
    message_id: int | None
    contact_id: int | None
    at: datetime | None
    channel: str
    status: str
    title: str
    snippet: list[Segment]
    score: float


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[Hit]
    offset: int
    limit: int
    has_more: bool


# --- query text -------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
_PHONEISH = re.compile(r"^[\d\s+()\-.]+$")
_RU_ENDING_LIST = (
    "иями ями ами ого его ому ему ыми ими ией ия ие ий ой ей ый ая яя ое ее ые ах ях ов ев ом ем "
    "ам ям ую юю ость а я о е ы и у ю ь й"
)
_RU_ENDINGS: tuple[str, ...] = tuple(sorted(_RU_ENDING_LIST.split(), key=len, reverse=True))
_EN_ENDINGS = ("ing", "ies", "es", "ed", "s")


def stem(word: str) -> str:
    """A light stem for SQLite's prefix search: "заказа" → "заказ", "orders" → "order".

    Strips the longest common inflection while at least four letters stay; PostgreSQL uses the
    real Snowball stemmers instead."""
    w = word.lower()
    endings: Sequence[str] = _RU_ENDINGS if re.search(r"[а-яё]", w) else _EN_ENDINGS
    for ending in endings:
        if w.endswith(ending) and len(w) - len(ending) >= 4:
            return w[: -len(ending)]
    return w


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _fts5_query(q: str) -> str:
    return " ".join(f'"{stem(w)}"*' for w in _WORD.findall(q))


def _sql_digits(column: Any) -> Any:
    """Only the digits of a phone column, the same on both databases. The characters are SQL
    literals, not bound parameters: on PostgreSQL the expression is then the one the trigram
    indexes of migration ``0043_searchperf2`` (``DIGITS_INDEXES``) are built on, so ``LIKE
    '%digits%'`` is an index condition instead of a scan of every contact."""
    expr = column
    for ch in ("+", "-", " ", "(", ")", "."):
        expr = func.replace(expr, literal_column(f"'{ch}'"), literal_column("''"))
    return expr


def _digits_match(column: Any, digits: str) -> ColumnElement[bool]:
    """The column's digits contain the query's; a Russian trunk "8" also matches "+7"
    ("8 916 123" finds "+7 916 123-45-12")."""
    variants = [digits]
    if digits.startswith("8") and len(digits) > 3:
        variants.append(digits[1:])
    return or_(*(_sql_digits(column).like(_like(v), escape="\\") for v in variants))


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def segments(marked: str) -> list[Segment]:
    """A snippet with ``START``/``STOP`` markers as plain/highlighted pieces (clients escape
    text themselves; nothing here is HTML)."""
    out: list[Segment] = []
    hit = False
    for part in re.split(f"([{START}{STOP}])", marked):
        if part == START:
            hit = True
        elif part == STOP:
            hit = False
        elif part:
            out.append(Segment(part, hit))
    return out


def _plain_snippet(value: str, needle: str) -> list[Segment]:
    """``value`` with the first case-insensitive occurrence of ``needle`` highlighted."""
    at = value.lower().find(needle.lower()) if needle else -1
    if at < 0:
        return [Segment(value, False)] if value else []
    end = at + len(needle)
    return [
        s
        for s in (Segment(value[:at], False), Segment(value[at:end], True), Segment(value[end:], False))
        if s.text
    ]


# --- filters and scope ------------------------------------------------------------------------


def _label_filter(value: str) -> Sequence[ColumnElement[bool]]:
    try:
        label_id = int(value)
    except ValueError:
        raise InvalidInput("a label is given by its number", field="label") from None
    return view_conditions({"label_id": [label_id]})


register_filter("label", _label_filter)


def _conversation_filters(q: SearchQuery) -> list[ColumnElement[bool]]:
    c = m.Conversation
    where: list[ColumnElement[bool]] = []
    if q.channel:
        where.append(c.channel == q.channel)
    if q.queue_id is not None:
        where.append(c.queue_id == q.queue_id)
    if q.operator_id is not None:
        where.append(c.assigned_user_id == q.operator_id)
    if q.status:
        where.append(c.status == q.status)
    if q.result_code_id is not None:
        where.append(c.result_code_id == q.result_code_id)
    for name, value in q.extra.items():
        build = _FILTERS.get(name)
        if build is None:
            raise InvalidInput("unknown filter {name}", field=name, name=name)
        where.extend(build(value))
    return where


def _validate(q: SearchQuery) -> None:
    if len(q.text) > MAX_QUERY:
        raise InvalidInput("a search is at most {n} characters", field="q", n=MAX_QUERY)
    if not q.text.strip() and not _has_filters(q):
        raise InvalidInput("type what to look for or choose a filter", field="q")
    if not set(q.kinds) <= set(KINDS) or not q.kinds:
        raise InvalidInput("kind is one of {kinds}", field="kind", kinds=", ".join(KINDS))
    if q.sort not in ("relevance", "newest"):
        raise InvalidInput("sort is relevance or newest", field="sort")
    if q.date_from and q.date_to and q.date_from > q.date_to:
        raise InvalidInput("the start date is after the end date", field="date_from")
    if not 1 <= q.limit <= MAX_LIMIT:
        raise InvalidInput("limit is between 1 and {n}", field="limit", n=MAX_LIMIT)


def _has_filters(q: SearchQuery) -> bool:
    return any(
        v is not None and v != ""
        for v in (q.channel, q.queue_id, q.operator_id, q.status, q.result_code_id, q.date_from, q.date_to)
    ) or bool(q.extra)


# --- the three sources ------------------------------------------------------------------------


async def _messages(
    session: AsyncSession, who: Principal, q: SearchQuery, queues: set[int] | None, want: int
) -> list[Hit]:
    kinds = [k for k in ("message", "note") if k in q.kinds]
    if not kinds:
        return []
    c, msg = m.Conversation, m.Message
    conversation_where = [*visible_conversations_filter(queues, who), *_conversation_filters(q)]
    message_where: list[Any] = []
    if kinds == ["note"]:
        message_where.append(msg.direction == "note")
    elif kinds == ["message"]:
        message_where.append(msg.direction != "note")
    if q.date_from is not None:
        message_where.append(msg.created_at >= q.date_from)
    if q.date_to is not None:
        message_where.append(msg.created_at < q.date_to)
    where: list[Any] = [*conversation_where, *message_where]
    dialect = session.get_bind().dialect.name
    words = q.text.strip()
    stmt: Select[Any]
    if not words:
        stmt = select(msg.id, msg.conversation_id, msg.body, literal_column("0.0"))  # type: ignore[assignment]  # row shape varies by branch
        order = [msg.id.desc()]
    elif dialect == "postgresql":
        tsq = func.websearch_to_tsquery(text("'russian'::regconfig"), words).op("||")(
            func.websearch_to_tsquery(text("'english'::regconfig"), words)
        )
        tsv: ColumnElement[Any] = literal_column(f"messages.{PG_COLUMN}")
        # the newest matches in scope (RANK_WINDOW of them for relevance, a page for newest)
        window = (
            await window_ids(
                session,
                who,
                words=words,
                tsq=tsq,
                message_where=message_where,
                conversation_where=conversation_where,
                queues=queues,
                queue_id=q.queue_id,
                dated=q.date_from is not None or q.date_to is not None,
                size=want if q.sort == "newest" else max(RANK_WINDOW, want),
            )
        ).subquery("window")
        snippet = func.ts_headline(
            text("'russian'::regconfig"),
            msg.body,
            tsq,
            f"StartSel={START}, StopSel={STOP}, MaxWords=28, MinWords=8, MaxFragments=2, "
            "FragmentDelimiter=' … '",
        )
        rank = func.ts_rank_cd(tsv, tsq)
        # rank the window only (a word in a million messages stays fast), keep the best
        # page, and only then build snippets for those few rows
        top = (
            select(msg.id.label("id"), rank.label("rank"))
            .join(window, window.c.id == msg.id)
            .order_by(*([msg.id.desc()] if q.sort == "newest" else [rank.desc(), msg.id.desc()]))
            .limit(want)
            .subquery("top")
        )
        stmt = select(msg.id, msg.conversation_id, snippet, top.c.rank).join(top, top.c.id == msg.id)
        where = []
        order = [msg.id.desc()] if q.sort == "newest" else [top.c.rank.desc(), msg.id.desc()]
    else:
        match = _fts5_query(words)
        if not match:
            return []
        fts = text(
            "SELECT rowid AS id, snippet(messages_fts, 0, char(2), char(3), ' … ', 24) AS snip, "
            "bm25(messages_fts) AS score FROM messages_fts WHERE messages_fts MATCH :match"
        ).columns(literal_column("id"), literal_column("snip"), literal_column("score"))
        sub = fts.bindparams(match=match).subquery("fts")
        stmt = select(msg.id, msg.conversation_id, sub.c.snip, -sub.c.score).join(sub, sub.c.id == msg.id)
        order = [sub.c.score.asc(), msg.id.desc()] if q.sort == "relevance" else [msg.id.desc()]
    stmt = (
        stmt.add_columns(msg.direction, msg.created_at, c.channel, c.status, m.Contact.name)
        .join(c, c.id == msg.conversation_id)
        .join(m.Contact, m.Contact.id == c.contact_id)
        .where(*where)
        .order_by(*order)
        .limit(want)
    )
    rows = (await session.execute(stmt)).all()
    if words and dialect == "postgresql":
        await reset_planner(session)
    hits = []
    for mid, cid, snip, score, direction, at, channel, status, name in rows:
        body = str(snip or "")
        parts = segments(body) if words else [Segment(body[:200], False)]
        hits.append(
            Hit(
                kind="note" if direction == "note" else "message",
                conversation_id=cid,
                message_id=mid,
                contact_id=None,
                at=at,
                channel=channel,
                status=status,
                title=name or "",
                snippet=parts,
                score=float(score or 0),
            )
        )
    return hits


async def _contacts(
    session: AsyncSession, who: Principal, q: SearchQuery, masker: Masker, want: int
) -> list[Hit]:
    words = q.text.strip()
    if "contact" not in q.kinds or not words:
        return []
    ct, ident = m.Contact, m.ContactIdentity
    digits = _digits(words)
    pattern = _like(words)
    # a union of ids, so each branch uses its own (trigram) index instead of one scan of all
    matching: list[Any] = [
        select(ct.id).where(ct.name.ilike(pattern, escape="\\")),
        select(ct.id).where(ct.email.ilike(pattern, escape="\\")),
        select(ident.contact_id).where(ident.value.ilike(pattern, escape="\\")),
    ]
    if len(digits) >= 3 and _PHONEISH.match(words):
        matching += [
            select(ct.id).where(_digits_match(ct.phone, digits)),
            select(ident.contact_id).where(ident.kind == "phone", _digits_match(ident.value, digits)),
        ]
    where: list[Any] = [ct.id.in_(union(*matching)), ct.erased_at.is_(None)]
    # the contact has a conversation the caller may open (``contact_scope_filter``'s rule)
    # matching the filters; checked per candidate through the contact_id index
    conv_where: list[Any] = [*visible_conversations_filter(await visible_queue_ids(session, who), who)]
    conv_where += _conversation_filters(q)
    if q.date_from is not None:
        conv_where.append(m.Conversation.created_at >= q.date_from)
    if q.date_to is not None:
        conv_where.append(m.Conversation.created_at < q.date_to)
    if conv_where:
        where.append(exists().where(m.Conversation.contact_id == ct.id, *conv_where))
    rows = (await session.scalars(select(ct).where(*where).order_by(ct.id.desc()).limit(want))).all()
    latest = await _latest_conversations(session, who, [r.id for r in rows])
    hits = []
    for contact in rows:
        conv_id, channel, status = latest.get(contact.id, (None, "", ""))
        shown = " · ".join(x for x in (masker.phone(contact.phone), masker.email(contact.email)) if x)
        needle = words if words.lower() in (contact.name or "").lower() else ""
        hits.append(
            Hit(
                kind="contact",
                conversation_id=conv_id,
                message_id=None,
                contact_id=contact.id,
                at=contact.created_at,
                channel=channel,
                status=status,
                title=contact.name or "",
                snippet=_plain_snippet(contact.name or "", needle)
                + ([Segment(" · " + shown, False)] if shown else []),
                score=1000.0,
            )
        )
    return hits


async def _latest_conversations(
    session: AsyncSession, who: Principal, contact_ids: list[int]
) -> dict[int, tuple[int, str, str]]:
    """Each contact's newest conversation the caller may open (a contact hit opens it)."""
    if not contact_ids:
        return {}
    c = m.Conversation
    scope = visible_conversations_filter(await visible_queue_ids(session, who), who)
    rows = await session.execute(
        select(c.contact_id, c.id, c.channel, c.status)
        .where(c.contact_id.in_(contact_ids), *scope)
        .order_by(c.id)
    )
    return {contact_id: (cid, channel, status) for contact_id, cid, channel, status in rows.all()}


async def _calls(
    session: AsyncSession, q: SearchQuery, scope: list[ColumnElement[bool]], masker: Masker, want: int
) -> list[Hit]:
    words = q.text.strip()
    if "call" not in q.kinds or not words:
        return []
    c, call = m.Conversation, m.Call
    digits = _digits(words)
    phoneish = len(digits) >= 3 and _PHONEISH.match(words) is not None
    matches: list[ColumnElement[bool]] = [
        c.assigned_user_id.in_(
            select(m.User.id).where(
                or_(
                    m.User.display_name.ilike(_like(words), escape="\\"),
                    m.User.username.ilike(_like(words), escape="\\"),
                )
            )
        ),
        c.result_code_id.in_(
            select(m.ResultCode.id).where(
                or_(
                    m.ResultCode.name.ilike(_like(words), escape="\\"),
                    m.ResultCode.name_ru.ilike(_like(words), escape="\\"),
                    m.ResultCode.code.ilike(_like(words), escape="\\"),
                )
            )
        ),
    ]
    if phoneish:
        matches.append(_digits_match(call.caller_number, digits))
        dids = [
            inbox_id
            for inbox_id, config in (
                await session.execute(select(m.Inbox.id, m.Inbox.config).where(m.Inbox.channel == "voice"))
            ).all()
            if digits in _digits(str((config or {}).get("did", "")))
        ]
        if dids:
            matches.append(call.inbox_id.in_(dids))
    where: list[Any] = [or_(*matches), *scope, *_conversation_filters(q)]
    if q.date_from is not None:
        where.append(call.created_at >= q.date_from)
    if q.date_to is not None:
        where.append(call.created_at < q.date_to)
    stmt = (
        select(call, c.channel, c.status, m.Contact.name)
        .join(c, c.id == call.conversation_id)
        .join(m.Contact, m.Contact.id == c.contact_id)
        .where(*where)
        .order_by(call.id.desc())
        .limit(want)
    )
    hits = []
    for row, channel, status, name in (await session.execute(stmt)).all():
        number = masker.phone(row.caller_number) or ""
        hits.append(
            Hit(
                kind="call",
                conversation_id=row.conversation_id,
                message_id=None,
                contact_id=None,
                at=row.created_at,
                channel=channel,
                status=status,
                title=name or number,
                snippet=[Segment(number, phoneish and not masker.masked)] if number else [],
                score=500.0,
            )
        )
    return hits


def _masked_hit(hit: Hit) -> Hit:
    """A message hit found by the full phone or e-mail, its snippet masked (unhighlighted)."""
    text = "".join(s.text for s in hit.snippet)
    shown = mask_text(text)
    return hit if shown == text else dataclasses.replace(hit, snippet=[Segment(shown, False)])


async def search(session: AsyncSession, who: Principal, q: SearchQuery) -> SearchPage:
    """One page of hits the caller may see: contacts first, then calls, then messages and
    notes by relevance (or all by date with ``sort="newest"``). Paging is by offset;
    ``has_more`` says whether another page exists (counting every match of a common word on
    millions of rows would cost more than the search itself)."""
    if who.role == m.Role.AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")
    _validate(q)
    queues = await visible_queue_ids(session, who)
    scope = visible_conversations_filter(queues, who)
    masker = await masker_for(session, who)
    want = q.offset + q.limit + 1
    hits = [
        *await _contacts(session, who, q, masker, want),
        *await _calls(session, q, scope, masker, want),
        *[_masked_hit(h) if masker.masked else h for h in await _messages(session, who, q, queues, want)],
    ]
    if q.sort == "newest":
        hits.sort(key=lambda h: (h.at is not None, h.at), reverse=True)
    page = hits[q.offset : q.offset + q.limit]
    return SearchPage(hits=page, offset=q.offset, limit=q.limit, has_more=len(hits) > q.offset + q.limit)
