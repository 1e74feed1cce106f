"""The campaign scheduler: picks the next attempts of running campaigns and hands them over.

One ``tick`` (any node; a per-node loop and a Celery beat task run it) goes through the running
campaigns, higher ``priority`` first, and for each one:

1. dates: today in the campaign's zone between ``starts_on`` and ``ends_on``;
2. who is free (``free_for_outbound``) and how many attempts the dial-mode policy wants
   (``policy.policy_for(mode).wanted(Load(...))``: free operators, open attempts,
   ``max_concurrency``); an operator taken by a higher campaign in this tick is not counted
   again; operators are locked (``operator_presence`` ``FOR UPDATE SKIP LOCKED``, as the
   router does) and re-checked, so two nodes never reserve one operator twice;
3. windows: the distinct zones of the campaign's pending targets (a loose index scan, few
   zones) are checked against the weekday schedule and holidays in each zone's wall time; a
   zone whose window is closed is not touched at all;
4. due targets of the open zones, oldest ``next_due_at`` first, claimed with
   ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; the same code runs on SQLite, where the database
   lock serialises writers), so two nodes never open two attempts for one target; a callback
   for one operator (``callback_user_id``) is only taken when that operator is free, and goes
   to them;
5. do-not-call, checked by the claim statement itself (``dnc.covers``, the rule ``find_dnc``
   and the import use, on the number the attempt would dial): a hit opens the attempt and
   closes it ``refused`` with the target ``dnc`` (on the record, no attempt used up);
6. the attempt is opened (``lifecycle.do_open_attempt``: target ``in_progress``, the operator
   reserved) with a caller ID from the campaign's pool (least recently used, a number of the
   customer's region first; ``last_used_at`` stamped);
7. after the commit: the pre-dial check (``predial``; concurrently, outside any transaction)
   and then the ``AttemptOrder`` goes to the adapter of the campaign's channel
   (``PlacesAttempts``). Preview attempts are not placed: the operator sees the card
   (``campaign.attempt_started``) and dials from the console. A refusal by the check or
   ``ChannelNotReady`` closes the attempt ``refused`` (the target pending again at its due
   time, or as the check said).

The choosing is one transaction with few round trips (on a busy machine each one costs more
than the work inside PostgreSQL): one read gives the running and paused campaigns with their
open attempts, the zones of their pending targets and whether a preview waits for its
operator; the housekeeping (campaigns past their end date finish, unanswered previews expire)
runs in the same transaction, its queries only when that read says there is something to do;
who is free is one statement (staff, load and waiting inbound joined), on PostgreSQL a column
of that read (read again only when the housekeeping may have freed operators). On PostgreSQL
the claim also carries the DNC check, the operators' re-check and the caller-ID pool, and the
opening writes the attempts, targets, events, caller-ID stamps and do-not-call refusals in one
statement: a steady tick is BEGIN, four statements and COMMIT. The node's loop runs its ticks on one held
connection (``omni.db.HeldConnection``): no pool checkout and pre-ping per pass.

A campaign whose channel has no attempt-placing adapter in this process (a Celery worker, a
node with voice off) is left to a node that has one, except preview campaigns, which need no
channel until the operator dials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from omni.aio import stop_tasks, wait_set
from omni.channels import AdapterRegistry, AttemptOrder, ChannelAuthFailed, ChannelNotReady, PlacesAttempts
from omni.db import Database, HeldConnection
from omni.db import models as m
from omni.db.models.outbound import CampaignChannel, CampaignState, DialMode, Outcome, TargetState
from omni.db.outbox import unflushed
from omni.domain.calendars import closed_days
from omni.domain.errors import InvalidInput
from omni.domain.outbound import campaigns as campaigns_service
from omni.domain.outbound import pacing, predial, preview
from omni.domain.outbound.dnc import covers
from omni.domain.outbound.free import free_column, free_for_outbound, free_rows, when
from omni.domain.outbound.lifecycle import (
    CLAIMED_COLUMNS,
    Attempt,
    Claimed,
    Opening,
    RowOpening,
    do_close_attempt,
    do_open_attempt,
    do_open_attempts,
    do_open_claimed,
)
from omni.domain.outbound.policy import Load as Demand
from omni.domain.outbound.policy import policy_for
from omni.domain.outbound.windows import Window, is_open, parse_windows

if TYPE_CHECKING:
    from omni.services import Services

__all__ = [
    "POLL_SECONDS",
    "Scheduler",
    "TickStats",
    "free_for_outbound",
    "lock_operators",
    "pick_caller_id",
    "tick",
]

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
"""How often a node's loop ticks when nothing wakes it (a freed operator wakes it at once)."""
MIN_GAP_SECONDS = 0.2
"""Ticks never follow each other closer than this, however many nudges arrive."""
CLAIM_ROUNDS = 5
"""Claims per campaign and tick when do-not-call hits leave operators without a target (the
import marks listed numbers `dnc` beforehand, so hits here are the rare late additions)."""
PREDIAL_CONCURRENCY = 16
SPARE_ROWS = 1
"""Rows a claim takes beyond the attempts wanted, for a do-not-call hit among them."""


@dataclass(slots=True)
class _Opened:
    """An attempt opened and committed, waiting for the pre-dial check and the channel."""

    order: AttemptOrder
    due_at: datetime | None
    predial: dict[str, Any] | None = None
    """url, timeout, policy and payload of the campaign's pre-dial check (``None``: none)."""
    place: bool = True
    """``False`` for preview: the operator dials from the console."""


@dataclass(slots=True)
class TickStats:
    """Where one tick's time went (bench/outbound_scheduler.py, logs)."""

    pick_seconds: float = 0.0
    """Choosing: campaigns, who is free, zones and windows, the claim, DNC, caller IDs."""
    open_seconds: float = 0.0
    """Opening the chosen attempts (``lifecycle.do_open_attempt``: rows and events)."""
    commit_seconds: float = 0.0
    hand_over_seconds: float = 0.0
    """Pre-dial checks and the channel's ``place`` after the commit."""
    opened: int = 0


