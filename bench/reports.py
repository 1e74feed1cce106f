"""Reports benchmark on PostgreSQL: month reports by registry key against a plain GROUP BY.

Run (services started with ``eval "$(scripts/services.sh start)"``)::

    .venv/bin/python bench/reports.py [--conversations 1000000] [--operators 200] [--days 90]
                                      [--repeats 20] [--out bench/results/reports.json]

What it does, on 127.0.0.1 only:

1. builds ``omni_bench_reports_template`` with the Alembic migrations and clones a fresh
   database from it; seeds operators, queues, inboxes and result codes, and sets the install's
   zone to Europe/Moscow;
2. generates ``--conversations`` conversations over the last ``--days`` local days with their
   offers, call legs (voice), outbox events and the operators' status spans (a simulation per
   operator and shift: available → ringing → talking → wrap-up → available …, plus abandons
   that never reach an operator) and loads them with binary COPY (``copy_records_to_table``);
3. fills the interval rollups with ``rollups.rebuild_range`` one local day at a time and times
   it (the backfill speed);
4. for last month (the ``last_month`` preset, grouping by day) runs each report key in
   ``--keys`` that is registered, ``--repeats`` times (after one warm-up run), each in its own
   transaction through ``omni.domain.reports.run_params`` as an admin; keys not registered are
   listed as missing;
5. in the same run, times a plain GROUP BY over the raw tables computing the same month
   figures (queue summary, SL buckets, operator status times), the floor a report without
   rollups would pay;
6. prints a table, writes JSON to ``--out`` and drops the databases it created.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg  # type: ignore[import-untyped]
from benchkit import (
    build_template,
    check_loopback,
    clone,
    drop,
    log,
    percentile,
    raw_dsn,
    sqlalchemy_url,
)

from omni import heap
from omni.db import Database
from omni.db import models as m
from omni.domain import reports
from omni.domain.auth import Principal
from omni.domain.reports import FilterParams, Grouping, Preset, rollups
from omni.domain.reports.period import local_midnight, preset

TEMPLATE = "omni_bench_reports_template"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "reports.json"
DEFAULT_KEYS = ("queue_summary", "sl_buckets", "operator_status", "staffing")
ZONE = "Europe/Moscow"
QUEUES = (
    # name, channel, medium, sla seconds, mean talk seconds
    ("sales-voice", "voice", "voice", 20, 180.0),
    ("support-voice", "voice", "voice", 30, 240.0),
    ("support-chat", "telegram", "chat", 60, 420.0),
    ("web-chat", "widget", "chat", 60, 360.0),
)
SL_THRESHOLDS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
ABANDON_SHARE = 0.06
SHIFT_HOURS = 8
CHUNK = 50_000
GOAL_MS = 200.0


# --- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """Latencies of repeated runs in milliseconds."""

    runs: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    rows: int
    """Rows the report (or the raw query) returned."""


def timing(samples: Sequence[float], rows: int) -> Timing:
    ordered = sorted(samples)
    return Timing(
        runs=len(ordered),
        p50_ms=round(percentile(ordered, 50) * 1000, 2),
        p95_ms=round(percentile(ordered, 95) * 1000, 2),
        p99_ms=round(percentile(ordered, 99) * 1000, 2),
        min_ms=round(ordered[0] * 1000, 2),
        max_ms=round(ordered[-1] * 1000, 2),
        rows=rows,
    )


# --- databases ----------------------------------------------------------------------------


async def machine_info(admin_dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(admin_dsn)
    try:
        pg = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("server_version", "shared_buffers", "work_mem")
        }
    finally:
        await conn.close()
    return {
        "nproc": os.cpu_count(),
        "loadavg_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": pg,
    }


# --- data ---------------------------------------------------------------------------------


@dataclass(slots=True)
class World:
    """The small tables: ids the generated rows refer to."""

    admin_id: int
    operator_ids: list[int]
    queue_ids: list[int]
    inbox_ids: list[int]
    result_code_ids: list[int]
    status_ids: dict[str, int]
    contacts: int


async def seed_small(conn: asyncpg.Connection, operators: int, contacts: int) -> World:
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO install_settings (id, timezone, short_abandon_seconds, business_days, updated_at)"
        " VALUES (1, $1, 5, '[0,1,2,3,4]', $2)",
        ZONE,
        now,
    )
    user_cols = (
        "username, display_name, password_hash, role, language, is_active, handles_chat,"
        " handles_voice, capacity, chat_weight, voice_weight, created_at"
    )
    admin_id = await conn.fetchval(
        f"INSERT INTO users ({user_cols}) VALUES ('bench-admin', 'Admin', '!', 'admin', 'en', true,"
        " false, false, 3, 1, 3, $1) RETURNING id",
        now,
    )
    operator_ids = [
        await conn.fetchval(
            f"INSERT INTO users ({user_cols}) VALUES ($1, $1, '!', 'operator', 'en', true, true, true,"
            " 3, 1, 3, $2) RETURNING id",
            f"op{i:04d}",
            now,
        )
        for i in range(operators)
    ]
    queue_ids, inbox_ids = [], []
    for name, channel, _medium, sla, _talk in QUEUES:
        qid = await conn.fetchval(
            "INSERT INTO queues (name, strategy, priority, queue_timeout_seconds, operator_timeout_seconds,"
            " auto_accept, overflow_action, sla_seconds, wrap_up_seconds, chats_block_calls, manual_pick,"
            " escalation, script, overflow_scenario) VALUES ($1, 'longest_idle', 0, 300, 20, false, 'none',"
            " $2, 30, true, true, '[]', '', '') RETURNING id",
            name,
            sla,
        )
        queue_ids.append(qid)
        inbox_ids.append(
            await conn.fetchval(
                "INSERT INTO inboxes (name, channel, queue_id, public_token, secret_encrypted, config,"
                " active) VALUES ($1, $2, $3, $4, '', '{}', true) RETURNING id",
                f"{name}-inbox",
                channel,
                qid,
                uuid.uuid4().hex,
            )
        )
    await conn.executemany(
        "INSERT INTO queue_members (queue_id, user_id, position, penalty) VALUES ($1, $2, 0, 0)",
        [(queue_ids[(i + k) % len(queue_ids)], uid) for i, uid in enumerate(operator_ids) for k in range(2)],
    )
    result_code_ids = [
        await conn.fetchval(
            "INSERT INTO result_codes (code, name, name_ru, colour, active)"
            " VALUES ($1, $1, '', '#888888', true) RETURNING id",
            code,
        )
        for code in ("sale", "info", "complaint")
    ]
    status_ids = {code: sid for code, sid in await conn.fetch("SELECT code, id FROM operator_statuses")}
    await conn.copy_records_to_table(
        "contacts",
        columns=["id", "name", "custom_fields", "tags", "blacklisted", "created_at"],
        records=((i, f"customer {i}", "{}", "[]", False, now) for i in range(1, contacts + 1)),
    )
    return World(admin_id, operator_ids, queue_ids, inbox_ids, result_code_ids, status_ids, contacts)


CONVERSATION_COLUMNS = [
    "id", "contact_id", "inbox_id", "channel", "medium", "status", "queue_id", "extra_queue_ids",
    "priority", "skill_relax", "escalation_step", "assigned_user_id", "subject", "variables",
    "created_at", "enqueued_at", "first_enqueued_at", "offered_at", "accepted_at", "wrap_up_at",
    "closed_at", "hold_seconds", "result_code_id", "closed_by", "last_message_at",
]  # fmt: skip
OFFER_COLUMNS = [
    "id",
    "conversation_id",
    "user_id",
    "queue_id",
    "state",
    "created_at",
    "expires_at",
    "responded_at",
]
CALL_COLUMNS = [
    "id", "conversation_id", "inbox_id", "direction", "linkedid", "caller_uniqueid", "caller_channel",
    "caller_number", "agent_uniqueid", "agent_channel", "agent_user_id", "ring_seconds", "talk_seconds",
    "answered_at", "ended_at", "hangup_cause", "recording_path", "created_at",
]  # fmt: skip
EVENT_COLUMNS = [
    "id",
    "type",
    "payload",
    "conversation_id",
    "queue_id",
    "user_id",
    "created_at",
    "dispatched",
]
SPAN_COLUMNS = ["id", "user_id", "status_id", "status_code", "started_at", "ended_at", "reason", "set_by_id"]


@dataclass(slots=True)
class Batches:
    """Rows waiting for COPY, flushed every ``CHUNK`` conversations."""

    conversations: list[tuple[Any, ...]] = field(default_factory=list)
    offers: list[tuple[Any, ...]] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    spans: list[tuple[Any, ...]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    async def flush(self, conn: asyncpg.Connection) -> None:
        for table, columns, rows in (
            ("conversations", CONVERSATION_COLUMNS, self.conversations),
            ("offers", OFFER_COLUMNS, self.offers),
            ("calls", CALL_COLUMNS, self.calls),
            ("events", EVENT_COLUMNS, self.events),
            ("status_history", SPAN_COLUMNS, self.spans),
        ):
            if rows:
                await conn.copy_records_to_table(table, columns=columns, records=rows)
                self.counts[table] = self.counts.get(table, 0) + len(rows)
                rows.clear()


class Generator:
    """Shifts of operators handling one contact after another, and abandons nobody answered."""

    def __init__(self, world: World, first_day: date, days: int, conversations: int, seed: int) -> None:
        self.w = world
        self.tz = ZoneInfo(ZONE)
        self.first_day = first_day
        self.days = days
        self.rng = random.Random(seed)
        self.abandoned = round(conversations * ABANDON_SHARE)
        self.handled = conversations - self.abandoned
        self.shifts = len(world.operator_ids) * days
        self.ids = {"conversation": 0, "offer": 0, "call": 0, "event": 0, "span": 0}

    def next_id(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def conversation(
        self,
        b: Batches,
        q: int,
        enqueued: datetime,
        operator: int | None,
        offered: datetime | None,
        accepted: datetime | None,
        wrap: datetime | None,
        closed: datetime,
        hold: int,
    ) -> int:
        cid = self.next_id("conversation")
        _name, channel, medium, _sla, _talk = QUEUES[q]
        handled = operator is not None
        variables = f'{{"csat": {self.rng.choice((3, 4, 5, 5))}}}' if handled and cid % 5 == 0 else "{}"
        b.conversations.append(
            (
                cid, 1 + cid % self.w.contacts, self.w.inbox_ids[q], channel, medium,
                "closed" if handled else "abandoned", self.w.queue_ids[q], "[]", 0, 0, 0, operator, "",
                variables, enqueued, enqueued, enqueued, offered, accepted, wrap, closed, hold,
                self.w.result_code_ids[cid % 3] if handled else None,
                ("operator" if cid % 3 else "customer") if handled else "customer", closed,
            )
        )  # fmt: skip
        qid = self.w.queue_ids[q]
        b.events.append(
            (
                self.next_id("event"),
                "conversation.created",
                f'{{"id": {cid}}}',
                cid,
                qid,
                None,
                enqueued,
                True,
            )
        )
        b.events.append(
            (
                self.next_id("event"),
                "conversation.closed",
                f'{{"id": {cid}}}',
                cid,
                qid,
                operator,
                closed,
                True,
            )
        )
        if handled and offered is not None:
            b.offers.append(
                (
                    self.next_id("offer"),
                    cid,
                    operator,
                    qid,
                    "accepted",
                    offered,
                    offered + timedelta(seconds=20),
                    accepted,
                )
            )
        if medium == "voice":
            talk = ((wrap or closed) - (accepted or closed)).total_seconds() - hold if handled else 0.0
            b.calls.append(
                (
                    self.next_id("call"), cid, self.w.inbox_ids[q], "in", f"bench.{cid}", f"bench.{cid}",
                    f"PJSIP/trunk-{cid:08x}", f"+7900{cid:07d}", "", "", operator,
                    ((accepted - offered).total_seconds() if accepted and offered else 0.0), max(0.0, talk),
                    accepted, wrap or closed, "16", "", enqueued,
                )
            )  # fmt: skip
        return cid

    def span(self, b: Batches, uid: int, code: str, began: datetime, ended: datetime | None) -> None:
        b.spans.append((self.next_id("span"), uid, self.w.status_ids[code], code, began, ended, "", None))

    def days_iter(self) -> Iterator[tuple[date, datetime]]:
        for d in range(self.days):
            day = self.first_day + timedelta(days=d)
            yield day, local_midnight(day, self.tz)

    def shift(self, b: Batches, uid: int, index: int, midnight: datetime, count: int) -> None:
        """One operator's shift: ``count`` contacts, one after another, with the spans between."""
        rng = self.rng
        start = midnight + timedelta(hours=7 + 2 * (index % 6), minutes=rng.randrange(0, 30))
        end = start + timedelta(hours=SHIFT_HOURS)
        slot = SHIFT_HOURS * 3600 / max(count, 1)
        at = start
        self.span(b, uid, "available", at, None)
        for _ in range(count):
            q = (index + rng.randrange(2)) % len(QUEUES)
            mean_talk = min(QUEUES[q][4], slot * 0.6)
            idle = rng.expovariate(1 / max(1.0, slot - mean_talk - 35))
            ring = rng.uniform(2, 8)
            talk = max(10.0, rng.expovariate(1 / mean_talk))
            hold = int(rng.random() < 0.1) * rng.randrange(10, 60)
            wrap_s = rng.uniform(5, 40)
            wait = rng.expovariate(1 / 15)
            offered = at + timedelta(seconds=idle)
            accepted = offered + timedelta(seconds=ring)
            wrap = accepted + timedelta(seconds=talk + hold)
            closed = wrap + timedelta(seconds=wrap_s)
            b.spans[-1] = (*b.spans[-1][:5], offered, *b.spans[-1][6:])
            self.span(b, uid, "ringing", offered, accepted)
            self.span(b, uid, "talking", accepted, wrap)
            self.span(b, uid, "wrap_up", wrap, closed)
            self.conversation(
                b, q, offered - timedelta(seconds=wait), uid, offered, accepted, wrap, closed, hold
            )
            at = closed
            self.span(b, uid, "pause" if rng.random() < 0.03 else "available", at, None)
        last_end = max(end, at + timedelta(minutes=5))
        b.spans[-1] = (*b.spans[-1][:5], last_end, *b.spans[-1][6:])
        self.span(b, uid, "offline", last_end, last_end + timedelta(hours=24 - SHIFT_HOURS - 1))

    def abandons(self, b: Batches, midnight: datetime, count: int) -> None:
        for _ in range(count):
            q = self.rng.randrange(len(QUEUES))
            enqueued = midnight + timedelta(seconds=self.rng.uniform(7 * 3600, 23 * 3600))
            left = enqueued + timedelta(seconds=self.rng.expovariate(1 / 40))
            self.conversation(b, q, enqueued, None, None, None, None, left, 0)

    async def run(self, conn: asyncpg.Connection) -> dict[str, int]:
        b = Batches()
        shift = 0
        for d, (_day, midnight) in enumerate(self.days_iter()):
            for index, uid in enumerate(self.w.operator_ids):
                # Integer shares, so the totals come out exact: shift i gets ⌊H(i+1)/S⌋ − ⌊Hi/S⌋.
                count = self.handled * (shift + 1) // self.shifts - self.handled * shift // self.shifts
                shift += 1
                self.shift(b, uid, index, midnight, count)
                if len(b.conversations) >= CHUNK:
                    await b.flush(conn)
            self.abandons(
                b, midnight, self.abandoned * (d + 1) // self.days - self.abandoned * d // self.days
            )
            if (d + 1) % 10 == 0 or d + 1 == self.days:
                await b.flush(conn)
                log(f"  day {d + 1}/{self.days}: {self.ids['conversation']} conversations")
        await b.flush(conn)
        for table, kind in (
            ("conversations", "conversation"),
            ("offers", "offer"),
            ("calls", "call"),
            ("events", "event"),
            ("status_history", "span"),
        ):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {max(1, self.ids[kind])})"
            )
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('contacts', 'id'), {self.w.contacts})")
        return b.counts


