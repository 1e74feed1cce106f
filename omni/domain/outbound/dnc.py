"""Do-not-call lists: the global list and a campaign's own, single numbers and prefix ranges.

Checked before every attempt (the scheduler) and at import (a listed number is imported as
``dnc``, so the list's progress shows it). A prefix entry stores the leading digits of the
E.164 form (``+7495`` covers Moscow city numbers; people write it ``+7495*``); the lookup asks
for every prefix of the number at once, so it is one indexed query however long the list is,
and :func:`mark_dnc_targets` does the same for a whole campaign in one statement.

Who may do what (``access_dnc_list``): administrators manage every list; supervisors manage the
lists of campaigns whose queue is in their scope and read the global one; operators may only
*check* a number (the global list and their campaigns'). API tokens act as their user, so a
CRM's token adds and checks with its owner's rights. The global list is an administrator's.
The contact blacklist (``omni.domain.contacts``) is a different thing: it refuses *inbound*
contacts and is not consulted here.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Exists,
    Select,
    SQLColumnExpression,
    Table,
    Update,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from omni.db import models as m
from omni.db.models.outbound import TargetState
from omni.domain import audit
from omni.domain.auth import Principal, visible_queue_ids
from omni.domain.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from omni.domain.outbound.numbers import parse_number

__all__ = [
    "CHECKERS",
    "MANAGERS",
    "MAX_NUMBERS",
    "AddResult",
    "Rejected",
    "access_dnc_entry",
    "access_dnc_list",
    "check_add_dnc",
    "check_dnc",
    "check_remove_dnc",
    "check_upload_dnc",
    "covers",
    "dnc_dict",
    "do_add_dnc",
    "find_dnc",
    "list_dnc",
    "listed",
    "mark_dnc_targets",
    "mark_statement",
    "parse_dnc_line",
    "parse_entry",
    "pattern_of",
    "prefix_lengths",
    "prefixes",
    "visible_campaigns",
]

MANAGERS = (m.Role.ADMIN, m.Role.SUPERVISOR)
"""Roles that read and change lists (supervisors: their campaigns' lists only)."""
CHECKERS = (m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.OPERATOR)
"""Roles that may ask "may I call this number?"."""
MAX_NUMBERS = 1000
"""Numbers one add request may carry (a file upload has no such limit)."""
MAX_REJECTED_SHOWN = 100
"""Rejected lines an upload lists with their reason; the rest are only counted."""
MAX_LIMIT = 500
CHUNK = 1000
"""Values parsed (in a worker thread) and inserted per step of an add or upload."""
_PREFIX = re.compile(r"\+[1-9]\d{0,14}")
_SEPARATORS = re.compile(r"[\s\-().]")


def prefixes(e164: str) -> list[str]:
    """``+7495`` style prefixes of a number, shortest first (the ``+`` and one digit at least)."""
    return [e164[:n] for n in range(2, len(e164))]


def covers(
    entry: Any,
    number: str | SQLColumnExpression[str],
    campaign_id: int | SQLColumnExpression[int] | None,
    lengths: Iterable[int] | None = None,
) -> ColumnElement[bool]:
    """Whether the ``entry`` row (``m.DncEntry`` or an alias) forbids calling ``number`` in this
    campaign: the do-not-call rule, written once for every lookup (:func:`find_dnc`,
    :func:`mark_statement`, the scheduler's claim).

    The entry is global or the campaign's, and its number is one of the keys of
    ``ix_dnc_entries_number`` probed: the number itself and its prefixes (``number`` a string:
    bound values; a column: ``substr`` of it, at most 15 digits in E.164, or only the
    ``lengths`` the campaign's prefix entries have, :func:`prefix_lengths`). A prefix entry
    covers the numbers it starts and itself; an exact entry only itself."""
    keys: list[Any]
    if isinstance(number, str):
        keys = [number, *prefixes(number)]
    else:
        keys = [number, *(func.substr(number, 1, n) for n in (range(2, 16) if lengths is None else lengths))]
    scope: ColumnElement[bool] = entry.campaign_id.is_(None)
    if campaign_id is not None:
        scope = or_(scope, entry.campaign_id == campaign_id)
    return and_(scope, entry.number.in_(keys), or_(entry.prefix.is_(True), entry.number == number))


async def find_dnc(session: AsyncSession, campaign_id: int | None, e164: str) -> m.DncEntry | None:
    """The entry that forbids calling ``e164`` in this campaign (global or its own), if any.

    One query over ``ix_dnc_entries_number`` (:func:`covers`); an exact entry is preferred to a
    prefix (it names the number), then the oldest."""
    return await session.scalar(
        select(m.DncEntry)
        .where(covers(m.DncEntry, e164, campaign_id))
        .order_by(m.DncEntry.prefix, m.DncEntry.id)
        .limit(1)
    )


PREFIX_LENGTHS = range(2, 16)
"""Every length a prefix of an E.164 number can have (the ``+`` and one digit at least)."""


def listed(
    phone: ColumnElement[str] | InstrumentedAttribute[str],
    campaign_id: int,
    lengths: Iterable[int] = PREFIX_LENGTHS,
) -> Exists:
    """The one rule of "this number may not be called in this campaign", as SQL over ``phone``
    (an E.164 column): an entry of the global list or the campaign's equal to the number, or a
    prefix entry equal to its first n characters. ``lengths``: the n to look up — every one by
    default; :func:`prefix_lengths` gives the few the campaign's prefix entries have (a list
    import looks up 2 keys a number instead of 15). Each key is a probe of
    ``ix_dnc_entries_number``, never a scan of the list."""
    entry = aliased(m.DncEntry)
    return select(entry.id).where(covers(entry, phone, campaign_id, lengths)).exists()


async def prefix_lengths(session: AsyncSession, campaign_id: int) -> list[int]:
    """The lengths of the prefix entries that apply to the campaign: the only prefixes of a
    number :func:`listed` needs to look up (exact entries are found by the number itself)."""
    d = m.DncEntry
    found = await session.scalars(
        select(func.length(d.number))
        .where(d.prefix.is_(True), or_(d.campaign_id.is_(None), d.campaign_id == campaign_id))
        .distinct()
    )
    return sorted(n for n in (int(v) for v in found) if n >= 2)


def mark_statement(
    campaign_id: int,
    now: datetime,
    *,
    list_id: int | None = None,
    since_id: int | None = None,
    lengths: Iterable[int] = PREFIX_LENGTHS,
) -> Update:
    """The UPDATE behind :func:`mark_dnc_targets` (the bench prints its plan)."""
    target = m.CampaignTarget
    where = [
        target.campaign_id == campaign_id,
        target.state == TargetState.PENDING,
        listed(target.phone, campaign_id, lengths),
    ]
    if list_id is not None:
        where.append(target.list_id == list_id)
    if since_id is not None:
        where.append(target.id >= since_id)
    return (
        update(target)
        .where(*where)
        .values(state=TargetState.DNC, next_due_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def mark_dnc_targets(
    session: AsyncSession,
    campaign_id: int,
    *,
    now: datetime | None = None,
    list_id: int | None = None,
    since_id: int | None = None,
    lengths: Iterable[int] = PREFIX_LENGTHS,
) -> int:
    """Mark the campaign's pending targets whose number is on a DNC list (global or its own,
    exact or prefix: :func:`listed`) as ``dnc``, in one UPDATE; returns how many.

    The engine runs it after a list changes, so listed numbers are never picked; the importer
    on SQLite (a batch: ``list_id`` and ``since_id``, the batch's first target) — on
    PostgreSQL it decides the state with the same :func:`listed` as it inserts. It checks a
    target's first number (``phone``, the campaign's key); the scheduler's :func:`find_dnc`
    before each attempt covers the others. Target objects already loaded in ``session`` are
    not refreshed (``synchronize_session=False``)."""
    statement = mark_statement(
        campaign_id, now or datetime.now(UTC), list_id=list_id, since_id=since_id, lengths=lengths
    )
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


# --- parsing --------------------------------------------------------------------------------


def parse_entry(raw: str, default_region: str = "RU") -> tuple[str, bool]:
    """``(number, prefix)`` from what a person typed: a phone number in any usual form
    (normalised to E.164 with ``parse_number``), or a prefix range ending in ``*`` in
    international form (``+7 495*``). ``InvalidInput`` on field ``number`` says why not."""
    text = raw.strip()
    if text.endswith("*"):
        digits = _SEPARATORS.sub("", text[:-1])
        if not _PREFIX.fullmatch(digits):
            raise InvalidInput(
                "'{raw}' is not a number prefix: write it in international form, like +7495*",
                raw=text,
                field="number",
            )
        return digits, True
    try:
        return parse_number(text, default_region).e164, False
    except InvalidInput as exc:
        exc.field = "number"
        raise


def pattern_of(entry: m.DncEntry) -> str:
    """How an entry is written: ``+74951234567``, or ``+7495*`` for a prefix."""
    return f"{entry.number}*" if entry.prefix else entry.number


def parse_dnc_line(line: str) -> str:
    """The number on one line of an uploaded file: the whole line, or its first column
    (comma, semicolon or tab separated, quotes allowed)."""
    if not any(sep in line for sep in ",;\t"):
        return line.strip().strip('"').strip()
    delimiter = next(sep for sep in "\t;," if sep in line)
    for row in csv.reader([line], delimiter=delimiter):
        return row[0].strip() if row else ""
    return ""


def dnc_dict(entry: m.DncEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "campaign_id": entry.campaign_id,
        "number": entry.number,
        "prefix": entry.prefix,
        "pattern": pattern_of(entry),
        "reason": entry.reason,
        "created_by": entry.created_by,
        "created_at": entry.created_at.isoformat(),
    }


# --- scope ----------------------------------------------------------------------------------


async def access_dnc_list(
    session: AsyncSession, who: Principal, campaign_id: int | None, *, manage: bool
) -> m.Campaign | None:
    """The campaign whose list the caller works on (``None``: the global list), or a refusal.

    ``manage``: add, upload, delete (and read the list); otherwise only a check. A campaign
    outside the caller's scope is "not found", so ids don't leak."""
    roles = MANAGERS if manage else CHECKERS
    if who.role not in roles:
        raise PermissionDenied(
            "this action needs the role {roles}", roles=" or ".join(r.value for r in roles)
        )
    if campaign_id is None:
        return None
    campaign = await session.get(m.Campaign, campaign_id)
    if campaign is None or not await _in_scope(session, who, campaign):
        raise NotFound("campaign {campaign_id} not found", campaign_id=campaign_id, field="campaign")
    return campaign


async def _in_scope(session: AsyncSession, who: Principal, campaign: m.Campaign) -> bool:
    if who.role == m.Role.ADMIN:
        return True
    queues = await visible_queue_ids(session, who)
    if queues is None or campaign.queue_id in queues:
        return True
    if who.role == m.Role.OPERATOR:
        assigned = await session.get(m.CampaignOperator, (campaign.id, who.id))
        return assigned is not None
    return False


def _check_global_write(who: Principal, campaign: m.Campaign | None) -> None:
    if campaign is None and who.role != m.Role.ADMIN:
        raise PermissionDenied("only administrators change the global do-not-call list", field="campaign")


async def visible_campaigns(session: AsyncSession, who: Principal) -> list[m.Campaign]:
    """Campaigns whose lists the caller manages (by name): all for admins, their queues' for
    supervisors, none for anyone else."""
    if who.role not in MANAGERS:
        return []
    stmt = select(m.Campaign).order_by(m.Campaign.name)
    queues = await visible_queue_ids(session, who)
    if queues is not None:
        stmt = stmt.where(m.Campaign.queue_id.in_(queues))
    return list(await session.scalars(stmt))


async def access_dnc_entry(session: AsyncSession, who: Principal, entry_id: int) -> m.DncEntry:
    if not 0 < entry_id < 2**63:  # a page's path can carry any integer; no row has it
        raise NotFound("do-not-call entry {entry_id} not found", entry_id=entry_id)
    entry = await session.get(m.DncEntry, entry_id)
    if entry is None:
        raise NotFound("do-not-call entry {entry_id} not found", entry_id=entry_id)
    try:
        await access_dnc_list(session, who, entry.campaign_id, manage=True)
    except NotFound:
        raise NotFound("do-not-call entry {entry_id} not found", entry_id=entry_id) from None
    return entry


# --- reading --------------------------------------------------------------------------------


def _listing(campaign_id: int | None, q: str) -> Select[m.DncEntry]:
    stmt = select(m.DncEntry).where(
        m.DncEntry.campaign_id.is_(None) if campaign_id is None else m.DncEntry.campaign_id == campaign_id
    )
    needle = _SEPARATORS.sub("", q.strip()).rstrip("*")
    if needle:
        stmt = stmt.where(m.DncEntry.number.contains(needle, autoescape=True))
    return stmt


async def list_dnc(
    session: AsyncSession,
    who: Principal,
    campaign_id: int | None,
    *,
    q: str = "",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[m.DncEntry], int]:
    """A page of one list (newest first) whose numbers contain ``q``, and how many match."""
    await access_dnc_list(session, who, campaign_id, manage=True)
    stmt = _listing(campaign_id, q)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.scalars(
        stmt.order_by(m.DncEntry.id.desc()).offset(max(offset, 0)).limit(min(max(limit, 1), MAX_LIMIT))
    )
    return list(rows), int(total)


async def check_dnc(
    session: AsyncSession, who: Principal, campaign_id: int | None, raw: str
) -> tuple[str, m.DncEntry | None]:
    """ "May this number be called (in this campaign)?": its E.164 form and the entry that
    forbids it, if any."""
    campaign = await access_dnc_list(session, who, campaign_id, manage=False)
    try:
        e164 = parse_number(raw, campaign.default_region if campaign else "RU").e164
    except InvalidInput as exc:
        exc.field = "number"
        raise
    return e164, await find_dnc(session, campaign_id, e164)


# --- changing -------------------------------------------------------------------------------


@dataclass
class Rejected:
    """A value that was not added, and why (the transport shows ``error`` in the reader's language)."""

    line: int
    text: str
    error: DomainError


@dataclass
class AddResult:
    added: list[m.DncEntry] = field(default_factory=list)
    added_count: int = 0
    duplicates: list[str] = field(default_factory=list)
    """Patterns already on the list (or twice in the input); only the first 100 are kept."""
    duplicate_count: int = 0
    invalid: list[Rejected] = field(default_factory=list)
    invalid_count: int = 0

    def duplicate(self, pattern: str) -> None:
        self.duplicate_count += 1
        if len(self.duplicates) < MAX_REJECTED_SHOWN:
            self.duplicates.append(pattern)

    def reject(self, line: int, text: str, error: DomainError) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_REJECTED_SHOWN:
            self.invalid.append(Rejected(line, text[:64], error))


def _insert(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on the table (Core, not the ORM's bulk path): executed with
    a list of rows it is compiled once and sent in batches (SQLAlchemy's "insertmanyvalues"),
    where a multi-row VALUES clause was compiled afresh for every chunk (most of an upload's time)."""
    table = cast(Table, m.DncEntry.__table__)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return insert(table)  # pragma: no cover - only the two databases above are supported


async def _insert_rows(
    session: AsyncSession,
    campaign_id: int | None,
    entries: Sequence[tuple[str, bool]],
    *,
    reason: str,
    user_id: int | None,
    now: datetime,
) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for start in range(0, len(entries), CHUNK):
        rows = [
            {
                "campaign_id": campaign_id,
                "number": number,
                "prefix": prefix,
                "reason": reason[:256],
                "created_by": user_id,
                "created_at": now,
            }
            for number, prefix in entries[start : start + CHUNK]
        ]
        result = await session.execute(
            _insert(session).returning(m.DncEntry.__table__.c.id, m.DncEntry.__table__.c.number), rows
        )
        out.extend((int(row[0]), str(row[1])) for row in result)
    return out


async def do_add_dnc(
    session: AsyncSession,
    campaign_id: int | None,
    entries: Sequence[tuple[str, bool]],
    *,
    reason: str = "",
    user_id: int | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Insert ``(number, prefix)`` pairs into one list; those already on it are skipped (the
    unique indexes decide, so two concurrent uploads never list a number twice). Returns the
    new rows' ids; no checks, no audit (callers do both)."""
    rows = await _insert_rows(
        session, campaign_id, entries, reason=reason, user_id=user_id, now=now or datetime.now(UTC)
    )
    return [row_id for row_id, _ in rows]


async def _add(
    session: AsyncSession,
    campaign: m.Campaign | None,
    values: Iterable[tuple[int, str]],
    *,
    reason: str,
    who: Principal,
    keep_rows: bool,
) -> AddResult:
    result = AddResult()
    region = campaign.default_region if campaign else "RU"
    seen: set[str] = set()
    batch: list[tuple[str, bool]] = []

    async def flush() -> None:
        if not batch:
            return
        inserted = await _insert_rows(
            session,
            campaign.id if campaign else None,
            batch,
            reason=reason,
            user_id=who.id,
            now=datetime.now(UTC),
        )
        result.added_count += len(inserted)
        if len(inserted) < len(batch):
            stored = {number for _, number in inserted}
            for number, prefix in batch:
                if number not in stored:
                    result.duplicate(f"{number}*" if prefix else number)
        if keep_rows and inserted:
            ids = [row_id for row_id, _ in inserted]
            result.added.extend(
                await session.scalars(
                    select(m.DncEntry).where(m.DncEntry.id.in_(ids)).order_by(m.DncEntry.id)
                )
            )
        batch.clear()

    for chunk in _chunks(values, CHUNK):
        # Parsing is CPU work (phonenumbers, ~50 µs a number): a big file is parsed in a
        # worker thread, chunk by chunk, so the event loop keeps serving other requests.
        parsed = (
            await asyncio.to_thread(_parse_chunk, chunk, region)
            if len(chunk) > 50
            else _parse_chunk(chunk, region)
        )
        for line, text, outcome in parsed:
            if isinstance(outcome, InvalidInput):
                result.reject(line, text, outcome)
                continue
            number, prefix = outcome
            if number in seen:
                result.duplicate(f"{number}*" if prefix else number)
                continue
            seen.add(number)
            batch.append((number, prefix))
            if len(batch) >= CHUNK:
                await flush()
    await flush()
    return result


def _chunks(values: Iterable[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parse_chunk(
    chunk: Sequence[tuple[int, str]], region: str
) -> list[tuple[int, str, tuple[str, bool] | InvalidInput]]:
    out: list[tuple[int, str, tuple[str, bool] | InvalidInput]] = []
    for line, text in chunk:
        try:
            out.append((line, text, parse_entry(text, region)))
        except InvalidInput as exc:
            out.append((line, text, exc))
    return out


def _reason(reason: str) -> str:
    text = reason.strip()
    if len(text) > 256:
        raise InvalidInput("{field} must be at most {max_len} characters", max_len=256, field="reason")
    return text


async def check_add_dnc(
    session: AsyncSession,
    who: Principal,
    campaign_id: int | None,
    numbers: Sequence[str],
    *,
    reason: str = "",
    strict: bool = False,
) -> AddResult:
    """Add numbers and prefixes (``+7495*``) to the global list or a campaign's.

    ``strict`` (one number typed into a form or sent as ``number``): a bad value or one already
    on the list is refused with the reason (``InvalidInput`` on ``number``). Otherwise bad values
    and duplicates are skipped and counted. Audited as ``dnc.add``."""
    campaign = await access_dnc_list(session, who, campaign_id, manage=True)
    _check_global_write(who, campaign)
    reason = _reason(reason)
    if not numbers:
        raise InvalidInput("give at least one number", field="number")
    if len(numbers) > MAX_NUMBERS:
        raise InvalidInput(
            "at most {max_numbers} numbers at once; upload a file for more",
            max_numbers=MAX_NUMBERS,
            field="numbers",
        )
    result = await _add(
        session, campaign, enumerate(numbers, start=1), reason=reason, who=who, keep_rows=True
    )
    if strict:
        if result.invalid:
            raise result.invalid[0].error
        if result.duplicates:
            raise InvalidInput(
                "{number} is already on this do-not-call list", number=result.duplicates[0], field="number"
            )
    audit.record(
        session,
        who,
        "dnc.add",
        object_type="dnc_list",
        object_id=campaign.id if campaign else "global",
        data={
            "campaign_id": campaign.id if campaign else None,
            "numbers": [pattern_of(e) for e in result.added[:MAX_REJECTED_SHOWN]],
            "reason": reason,
            "added": result.added_count,
            "duplicates": result.duplicate_count,
            "invalid": result.invalid_count,
        },
    )
    return result


def _lines(data: bytes) -> Iterator[tuple[int, str]]:
    """Numbered non-blank lines of a CSV/TXT file in UTF-8 (with or without BOM) or, failing
    that, Windows-1251 (what Excel writes in Russia); a header line without digits is skipped."""
    try:
        text = codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1251", errors="replace")
    for n, raw in enumerate(text.splitlines(), start=1):
        value = parse_dnc_line(raw)
        if not value or value.startswith("#"):
            continue
        if n == 1 and not any(ch.isdigit() for ch in value):
            continue  # a header ("phone", "Телефон")
        yield n, value


async def check_upload_dnc(
    session: AsyncSession,
    who: Principal,
    campaign_id: int | None,
    data: bytes,
    *,
    filename: str = "",
    reason: str = "",
) -> AddResult:
    """Add every number of an uploaded CSV/TXT file (one per line, or the first column) to a
    list: bad lines are refused with their line number and reason, numbers already listed are
    counted as duplicates. One audit record (``dnc.upload``) with the counts."""
    campaign = await access_dnc_list(session, who, campaign_id, manage=True)
    _check_global_write(who, campaign)
    reason = _reason(reason) or f"upload {filename}".strip()
    if not data.strip():
        raise InvalidInput("the file is empty", field="file")
    if b"\x00" in data[:4096]:
        raise InvalidInput("'{name}' is not a text file", name=filename or "file", field="file")
    result = await _add(session, campaign, _lines(data), reason=reason[:256], who=who, keep_rows=False)
    audit.record(
        session,
        who,
        "dnc.upload",
        object_type="dnc_list",
        object_id=campaign.id if campaign else "global",
        data={
            "campaign_id": campaign.id if campaign else None,
            "filename": filename[:256],
            "added": result.added_count,
            "duplicates": result.duplicate_count,
            "invalid": result.invalid_count,
        },
    )
    return result


async def check_remove_dnc(session: AsyncSession, who: Principal, entry_id: int) -> m.DncEntry:
    """Take an entry off its list (audited as ``dnc.remove`` with what it was)."""
    entry = await access_dnc_entry(session, who, entry_id)
    campaign = await session.get(m.Campaign, entry.campaign_id) if entry.campaign_id else None
    _check_global_write(who, campaign)
    snapshot = dnc_dict(entry)
    await session.delete(entry)
    await session.flush()
    audit.record(session, who, "dnc.remove", object_type="dnc_entry", object_id=entry_id, data=snapshot)
    return entry