@dataclass(slots=True)
class _Tick:
    now: datetime
    dialect: str = ""
    taken: set[int] = field(default_factory=set)
    """Operators reserved in this tick (a higher-priority campaign got them first)."""
    opened: list[_Opened] = field(default_factory=list)
    caller_ids: dict[int, int] = field(default_factory=dict)
    """Caller-ID numbers picked in this tick (rotation among equal ``last_used_at``)."""
    open_seconds: float = 0.0


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _needs_channel(campaign: m.Campaign) -> bool:
    return campaign.dial_mode != DialMode.PREVIEW or campaign.channel != CampaignChannel.VOICE


def _placer(adapters: AdapterRegistry | None, channel: str) -> PlacesAttempts | None:
    adapter: object = adapters.get(channel) if adapters is not None else None
    if adapter is None:
        return None
    return (
        cast(PlacesAttempts, adapter)
        if _places(type(adapter)) or isinstance(adapter, PlacesAttempts)
        else None
    )


_PLACES: dict[type, bool] = {}


def _places(kind: type) -> bool:
    """Whether adapters of this class place attempts (``PlacesAttempts``), asked once per class:
    a runtime protocol's ``isinstance`` inspects its members on every call, several times a
    tick (an instance given ``place`` of its own still passes ``isinstance`` in ``_placer``)."""
    known = _PLACES.get(kind)
    if known is None:
        known = _PLACES[kind] = callable(getattr(kind, "place", None))
    return known


# --- who is free ------------------------------------------------------------------------