# --- the raw floor ------------------------------------------------------------------------

RAW_QUERIES: dict[str, str] = {
    # Per queue and local day: offered (no short abandons), answered, abandoned, SL, ASA, AHT parts.
    "queue_summary": """
        SELECT c.queue_id, date_trunc('day', c.first_enqueued_at AT TIME ZONE $3) AS day,
               count(*) FILTER (WHERE c.accepted_at IS NOT NULL
                                   OR c.closed_at - c.first_enqueued_at >= interval '5 seconds') AS offered,
               count(c.accepted_at) AS answered,
               count(*) FILTER (WHERE c.status = 'abandoned') AS abandoned,
               count(*) FILTER (WHERE c.accepted_at - c.first_enqueued_at
                                      <= make_interval(secs => q.sla_seconds)) AS in_sl,
               avg(extract(epoch FROM c.accepted_at - c.first_enqueued_at)) AS asa,
               max(extract(epoch FROM coalesce(c.accepted_at, c.closed_at) - c.first_enqueued_at)) AS longest,
               avg(extract(epoch FROM c.wrap_up_at - c.accepted_at) - c.hold_seconds) AS talk,
               avg(c.hold_seconds) FILTER (WHERE c.accepted_at IS NOT NULL) AS hold,
               avg(extract(epoch FROM c.closed_at - c.wrap_up_at)) AS wrap
        FROM conversations c JOIN queues q ON q.id = c.queue_id
        WHERE c.first_enqueued_at >= $1 AND c.first_enqueued_at < $2
        GROUP BY 1, 2
    """,
    # Per queue: answered and abandoned within each SipRing threshold.
    "sl_buckets": "SELECT c.queue_id, "
    + ", ".join(
        f"count(*) FILTER (WHERE c.accepted_at - c.first_enqueued_at <= interval '{t} seconds') AS ans_{t}, "
        f"count(*) FILTER (WHERE c.status = 'abandoned' AND c.closed_at - c.first_enqueued_at"
        f" <= interval '{t} seconds') AS abn_{t}"
        for t in SL_THRESHOLDS
    )
    + " FROM conversations c WHERE c.first_enqueued_at >= $1 AND c.first_enqueued_at < $2 GROUP BY 1",
    # Per operator, local day and status: seconds in the status, spans clipped to the month.
    "operator_status": """
        SELECT h.user_id, date_trunc('day', greatest(h.started_at, $1) AT TIME ZONE $3) AS day, h.status_code,
               sum(extract(epoch FROM least(coalesce(h.ended_at, $2), $2) - greatest(h.started_at, $1)))
        FROM status_history h
        WHERE h.started_at < $2 AND (h.ended_at IS NULL OR h.ended_at > $1)
        GROUP BY 1, 2, 3
    """,
    # Per queue and local 15-minute interval: arrivals and handle time (what staffing reads).
    "staffing": """
        SELECT c.queue_id, date_bin('15 minutes', c.first_enqueued_at, timestamptz '2000-01-01') AS bucket,
               count(*), sum(extract(epoch FROM c.closed_at - c.accepted_at))
        FROM conversations c
        WHERE c.first_enqueued_at >= $1 AND c.first_enqueued_at < $2
        GROUP BY 1, 2
    """,
}


# --- measuring ----------------------------------------------------------------------------


async def backfill(db: Database, gen: Generator) -> dict[str, Any]:
    names = sorted(rollups.ROLLUPS)
    if not names:
        log("no rollups registered: nothing to backfill")
        return {"rollups": [], "seconds": 0.0, "days": 0}
    log(f"backfilling rollups {names} over {gen.days} days")
    t0 = time.perf_counter()
    for d, (_day, midnight) in enumerate(gen.days_iter()):
        async with db.transaction() as s:
            await rollups.rebuild_range(s, midnight, local_midnight(_day + timedelta(days=1), gen.tz))
        if (d + 1) % 10 == 0:
            log(f"  {d + 1}/{gen.days} days, {time.perf_counter() - t0:.1f} s")
    seconds = time.perf_counter() - t0
    return {
        "rollups": names,
        "seconds": round(seconds, 2),
        "days": gen.days,
        "seconds_per_day": round(seconds / gen.days, 3),
        "conversations_per_second": round(gen.ids["conversation"] / seconds, 1) if seconds else None,
    }


async def measure_report(db: Database, who: Principal, key: str, now: datetime, repeats: int) -> Timing:
    params = FilterParams(preset=Preset.LAST_MONTH, grouping=Grouping.DAY)
    async with db.transaction() as s:  # warm-up: caches, plans, the pool's connection
        table = await reports.run_params(s, who, key, params, now)
    heap.freeze_startup_heap()  # as a node does once started (omni/heap.py)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        async with db.transaction() as s:
            table = await reports.run_params(s, who, key, params, now)
        samples.append(time.perf_counter() - t0)
    return timing(samples, len(table.rows))