def _in(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """``column IN (:name)`` for a list of ids: on PostgreSQL ``= ANY(:name)`` with one array
    parameter, so the statement's text (and asyncpg's prepared statement) is the same for any
    number of values and nothing is rendered per execution; SQLite expands the list."""
    if dialect == "postgresql":
        return cast("ColumnElement[bool]", column == any_(bindparam(name, type_=ARRAY(BigInteger))))
    return cast("ColumnElement[bool]", column.in_(bindparam(name, expanding=True)))


@cache
def _statement(name: str, dialect: str = "") -> Any:
    """The tick's fixed statements, built once and run with bound values: building and keying
    statements was a good part of a tick's CPU (bench/outbound_scheduler.py)."""
    A = m.CampaignAttempt
    if name == "counts":  # the same for one campaign (a preview campaign after the expiry)
        return select(func.count(), func.count(A.operator_id)).where(
            A.campaign_id == bindparam("campaign_id"), A.ended_at.is_(None)
        )
    if name == "lock":
        return (
            select(m.OperatorPresence.user_id)
            .where(_in(m.OperatorPresence.user_id, "ids", dialect))
            .with_for_update(skip_locked=True)
        )
    if name == "busy":
        return select(A.operator_id).where(_in(A.operator_id, "ids", dialect), A.ended_at.is_(None))
    raise KeyError(name)


_CAMPAIGN_ZONES = """(
    WITH RECURSIVE z(tz) AS (
        SELECT MIN(timezone) FROM campaign_targets
        WHERE campaign_id = campaigns.id AND state = 'pending'
        UNION ALL
        SELECT (SELECT MIN(t.timezone) FROM campaign_targets t
                WHERE t.campaign_id = campaigns.id AND t.state = 'pending' AND t.timezone > z.tz)
        FROM z WHERE z.tz IS NOT NULL
    )
    SELECT {agg} FROM z
)"""


@lru_cache(maxsize=2)
def _campaigns_statement(dialect: str) -> Any:
    """Running and paused campaigns (a paused one may be past its end date: housekeeping
    finishes it), higher priority first, each with its open attempts, those holding an
    operator, and the distinct zones of its pending targets (``_ZONES``' loose index scan,
    comma-joined), in one read: a round trip per campaign and question was most of a tick on
    a busy machine."""
    A = m.CampaignAttempt
    C = aliased(m.Campaign)
    open_ = A.campaign_id == m.Campaign.id, A.ended_at.is_(None)
    agg = "string_agg(tz, ',')" if dialect == "postgresql" else "group_concat(tz, ',')"
    return (
        select(
            m.Campaign,
            select(func.count()).where(*open_).scalar_subquery(),
            select(func.count(A.operator_id)).where(*open_).scalar_subquery(),
            literal_column(_CAMPAIGN_ZONES.format(agg=agg)),
            # Whether any preview waits for its operator (the expiry's query runs only then).
            select(A.id)
            .join(C, C.id == A.campaign_id)
            .where(
                A.ended_at.is_(None),
                A.started_at.is_(None),
                A.operator_id.is_not(None),
                C.dial_mode == DialMode.PREVIEW,
            )
            .exists(),
            *([free_column()] if dialect == "postgresql" else []),
        )
        # Not ``in_``: an expanding parameter is rendered into the statement on every run.
        .where(or_(m.Campaign.state == CampaignState.RUNNING, m.Campaign.state == CampaignState.PAUSED))
        .order_by(m.Campaign.priority.desc(), m.Campaign.id)
    )


async def _lock_operators(session: AsyncSession, user_ids: Sequence[int], dialect: str) -> list[int]:
    """The operators this tick may reserve: their presence rows locked (``SKIP LOCKED``: one
    another node or the router is deciding about is left to it), then re-checked for an open
    attempt another node committed since they were found free. Order is kept.

    On PostgreSQL the re-check rides on the claim (``_claim``'s ``busy``), the next statement:
    it must read a snapshot taken after the lock, which the lock's own statement would not."""
    if not user_ids:
        return []
    conn = await session.connection()  # Core rows: the session's ORM layer has nothing to add
    locked = set((await conn.execute(_statement("lock", dialect), {"ids": list(user_ids)})).scalars())
    if dialect == "postgresql":
        return [uid for uid in user_ids if uid in locked]
    busy = (
        set((await conn.execute(_statement("busy", dialect), {"ids": list(locked)})).scalars())
        if locked
        else set()
    )
    return [uid for uid in user_ids if uid in locked and uid not in busy]


async def lock_operators(session: AsyncSession, user_ids: Sequence[int]) -> list[int]:
    """``_lock_operators`` for a claim outside a tick (a predictive call answered): with no
    claim statement to carry it, the re-check for an open attempt is its own statement on every
    database."""
    if not user_ids:
        return []
    dialect = session.get_bind().dialect.name
    conn = await session.connection()
    locked = set((await conn.execute(_statement("lock", dialect), {"ids": list(user_ids)})).scalars())
    if not locked:
        return []
    busy = set((await conn.execute(_statement("busy", dialect), {"ids": list(locked)})).scalars())
    return [uid for uid in user_ids if uid in locked and uid not in busy]


# --- caller IDs -------------------------------------------------------------------------


async def _caller_pool(session: AsyncSession, campaign_id: int) -> list[m.CampaignCallerId]:
    """The campaign's active caller IDs, locked (``SKIP LOCKED``) so two nodes stamping at once
    take different numbers; when another node holds them all, read unlocked and share."""
    values = {"campaign_id": campaign_id}
    rows = list(await session.scalars(_pool_statement(True), values))
    return rows or list(await session.scalars(_pool_statement(False), values))


@lru_cache(maxsize=2)
def _pool_statement(lock: bool) -> Any:
    stmt = select(m.CampaignCallerId).where(
        m.CampaignCallerId.campaign_id == bindparam("campaign_id"), m.CampaignCallerId.active.is_(True)
    )
    return stmt.with_for_update(skip_locked=True) if lock else stmt


_NEVER = datetime.min.replace(tzinfo=UTC)


class _Caller(NamedTuple):
    """A caller-ID pool row as the claim brings it (``_pool_column``): what ``_rotate`` reads."""

    id: int
    number: str
    region: str
    last_used_at: datetime | None


def _rotate(pool: Sequence[_Caller | m.CampaignCallerId], region: str, used: dict[int, int]) -> str:
    """The number to use (``used`` counts this tick's picks; the caller stamps them): one of
    the customer's ``region`` first, then the fewest picks in this tick, the least recently
    used, the lowest id."""
    if not pool:
        return ""
    best: _Caller | m.CampaignCallerId | None = None
    best_key: tuple[int, int, datetime, int] | None = None
    for r in pool:
        key = (0 if region and r.region == region else 1, used.get(r.id, 0), r.last_used_at or _NEVER, r.id)
        if best_key is None or key < best_key:
            best, best_key = r, key
    assert best is not None
    used[best.id] = used.get(best.id, 0) + 1
    return best.number


async def _stamp(session: AsyncSession, used: dict[int, int], now: datetime) -> None:
    """``last_used_at`` of every number picked, in one statement."""
    if used:
        # A plain (Core) UPDATE on the connection: the rows loaded in this session are not
        # read again, and the ORM's bulk-update machinery is not involved.
        statement = _stamp_statement(session.get_bind().dialect.name)
        await (await session.connection()).execute(statement, {"ids": sorted(used), "now": now})


@lru_cache(maxsize=2)
def _stamp_statement(dialect: str) -> Any:
    table = cast(Table, m.CampaignCallerId.__table__)
    return update(table).where(_in(table.c.id, "ids", dialect)).values(last_used_at=bindparam("now"))


async def pick_caller_id(
    session: AsyncSession, campaign_id: int, region: str, now: datetime, used: dict[int, int] | None = None
) -> str:
    """The pool's least recently used active number, one of the customer's ``region`` first;
    its ``last_used_at`` is stamped. Empty when the pool is empty (the trunk's own number).

    ``used`` (number id → times picked in this tick) keeps the rotation within one tick, whose
    stamps all carry the same ``now``."""
    counts = dict(used or {})
    before = dict(counts)
    number = _rotate(await _caller_pool(session, campaign_id), region, counts)
    picked = {k: n for k, n in counts.items() if before.get(k) != n}
    await _stamp(session, picked, now)
    if used is not None:
        used.update(counts)
    return number


# --- claiming ---------------------------------------------------------------------------

_ZONES = text(
    """
    WITH RECURSIVE z(tz) AS (
        SELECT MIN(timezone) FROM campaign_targets WHERE campaign_id = :c AND state = :s
        UNION ALL
        SELECT (SELECT MIN(t.timezone) FROM campaign_targets t
                WHERE t.campaign_id = :c AND t.state = :s AND t.timezone > z.tz)
        FROM z WHERE z.tz IS NOT NULL
    )
    SELECT tz FROM z WHERE tz IS NOT NULL
    """
)
"""The distinct zones of a campaign's pending targets: one index seek per zone
(``ix_campaign_targets_zone_due``), not a scan of a million rows."""


async def _zones(session: AsyncSession, campaign_id: int) -> list[str]:
    return [str(z) for z in await session.scalars(_ZONES, {"c": campaign_id, "s": TargetState.PENDING})]


async def _open_zones(
    session: AsyncSession,
    campaign: m.Campaign,
    days: dict[int, list[Window]],
    zones: list[str],
    now: datetime,
) -> list[str]:
    """The zones whose wall clock is inside the calling windows now, and not on a day off: the
    campaign's own ``holidays`` or a day of a holiday calendar it follows (``calendar_ids``)."""
    closed: Container[str] = campaign.holidays or []
    if campaign.calendar_ids:
        closed = await closed_days(session, campaign.calendar_ids, campaign.holidays or [])
    out = []
    for name in zones:
        tz = _zone(name or campaign.timezone)
        if tz is None:
            log.warning("campaign %s: targets with unknown time zone %r are not called", campaign.id, name)
            continue
        if is_open(days, closed, now.astimezone(tz)):
            out.append(name)
    return out


def _dialed(T: Any, dialect: str) -> ColumnElement[str]:
    """The number a target's next attempt dials, in SQL (``lifecycle.do_open_attempt``'s
    choice: ``phones[phone_index % len(phones)]``, ``phone`` when the list is empty)."""
    count = func.nullif(func.json_array_length(T.phones), 0)
    if dialect == "postgresql":
        picked: Any = T.phones.op("->>", return_type=String)(T.phone_index % count)
    else:
        picked = func.json_extract(T.phones, func.printf("$[%d]", T.phone_index % count))
    return cast("ColumnElement[str]", func.coalesce(picked, T.phone, type_=String))


@lru_cache(maxsize=64)
def _claim_statement(zones: int, callbacks_for: bool, dialect: str, with_pool: bool = False) -> Any:
    """The claim for ``zones`` open zones, built once and reused with bound values (building
    and keying a statement of several subqueries costs more than running it). Each row comes
    with whether do-not-call forbids the number it would dial (``dnc.covers``, global or the
    campaign's list): one statement instead of a claim and a lookup. ``with_pool`` (PostgreSQL):
    the rows also carry the campaign's caller-ID pool (``_pool_column``: ``_caller_pool``'s read and
    lock), one round trip fewer."""
    T = m.CampaignTarget

    def due(i: int) -> list[Any]:
        cond: list[Any] = [
            T.campaign_id == bindparam("campaign_id"),
            T.state == bindparam("pending"),
            T.timezone == bindparam(f"zone_{i}"),
            T.next_due_at <= bindparam("now"),
        ]
        if callbacks_for:
            cond.append(or_(T.callback_user_id.is_(None), _in(T.callback_user_id, "operators", dialect)))
        return cond

    limit = bindparam("limit", type_=Integer)
    if zones == 1:
        stmt = select(T).where(*due(0)).order_by(T.next_due_at, T.id).limit(limit)
    else:
        # The oldest ``limit`` of each open zone (each an index range scan), merged; the rows
        # are locked by the same statement (the subquery's rows are not locked, only these).
        # Candidates beyond ``limit`` (``spare``): rows another node holds are skipped by the
        # lock below, and the claim still fills up from the next ones.
        spare = bindparam("spare", type_=Integer)
        parts = [
            select(T.id, T.next_due_at).where(*due(i)).order_by(T.next_due_at, T.id).limit(spare).subquery()
            for i in range(zones)
        ]
        merged = union_all(*(select(p.c.id, p.c.next_due_at) for p in parts)).subquery()
        ids = select(merged.c.id).order_by(merged.c.next_due_at, merged.c.id).limit(spare)
        stmt = (
            select(T)
            .where(T.id.in_(ids), T.state == bindparam("pending"), T.next_due_at <= bindparam("now"))
            .order_by(T.next_due_at, T.id)
            .limit(limit)
        )
    # The DNC check on the claimed rows only, outside the locking subquery: computed on the
    # candidates (up to ``spare``, 15 index keys each) it cost more than the claim itself.
    claimed = aliased(T, stmt.with_for_update(skip_locked=True, of=T).subquery("claimed"))
    entry = aliased(m.DncEntry)
    columns: list[Any] = [
        *(getattr(claimed, name) for name in CLAIMED_COLUMNS),
        select(entry.id).where(covers(entry, _dialed(claimed, dialect), claimed.campaign_id)).exists(),
    ]
    if callbacks_for and dialect == "postgresql":
        # ``_lock_operators``' re-check: which of the locked operators hold an open attempt
        # (another node's, committed since they were found free), the same on every row.
        A = m.CampaignAttempt
        columns.append(
            select(func.array_agg(A.operator_id))
            .where(_in(A.operator_id, "operators", dialect), A.ended_at.is_(None))
            .scalar_subquery()
            .label("busy")
        )
    if with_pool and dialect == "postgresql":
        columns.append(_pool_column().label("pool"))
    return select(*columns).order_by(claimed.next_due_at, claimed.id)


@cache
def _pool_column() -> Any:
    """``_caller_pool`` as a column of the claim: the campaign's active caller IDs, those no
    other node holds locked by this statement; when another node holds them all, all of them
    read unlocked and shared (``NULL``: an empty pool). Uncorrelated, so PostgreSQL computes it
    once per claim (an InitPlan), and only when the claim returns a row."""
    C = m.CampaignCallerId
    mine = (C.campaign_id == bindparam("campaign_id"), C.active.is_(True))
    locked = select(C.id, C.number, C.region, C.last_used_at).where(*mine).with_for_update(skip_locked=True)
    c = locked.subquery("c")
    shared = select(func.json_agg(func.json_build_array(C.id, C.number, C.region, C.last_used_at))).where(
        *mine
    )
    return func.coalesce(
        select(
            func.json_agg(func.json_build_array(c.c.id, c.c.number, c.c.region, c.c.last_used_at))
        ).scalar_subquery(),
        shared.scalar_subquery(),
        type_=JSON,
    )


async def _claim(
    session: AsyncSession,
    campaign: m.Campaign,
    zones: list[str],
    now: datetime,
    limit: int,
    operators: list[int] | None,
    dialect: str,
    with_pool: bool = False,
) -> tuple[list[tuple[Claimed, bool]], set[int], list[_Caller] | None]:
    """Lock up to ``limit`` due pending targets of the open ``zones``, oldest due first, each
    with whether a do-not-call entry forbids the number it would dial; which of ``operators``
    hold an open attempt after all (PostgreSQL: ``_lock_operators``' re-check); and with
    ``with_pool`` on PostgreSQL the campaign's caller-ID pool as ``_caller_pool`` reads it
    (``None``: not read, the caller reads it when it needs it).

    ``operators``: callbacks for one operator are eligible only if they are in it (``None``:
    nobody is reserved, e.g. a broadcast; callbacks go to anyone)."""
    values: dict[str, Any] = {
        "campaign_id": campaign.id,
        "pending": str(TargetState.PENDING),
        "now": now,
        "limit": limit,
        "spare": limit * 2 + 16,
        **{f"zone_{i}": zone for i, zone in enumerate(zones)},
    }
    if operators is not None:
        values["operators"] = list(operators)
    with_pool = with_pool and dialect == "postgresql"
    stmt = _claim_statement(len(zones), operators is not None, dialect, with_pool)
    if unflushed(session):
        await session.flush()  # the claim reads on the connection: no autoflush there
    # Plain rows on the session's connection: no ORM objects to build, identity-map or expire.
    rows = (await (await session.connection()).execute(stmt, values)).all()
    first = rows[0]._mapping if rows else {}
    busy = set(first.get("busy") or ())
    pool = (
        [_Caller(i, n, r, when(u)) for i, n, r, u in first.get("pool") or ()] if with_pool and rows else None
    )
    width = len(CLAIMED_COLUMNS)
    return [(Claimed(*row[:width]), bool(row[width])) for row in rows], busy, pool


def _order(
    campaign: m.Campaign, target: Claimed | m.CampaignTarget, attempt: Attempt | m.CampaignAttempt
) -> AttemptOrder:
    variables: dict[str, Any] = {
        **{str(k): v for k, v in (target.fields or {}).items()},
        "name": target.name,
        "campaign_id": campaign.id,
        "target_id": target.id,
        "attempt_id": attempt.id,
    }
    return AttemptOrder(
        attempt_id=attempt.id,
        campaign_id=campaign.id,
        target_id=target.id,
        channel=campaign.channel,
        dial_mode=campaign.dial_mode,
        phone=attempt.phone,
        caller_id=attempt.caller_id,
        inbox_id=campaign.inbox_id,
        queue_id=campaign.queue_id,
        operator_id=attempt.operator_id,
        ring_seconds=campaign.ring_seconds,
        # Empty: the broadcast renders the campaign's template for the target itself
        # (``broadcast.do_place_broadcast``), so the engine never sends a raw template.
        text="",
        variables=variables,
    )


def _predial(
    campaign: m.Campaign, target: Claimed | m.CampaignTarget, attempt: Attempt | m.CampaignAttempt
) -> dict[str, Any] | None:
    if not campaign.predial_url:
        return None
    return {
        "url": campaign.predial_url,
        "timeout_ms": campaign.predial_timeout_ms,
        "on_timeout": campaign.predial_on_timeout,
        "campaign_id": campaign.id,
        "campaign_name": campaign.name,
        "payload": {
            "campaign": campaign.id,
            "campaign_name": campaign.name,
            "phone": attempt.phone,
            "target_id": target.id,
            "name": target.name,
            "fields": dict(target.fields or {}),
            "tags": list(target.tags or []),
            "attempt": attempt.number,
        },
    }


async def _campaign_pass(
    session: AsyncSession,
    campaign: m.Campaign,
    st: _Tick,
    open_attempts: int,
    reserved: int,
    pending_zones: list[str],
    free_read: list[Sequence[Any]] | None = None,
) -> None:
    """Open this campaign's attempts for this tick (inside the tick's transaction).

    ``open_attempts``: the campaign's open attempts; ``reserved``: those holding an operator;
    ``pending_zones``: the distinct zones of its pending targets; ``free_read``: who is free
    as the campaigns read brought it (``free_for_outbound``'s ``read``)."""
    now = st.now
    policy = policy_for(campaign.dial_mode)
    home = _zone(campaign.timezone)
    if policy is None or home is None:
        return
    today = now.astimezone(home).date()
    if (campaign.starts_on and today < campaign.starts_on) or (campaign.ends_on and today > campaign.ends_on):
        return
    try:
        days = parse_windows(campaign.schedule or {})
    except InvalidInput as exc:
        log.warning(
            "campaign %s has an unreadable schedule (%s): nothing is called", campaign.id, exc.message
        )
        return
    broadcast = campaign.channel != CampaignChannel.VOICE
    operators: list[int] | None = None
    if broadcast:
        # A broadcast reserves no operator: only the campaign's concurrency bounds it.
        wanted = max(0, campaign.max_concurrency - open_attempts)
    elif not policy.reserves_operator:
        # Predictive and agentless reserve nobody: an answered call takes whoever is free then
        # (predictive) or runs the campaign's voice scenario (agentless).
        free_now = 0
        if campaign.dial_mode != DialMode.AGENTLESS:
            free = await free_for_outbound(session, campaign, read=free_read)
            free = [uid for uid in free if uid not in st.taken]
            if campaign.dial_mode == DialMode.PREDICTIVE and free:
                open_attempts += await _predictive_callbacks(session, campaign, st, days, pending_zones, free,
                                                             open_attempts)  # fmt: skip
                free = [uid for uid in free if uid not in st.taken]
            free_now = len(free)
        load = await pacing.measured_load(
            session, campaign, free_operators=free_now, open_attempts=open_attempts, now=now
        )
        wanted = policy.wanted(load)
    else:
        free = [
            uid for uid in await free_for_outbound(session, campaign, read=free_read) if uid not in st.taken
        ]
        if not free:
            return
        # The policy counts operators busy with this campaign's open attempts among its own
        # (``free - open``); ``free_for_outbound`` already left them out.
        wanted = policy.wanted(Demand(len(free) + reserved, open_attempts, campaign.max_concurrency))
        if wanted <= 0:
            return
        operators = await _lock_operators(session, free[: wanted * 2 + 8], st.dialect)
        wanted = min(wanted, len(operators))
    if wanted <= 0:
        return
    zones = await _open_zones(session, campaign, days, pending_zones, now)
    if not zones:
        return
    pool: Sequence[_Caller | m.CampaignCallerId] | None = None
    for _round in range(CLAIM_ROUNDS):
        if wanted <= 0 or (operators is not None and not operators):
            return
        # Predictive: a callback for one operator is never dialled with nobody reserved
        # (``_predictive_callbacks`` places it for that operator): ``[]`` leaves them out.
        eligible = (
            operators if operators is not None else [] if campaign.dial_mode == DialMode.PREDICTIVE else None
        )
        # One row more than wanted: a do-not-call hit among the oldest is refused on the record
        # without a second claim (a round trip and an opening statement); the spare row is
        # used only then, else left as it was (its lock ends with the transaction).
        claimed, busy, read = await _claim(
            session,
            campaign,
            zones,
            now,
            wanted + SPARE_ROWS,
            eligible,
            st.dialect,
            with_pool=pool is None and not broadcast,
        )
        if not claimed:
            return
        if read is not None:
            pool = read
        if busy and operators is not None:
            operators = [uid for uid in operators if uid not in busy]
        claimed = _wanted_rows(claimed, wanted)
        # Callbacks first, to their operator; the others to the longest idle in order.
        claimed.sort(key=lambda c: c[0].callback_user_id is None)
        batch: list[RowOpening] = []
        for target, listed in claimed:
            operator_id: int | None = None
            if operators is not None:
                if target.callback_user_id is not None:
                    if target.callback_user_id not in operators:
                        continue
                    operator_id = target.callback_user_id
                elif operators:
                    operator_id = operators[0]
                else:
                    continue
            if listed:
                # Opened and closed refused on the record by the same opening statement.
                batch.append(RowOpening(target, "", None, campaign.channel, campaign.queue_id, dnc=True))
                continue
            caller_id = ""
            if not broadcast:
                if pool is None:
                    pool = await _caller_pool(session, campaign.id)
                caller_id = _rotate(pool, target.region, st.caller_ids)
            if operator_id is not None and operators is not None:
                operators.remove(operator_id)
                st.taken.add(operator_id)
            batch.append(RowOpening(target, caller_id, operator_id, campaign.channel, campaign.queue_id))
            wanted -= 1
        if not batch:
            continue
        started = time.perf_counter()
        attempts = await do_open_claimed(session, batch, now=now)
        st.open_seconds += time.perf_counter() - started
        for opening, attempt in zip(batch, attempts, strict=True):
            if opening.dnc:
                continue
            st.opened.append(
                _Opened(
                    _order(campaign, opening.target, attempt),
                    opening.target.next_due_at,
                    predial=_predial(campaign, opening.target, attempt),
                    place=campaign.dial_mode != DialMode.PREVIEW,
                )
            )


def _wanted_rows(claimed: list[tuple[Claimed, bool]], wanted: int) -> list[tuple[Claimed, bool]]:
    """The oldest claimed rows up to ``wanted`` that are not do-not-call hits, with the hits
    among them (``claimed`` is in due order): what a claim of ``wanted`` rows, and a next one
    for each hit, would have taken."""
    kept: list[tuple[Claimed, bool]] = []
    for row in claimed:
        if wanted <= 0:
            break
        kept.append(row)
        if not row[1]:
            wanted -= 1
    return kept


async def _predictive_callbacks(
    session: AsyncSession,
    campaign: m.Campaign,
    st: _Tick,
    days: dict[int, list[Window]],
    pending_zones: list[str],
    free: list[int],
    open_attempts: int,
) -> int:
    """A predictive campaign's due callbacks for one operator (``callback_user_id``), placed
    as progressive places them: only while that operator is free, with the operator reserved
    on the attempt (the voice adapter then rings them when the customer answers, no claim, no
    drop). The predictive claim leaves these targets out, so such a callback was never dialled
    with nobody reserved and handed to whoever was free. Returns the attempts opened."""
    room = max(0, campaign.max_concurrency - open_attempts)
    if not room:
        return 0
    T = m.CampaignTarget
    now = st.now
    due = (
        T.campaign_id == campaign.id,
        T.state == TargetState.PENDING,
        T.next_due_at <= now,
        T.callback_user_id.in_(free),
    )
    wanting = set((await session.scalars(select(T.callback_user_id).where(*due).distinct())).all())
    if not wanting:
        return 0
    zones = await _open_zones(session, campaign, days, pending_zones, now)
    operators = await lock_operators(session, [uid for uid in free if uid in wanting])
    if not zones or not operators:
        return 0
    picked = (
        select(T)
        .where(*due[:3], T.callback_user_id.in_(operators), T.timezone.in_(zones))
        .order_by(T.next_due_at, T.id)
        .limit(len(operators) * 4)
        .with_for_update(skip_locked=True, of=T)
        .subquery("callbacks")
    )
    claimed = aliased(T, picked)
    entry = aliased(m.DncEntry)
    listed = select(entry.id).where(covers(entry, _dialed(claimed, st.dialect), claimed.campaign_id)).exists()
    rows = (
        await session.execute(
            select(claimed, listed)
            .order_by(claimed.next_due_at, claimed.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    batch: list[Opening] = []
    pool: list[m.CampaignCallerId] | None = None
    for target, forbidden in rows:
        operator_id = target.callback_user_id
        if operator_id is None or operator_id in st.taken or len(batch) >= room:
            continue
        if forbidden:
            attempt = await do_open_attempt(session, target, now=now)
            await do_close_attempt(
                session, attempt, Outcome.REFUSED, cause="dnc", now=now, refused_state=TargetState.DNC
            )
            continue
        if pool is None:
            pool = await _caller_pool(session, campaign.id)
        st.taken.add(operator_id)
        batch.append(Opening(target, _rotate(pool, target.region, st.caller_ids), operator_id))
    if not batch:
        return 0
    dues = [o.target.next_due_at for o in batch]
    attempts = await do_open_attempts(session, batch, now=now)
    for opening, attempt, due_at in zip(batch, attempts, dues, strict=True):
        st.opened.append(
            _Opened(
                _order(campaign, opening.target, attempt),
                due_at,
                predial=_predial(campaign, opening.target, attempt),
                place=True,
            )
        )
    return len(batch)


# --- after the commit -------------------------------------------------------------------


async def _ask_all(
    opened: list[_Opened], now: datetime, client: httpx.AsyncClient | None
) -> list[predial.Verdict]:
    checks = [o for o in opened if o.predial is not None]
    if not checks:
        return [predial.Verdict(predial.CALL) for _ in opened]
    gate = asyncio.Semaphore(PREDIAL_CONCURRENCY)

    async def one(o: _Opened, http: httpx.AsyncClient) -> predial.Verdict:
        if o.predial is None:
            return predial.Verdict(predial.CALL)
        async with gate:
            return await predial.ask(http, now=now, **o.predial)

    if client is not None:
        return list(await asyncio.gather(*(one(o, client) for o in opened)))
    async with httpx.AsyncClient() as http:
        return list(await asyncio.gather(*(one(o, http) for o in opened)))


async def _refuse(
    db: Database, attempt_id: int, verdict: predial.Verdict | None, due_at: datetime | None, now: datetime
) -> None:
    """Close an attempt that was not placed: by the pre-dial check (``verdict``) or because
    the channel could not take it (``None``: pending again at its old due time)."""
    async with db.transaction() as session:
        attempt = await session.get(m.CampaignAttempt, attempt_id)
        if attempt is None or attempt.ended_at is not None:
            return
        if verdict is None:
            target = await do_close_attempt(
                session,
                attempt,
                Outcome.REFUSED,
                cause="channel_not_ready",
                now=now,
                refused_state=TargetState.PENDING,
            )
            target.next_due_at = due_at or now
        elif verdict.action == predial.DONT_CALL:
            await do_close_attempt(
                session, attempt, Outcome.REFUSED, cause=verdict.cause, now=now, refused_state=TargetState.DNC
            )
        elif verdict.action == predial.SKIP:
            await do_close_attempt(session, attempt, Outcome.SKIPPED, cause=verdict.cause, now=now)
        else:
            target = await do_close_attempt(
                session,
                attempt,
                Outcome.REFUSED,
                cause=verdict.cause,
                now=now,
                refused_state=TargetState.PENDING,
            )
            target.next_due_at = verdict.at or now


async def _hand_over(
    db: Database, adapters: AdapterRegistry | None, st: _Tick, client: httpx.AsyncClient | None
) -> int:
    verdicts = await _ask_all(st.opened, st.now, client)
    handed = 0
    for opened, verdict in zip(st.opened, verdicts, strict=True):
        order = opened.order
        if verdict.action != predial.CALL:
            await _refuse(db, order.attempt_id, verdict, opened.due_at, st.now)
            continue
        if not opened.place:
            handed += 1
            continue
        placer = _placer(adapters, order.channel)
        try:
            if placer is None:
                raise ChannelNotReady(f"no {order.channel} adapter places attempts on this node")
            await placer.place(order)
        except ChannelNotReady as exc:
            log.warning("campaign %s attempt %s not placed: %s", order.campaign_id, order.attempt_id, exc)
            await _refuse(db, order.attempt_id, None, opened.due_at, st.now)
            continue
        except ChannelAuthFailed as exc:
            log.error(
                "campaign %s: the %s channel's configuration is wrong: %s",
                order.campaign_id,
                order.channel,
                exc,
            )
            await _refuse(db, order.attempt_id, None, opened.due_at, st.now)
            continue
        except Exception:
            log.exception(
                "campaign %s attempt %s: the %s adapter failed",
                order.campaign_id,
                order.attempt_id,
                order.channel,
            )
            await _refuse(db, order.attempt_id, None, opened.due_at, st.now)
            continue
        handed += 1
    return handed


def _past_end(campaign: m.Campaign, now: datetime) -> bool:
    """Whether the campaign's end date has passed in its own zone (``do_finish_expired``'s rule)."""
    if campaign.ends_on is None:
        return False
    home = _zone(campaign.timezone)
    return (now.astimezone(home).date() if home is not None else now.date()) > campaign.ends_on


async def _housekeeping(
    session: AsyncSession,
    adapters: AdapterRegistry | None,
    campaigns: Sequence[m.Campaign],
    now: datetime,
    *,
    previews: bool,
) -> list[AttemptOrder]:
    """What each pass does before choosing, in the tick's transaction: campaigns past their end
    date finish (``campaigns`` are the running and paused ones the tick read, so the finishing
    query only runs when one of them is due), and previews nobody answered in time are dialed
    (auto-dial campaigns: the orders returned are placed after the commit) or put back for the
    next operator. A node without channel adapters (a Celery worker) leaves previews to the
    nodes that can dial. ``previews``: whether any preview waits for its operator (read with
    the campaigns; without one the expiry's query is skipped)."""
    if any(_past_end(c, now) for c in campaigns):
        await campaigns_service.do_finish_expired(session, now)
    return await preview.do_expire_previews(session, now) if adapters is not None and previews else []


async def _choose(session: AsyncSession, adapters: AdapterRegistry | None, st: _Tick) -> list[AttemptOrder]:
    """The tick's transaction: housekeeping, then each running campaign's pass; returns the
    expired previews' orders to place after the commit."""
    st.dialect = session.get_bind().dialect.name
    statement = _campaigns_statement(st.dialect)
    rows = (await session.execute(statement)).all()
    # No row: the flag is unknown, and a finished campaign may still show a preview.
    previews = bool(rows[0][4]) if rows else True
    campaigns = [row[0] for row in rows]
    # Who is free came with the campaigns (PostgreSQL) — unless the housekeeping may have
    # freed operators since (an expired preview, a finished campaign): then it is read again.
    fresh = not previews and not any(_past_end(c, st.now) for c in campaigns)
    expired = await _housekeeping(session, adapters, campaigns, st.now, previews=previews)
    for campaign, open_attempts, reserved, zones, _, *free in rows:
        if campaign.state != CampaignState.RUNNING:
            continue
        if _needs_channel(campaign) and _placer(adapters, campaign.channel) is None:
            continue
        pending_zones = zones.split(",") if zones is not None else []
        if campaign.dial_mode == DialMode.PREVIEW:
            # The expiry may have closed some of its previews (operators and targets back)
            # since the campaigns were read.
            counts = (await session.execute(_statement("counts"), {"campaign_id": campaign.id})).one()
            open_attempts, reserved = counts
            pending_zones = await _zones(session, campaign.id)
        read = free_rows(free[0]) if fresh and free and free[0] is not None else None
        await _campaign_pass(session, campaign, st, int(open_attempts), int(reserved), pending_zones, read)
    return expired


async def tick(
    services_or_db: Services | Database,
    now: datetime | None = None,
    *,
    adapters: AdapterRegistry | None = None,
    http: httpx.AsyncClient | None = None,
    stats: TickStats | None = None,
    held: HeldConnection | None = None,
) -> int:
    """One scheduling pass over every running campaign; returns the attempts that went ahead
    (placed on their channel, or shown to the operator in preview).

    ``now`` pins the clock (tests, the bench); ``adapters`` defaults to the services' registry
    (a bare ``Database``, as in a Celery worker, has none: see the module's note);
    ``http`` is the client for pre-dial checks (one per tick by default); ``stats``, when
    given, is filled with where the time went; ``held``: the connection a loop keeps across its
    passes (``Scheduler``: no pool checkout and ping per pass); a pass that finds it lost (a
    PostgreSQL restart since the last one) runs again at once on a fresh one."""
    if isinstance(services_or_db, Database):
        db = services_or_db
    else:
        db = services_or_db.db
        adapters = adapters if adapters is not None else services_or_db.adapters
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("tick() needs an aware `now`: customer windows are compared in their zones")
    while True:
        st = _Tick(now)
        began = time.perf_counter()
        try:
            async with db.transaction() if held is None else held.transaction() as session:
                expired = await _choose(session, adapters, st)
                chosen = time.perf_counter()
        except Exception as exc:
            if held is None or not held.lost(exc):
                raise
            log.warning("outbound scheduler: its connection was lost (%s); the pass runs again", exc)
            continue
        break
    committed = time.perf_counter()
    if expired and adapters is not None:
        await preview.place_orders(db, adapters, expired)
    handed = await _hand_over(db, adapters, st, http) if st.opened else 0
    if stats is not None:
        stats.open_seconds = st.open_seconds
        stats.pick_seconds = chosen - began - st.open_seconds
        stats.commit_seconds = committed - chosen
        stats.hand_over_seconds = time.perf_counter() - committed
        stats.opened = handed
    return handed


# --- the per-node loop ------------------------------------------------------------------


STOP_WAIT_SECONDS = 10.0
"""How long a stopping node lets a running pass finish before cutting it."""


@dataclass
class Scheduler:
    """A node's scheduler loop: a tick every ``poll_seconds``, and at once (but never closer
    than ``MIN_GAP_SECONDS``) when nudged — by the bus's ``routing`` hints, which every change
    that frees an operator raises (a presence change, a conversation closed or wrapped up), and
    by the ``outbound`` topic. Every node runs one; the row locks keep them apart."""

    services: Services
    poll_seconds: float = POLL_SECONDS
    passes: int = 0
    """Ticks run so far (tests wait for the first one before they nudge)."""
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while no pass runs: ``stop`` waits for it so a pass is never cancelled halfway
    through its transaction (a cancelled asyncpg query can hold the rollback, and the node's
    shutdown, for as long as the query takes)."""
    _stopping: bool = False
    _held: HeldConnection | None = None
    """The connection the passes run on (``tick``'s ``held``), taken at the first pass."""

    def nudge(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self.services.bus.subscribe("routing", lambda _data: self.nudge())
        self.services.bus.subscribe("outbound", lambda _data: self.nudge())
        self._held = HeldConnection(self.services.db, generic_plans=True)
        self._task = asyncio.create_task(self._run(), name="outbound-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True  # no new pass starts
            await wait_set(self._idle, STOP_WAIT_SECONDS)  # a pass stuck longer than this is cut
            await stop_tasks(self._task)
            self._task = None
        if self._held is not None:
            # Back to the pool; a server gone or hung must not hold the node's shutdown.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._held.close(), timeout=STOP_WAIT_SECONDS)
            self._held = None

    async def _run(self) -> None:
        self._idle.set()
        while not self._stopping:
            self._wake.clear()
            self._idle.clear()
            try:
                opened = await tick(self.services, held=self._held)
                if opened:
                    log.debug("outbound scheduler: %d attempts", opened)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbound scheduler pass failed; retrying on the next tick")
            finally:
                self._idle.set()
            self.passes += 1
            await asyncio.sleep(MIN_GAP_SECONDS)
            await wait_set(self._wake, self.poll_seconds)