async def measure_raw(
    conn: asyncpg.Connection, sql: str, start: datetime, end: datetime, repeats: int
) -> Timing:
    args: tuple[Any, ...] = (start, end, ZONE) if "$3" in sql else (start, end)
    rows = await conn.fetch(sql, *args)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        samples.append(time.perf_counter() - t0)
    return timing(samples, len(rows))


# --- main ---------------------------------------------------------------------------------


def start(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    check_loopback(args.dsn)
    return {"args": vars(args) | {"out": str(args.out)}, **extra}


async def time_month(
    result: dict[str, Any],
    args: argparse.Namespace,
    db: Database,
    conn: asyncpg.Connection,
    admin_id: int,
    now: datetime,
) -> None:
    """Steps 4 and 5 (a new database or a reused one): each key's report and its raw GROUP BY
    over last month, into ``result``."""
    month = preset(Preset.LAST_MONTH, now, ZoneInfo(ZONE))
    result["month"] = {"first_day": month.first_day.isoformat(), "last_day": month.last_day.isoformat()}
    who = Principal(id=admin_id, username="bench-admin", role=m.Role.ADMIN, language="en")
    keys = [k.strip() for k in args.keys.split(",") if k.strip()]
    result["missing"] = [k for k in keys if k not in reports.REPORTS]
    result["reports"] = {}
    result["raw"] = {}
    for key in keys:
        if key in reports.REPORTS:
            log(f"report {key}: {args.repeats} runs")
            result["reports"][key] = asdict(await measure_report(db, who, key, now, args.repeats))
        if key in RAW_QUERIES:
            log(f"raw GROUP BY for {key}: {args.repeats} runs")
            result["raw"][key] = asdict(
                await measure_raw(conn, RAW_QUERIES[key], month.start, month.end, args.repeats)
            )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    admin_dsn: str = args.dsn
    result = start(args, machine=await machine_info(admin_dsn))
    name = f"omni_bench_reports_{uuid.uuid4().hex[:8]}"
    log(f"building {TEMPLATE} (migrations) and {name}")
    try:
        await build_template(admin_dsn, TEMPLATE)
        await clone(admin_dsn, TEMPLATE, name)
        now = datetime.now(UTC)
        tz = ZoneInfo(ZONE)
        today = now.astimezone(tz).date()
        first_day = today - timedelta(days=args.days)
        month = preset(Preset.LAST_MONTH, now, tz)
        if month.first_day < first_day:
            raise SystemExit(f"--days {args.days} does not reach back to {month.first_day} (last month)")
        conn = await asyncpg.connect(raw_dsn(admin_dsn, name))
        db = Database(sqlalchemy_url(admin_dsn, name), pool_size=2)
        try:
            t0 = time.perf_counter()
            world = await seed_small(conn, args.operators, max(1000, args.conversations // 5))
            gen = Generator(world, first_day, args.days, args.conversations, args.seed)
            log(
                f"generating {args.conversations} conversations over {args.days} days,"
                f" {args.operators} operators"
            )
            counts = await gen.run(conn)
            load_seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            await conn.execute("ANALYZE")
            result["load"] = {
                "rows": counts,
                "seconds": round(load_seconds, 1),
                "rows_per_second": round(sum(counts.values()) / load_seconds),
                "analyze_seconds": round(time.perf_counter() - t1, 1),
                "first_day": first_day.isoformat(),
                "last_day": (today - timedelta(days=1)).isoformat(),
            }
            log(f"loaded {counts} in {load_seconds:.1f} s")
            result["backfill"] = await backfill(db, gen)
            await conn.execute("ANALYZE")
            await time_month(result, args, db, conn, world.admin_id, now)
        finally:
            await conn.close()
            await db.dispose()
    finally:
        if not args.keep:
            await drop(admin_dsn, name, TEMPLATE)
    return result


async def main_reuse(args: argparse.Namespace) -> dict[str, Any]:
    """``--reuse NAME``: time the reports again on a database a ``--keep`` run left (after a
    change to the report code), without loading and backfilling again. Nothing is dropped."""
    admin_dsn: str = args.dsn
    name: str = args.reuse
    result = start(args, machine=await machine_info(admin_dsn), reused=name)
    conn = await asyncpg.connect(raw_dsn(admin_dsn, name))
    db = Database(sqlalchemy_url(admin_dsn, name), pool_size=2)
    try:
        admin_id = await conn.fetchval("SELECT id FROM users WHERE username = 'bench-admin'")
        if admin_id is None:
            raise SystemExit(f"{name} is not a database of this bench (no bench-admin user)")
        result["load"] = {
            "rows": {"conversations": await conn.fetchval("SELECT count(*) FROM conversations")}
        }
        await time_month(result, args, db, conn, admin_id, datetime.now(UTC))
    finally:
        await conn.close()
        await db.dispose()
    return result


def render(result: dict[str, Any]) -> str:
    load = result["load"]
    lines = [
        f"load: {load['rows']} in {load['seconds']} s "
        f"({load['rows_per_second']} rows/s); days {load['first_day']} .. {load['last_day']}"
        if "reused" not in result
        else f"reused {result['reused']}: {load['rows']}",
        f"backfill: {result.get('backfill', '(reused)')}",
        f"month: {result['month']['first_day']} .. {result['month']['last_day']} (grouping by day)",
        "",
        f"{'key':<18}{'report p50':>12}{'p95':>10}{'p99':>10}{'rows':>7}"
        f"   {'raw p50':>10}{'p99':>10}{'rows':>8}"
        f"  goal ≤ {GOAL_MS:.0f} ms",
    ]
    for key in sorted(set(result["reports"]) | set(result["raw"])):
        rep = result["reports"].get(key)
        raw = result["raw"].get(key)
        left = (
            f"{rep['p50_ms']:>12.1f}{rep['p95_ms']:>10.1f}{rep['p99_ms']:>10.1f}{rep['rows']:>7}"
            if rep
            else f"{'missing':>12}{'':>10}{'':>10}{'':>7}"
        )
        right = f"{raw['p50_ms']:>10.1f}{raw['p99_ms']:>10.1f}{raw['rows']:>8}" if raw else ""
        verdict = "" if not rep else ("ok" if rep["p99_ms"] <= GOAL_MS else "OVER")
        lines.append(f"{key:<18}{left}   {right}  {verdict}")
    if result["missing"]:
        lines.append(f"not registered (not measured): {', '.join(result['missing'])}")
    return "\n".join(lines)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conversations", type=int, default=1_000_000)
    p.add_argument("--operators", type=int, default=200)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--keys", default=",".join(DEFAULT_KEYS), help="report keys, comma-separated")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    p.add_argument("--keep", action="store_true", help="leave the databases in place")
    p.add_argument("--reuse", metavar="NAME", help="time the reports on a database a --keep run left")
    args = p.parse_args(argv)
    if not args.dsn:
        p.error('no --dsn and OMNI_TEST_PG_DSN is not set (eval "$(scripts/services.sh start)")')
    if args.days < 1 or args.conversations < 1 or args.operators < 1:
        p.error("--days, --conversations and --operators must be positive")
    return args


def run(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    result = asyncio.run(main_reuse(args) if args.reuse else main(args))
    print(render(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    run()
