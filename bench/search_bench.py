"""Search on millions of messages: seed PostgreSQL with SQL (``generate_series``, no ORM), then
time ``omni.domain.search.search`` — the code the REST route and the page run — for typical
queries with filters and each role's scope, and print p50/p99 per query.

On 127.0.0.1 only. Creates ``omni_search_bench`` (migrated with Alembic), keeps it for a
re-run with ``--reuse`` (seeding 5M messages takes minutes), drops it with ``--drop``.

    eval "$(scripts/services.sh start)"
    .venv/bin/python bench/search_bench.py --messages 5000000        # seed + measure
    .venv/bin/python bench/search_bench.py --reuse --runs 50          # measure again
    .venv/bin/python bench/search_bench.py --messages 100000 --drop   # a quick smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omni.db import models as m
from omni.db.migrate import upgrade
from omni.domain import search
from omni.domain.auth import Principal

DB = "omni_search_bench"
QUEUES, GROUPS, OPERATORS = 20, 10, 200
MESSAGES_PER_CONVERSATION = 10
NOW = datetime(2026, 11, 30, tzinfo=UTC)

# Words customers and operators write; the weighted pick (random()^3) makes the first ones
# common and the last ones rare, as in real chats. Several forms of one word on purpose.
RU = (
    "здравствуйте спасибо пожалуйста да нет хорошо заказ заказа заказом заказы доставка доставки "
    "оплата оплаты карта картой возврат возврата деньги денег курьер курьера адрес адреса номер "
    "телефон телефона ждать жду неделю сегодня завтра вчера товар товара размер цвет скидка скидку "
    "промокод акция магазин менеджер оператор вопрос ответ проблема ошибка приложение сайт "
    "регистрация пароль аккаунт баланс тариф подключение роутер интернет скорость договор счёт "
    "квитанция претензия жалоба гарантия ремонт сервис мастер запись отмена перенос"
)
EN = (
    "hello thanks please yes no order orders ordered delivery payment card refund money courier "
    "address phone week today tomorrow size colour discount promo shop manager question answer "
    "problem error app website password account balance plan router internet speed contract "
    "invoice complaint warranty repair service appointment cancel reschedule"
)
WORDS = [*RU.split(), *EN.split()]

SEED_BTREES = {"ix_messages_search_queue": "search_queue_id, id", "ix_messages_created_at": "created_at"}
"""Migration 0040_searchperf18's indexes, dropped during the load and built after it like the GIN
(the column itself is filled by the migration's insert trigger)."""

Runner = Callable[[], Awaitable[Any]]


def admin_dsn(dsn: str | None) -> str:
    dsn = dsn or os.environ.get("OMNI_TEST_PG_DSN", "")
    if not dsn:
        sys.exit("set OMNI_TEST_PG_DSN (scripts/services.sh start prints it) or pass --dsn")
    host = urlparse(dsn).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing to run against {host}: loopback only")
    return dsn


def db_dsn(dsn: str, name: str = DB) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


def log(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", file=sys.stderr, flush=True)


async def create(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DB}")
    finally:
        await conn.close()
    await asyncio.to_thread(upgrade, db_dsn(dsn).replace("postgresql://", "postgresql+asyncpg://"))


async def seed(dsn: str, messages: int) -> dict[str, float]:
    """Everything with set-based SQL; the GIN index is dropped during the load and rebuilt."""
    conversations = max(1, messages // MESSAGES_PER_CONVERSATION)
    contacts = max(1, conversations // 3)
    took: dict[str, float] = {}
    # Groups, queues and users through the seed helpers (defaults of every NOT NULL column).
    engine = create_async_engine(db_dsn(dsn).replace("postgresql://", "postgresql+asyncpg://"))
    try:
        from omni.seed import queue as seed_queue
        from omni.seed import user as seed_user

        async with async_sessionmaker(engine)() as s, s.begin():
            groups = [m.Group(name=f"group {g}") for g in range(GROUPS)]
            s.add_all(groups)
            await s.flush()
            queues = [
                await seed_queue(s, f"queue {q}", group_id=groups[q % GROUPS].id) for q in range(QUEUES)
            ]
            await seed_user(s, "bench_admin", m.Role.ADMIN, password_hash="x")
            sup = await seed_user(s, "bench_sup", m.Role.SUPERVISOR, password_hash="x")
            s.add(m.SupervisorScope(supervisor_id=sup.id, group_id=groups[0].id))
            for i in range(OPERATORS):
                op = await seed_user(s, f"bench_op{i}", m.Role.OPERATOR, password_hash="x")
                for q in (queues[i % QUEUES], queues[(i + 1) % QUEUES]):
                    s.add(m.QueueMember(queue_id=q.id, user_id=op.id, position=0, penalty=0))
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(db_dsn(dsn))
    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '1GB'")
        t = time.perf_counter()
        await conn.execute(
            f"""
            INSERT INTO contacts (name, phone, email, custom_fields, tags, blacklisted, created_at)
            SELECT 'Customer ' || g, '+7916' || lpad(g::text, 7, '0'), 'c' || g || '@example.com',
                   '{{}}', '[]', false, $1::timestamptz - make_interval(days => g % 365)
            FROM generate_series(1, {contacts}) g
            """,
            NOW,
        )
        log(f"{contacts} contacts")
        ops = [r[0] for r in await conn.fetch("SELECT id FROM users WHERE role = 'operator' ORDER BY id")]
        queue_ids = [r[0] for r in await conn.fetch("SELECT id FROM queues ORDER BY id")]
        await conn.execute(
            f"""
            INSERT INTO conversations (contact_id, channel, medium, status, queue_id, extra_queue_ids,
                priority, skill_relax, escalation_step, assigned_user_id, subject, variables,
                created_at, hold_seconds, closed_at)
            SELECT 1 + g % {contacts}, (ARRAY['widget','telegram','voice','api'])[1 + g % 4],
                   CASE WHEN g % 4 = 2 THEN 'voice' ELSE 'chat' END,
                   CASE WHEN g % 50 = 0 THEN 'active' ELSE 'closed' END,
                   ($2::int[])[1 + g % {QUEUES}], '[]', 0, 0, 0, ($3::int[])[1 + g % {len(ops)}], '', '{{}}',
                   $1::timestamptz - make_interval(secs => (1 - g::float8 / {conversations}) * 365 * 86400),
                   0, $1::timestamptz
                      - make_interval(secs => (1 - g::float8 / {conversations}) * 365 * 86400 - 600)
            FROM generate_series(1, {conversations}) g
            """,
            NOW,
            queue_ids,
            ops,
        )
        took["conversations"] = time.perf_counter() - t
        log(f"{conversations} conversations")
        for index in (search.PG_INDEX, *SEED_BTREES):
            await conn.execute(f"DROP INDEX IF EXISTS {index}")
        t = time.perf_counter()
        chunk = 500_000
        first_conv = await conn.fetchval("SELECT min(id) FROM conversations")
        for start in range(0, messages, chunk):
            n = min(chunk, messages - start)
            await conn.execute(
                f"""
                INSERT INTO messages (conversation_id, direction, body, attachments, delivery, created_at)
                SELECT $3 + (g / {MESSAGES_PER_CONVERSATION}) % {conversations},
                       (ARRAY['in','out','in','out','in','out','in','out','note','in'])[1 + g % 10],
                       array_to_string(ARRAY(
                           SELECT ($2::text[])[1 + floor(random() ^ 3 * {len(WORDS)})::int]
                           FROM generate_series(1, 4 + (g % 7) + (g * 0))
                       ), ' ') || CASE WHEN g % 7 = 0 THEN ' №' || (g % 900000 + 100000) ELSE '' END,
                       '[]', 'sent',
                       $1::timestamptz - make_interval(secs => (1 - g::float8 / {messages}) * 365 * 86400)
                FROM generate_series($4::int, $5::int) g
                """,
                NOW,
                WORDS,
                first_conv,
                start,
                start + n - 1,
            )
            log(f"{start + n} messages")
        took["messages"] = time.perf_counter() - t
        t = time.perf_counter()
        await conn.execute(f"CREATE INDEX {search.PG_INDEX} ON messages USING gin ({search.PG_COLUMN})")
        took["gin_index"] = time.perf_counter() - t
        log("GIN index")
        t = time.perf_counter()
        for index, columns in SEED_BTREES.items():
            await conn.execute(f"CREATE INDEX {index} ON messages ({columns})")
        took["btree_indexes"] = time.perf_counter() - t
        log("scope and date indexes")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return took


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def explain_cases(
    engine: Any, maker: Any, cases: list[tuple[str, Principal, search.SearchQuery]], match: str
) -> None:
    """Print ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement on ``messages`` that the cases
    whose name contains ``match`` run (``--explain``; ``--explain ''`` for all)."""
    plans: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "messages" in statement and not statement.startswith("EXPLAIN"):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plans.append("\n".join(r[0] for r in cursor.fetchall()))

    for name, who, q in cases:
        if match not in name:
            continue
        async with maker() as s:
            await search.search(s, who, q)  # warm
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        try:
            async with maker() as s:
                await search.search(s, who, q)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", capture)
        print(f"==== {name}")
        print("\n----\n".join(plans))
        plans.clear()


async def measure(
    dsn: str, runs: int, explain: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    engine = create_async_engine(
        db_dsn(dsn).replace("postgresql://", "postgresql+asyncpg://"), pool_size=2, max_overflow=0
    )
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as s:
        users = {u.username: Principal.of(u) for u in await s.scalars(select(m.User))}
        facts = {
            "messages": (
                await s.execute(select(m.Message.id).order_by(m.Message.id.desc()).limit(1))
            ).scalar(),
            "queue": (await s.execute(select(m.Queue.id).order_by(m.Queue.id).limit(1))).scalar(),
        }
    admin, sup, op = users["bench_admin"], users["bench_sup"], users["bench_op0"]
    week_ago = NOW - timedelta(days=7)
    month_ago = NOW - timedelta(days=30)
    cases: list[tuple[str, Principal, search.SearchQuery]] = [
        ("operator: rare word form «претензии»", op, search.SearchQuery(text="претензии")),
        ("operator: common word «заказа»", op, search.SearchQuery(text="заказа", kinds=("message",))),
        ("operator: two words «возврат денег»", op, search.SearchQuery(text="возврат денег")),
        ("operator: order number «№123456»", op, search.SearchQuery(text="123456")),
        ("operator: phone digits", op, search.SearchQuery(text="+7 916 000 12")),
        (
            "supervisor: «refund» + channel + last 30 days",
            sup,
            search.SearchQuery(text="refund", channel="telegram", date_from=month_ago, kinds=("message",)),
        ),
        ("supervisor: «гарантия» newest first", sup, search.SearchQuery(text="гарантия", sort="newest")),
        (
            "admin: «доставка» + queue + closed",
            admin,
            search.SearchQuery(text="доставка", queue_id=facts["queue"], status="closed", kinds=("message",)),
        ),
        ("admin: «courier» last 7 days", admin, search.SearchQuery(text="courier", date_from=week_ago)),
        (
            "admin: «ремонт мастер» page 3",
            admin,
            search.SearchQuery(text="ремонт мастер", offset=40, kinds=("message",)),
        ),
        ("admin: notes «жалоба»", admin, search.SearchQuery(text="жалоба", kinds=("note",))),
    ]
    if explain:
        await explain_cases(engine, maker, cases, explain)
        await engine.dispose()
        return [], facts
    out = []
    for name, who, q in cases:
        timings = []
        hits = 0
        for _ in range(runs):
            async with maker() as s:
                t = time.perf_counter()
                page = await search.search(s, who, q)
                timings.append((time.perf_counter() - t) * 1000)
                hits = len(page.hits)
        out.append(
            {
                "query": name,
                "hits_on_page": hits,
                "p50_ms": round(statistics.median(timings), 1),
                "p99_ms": round(percentile(timings, 99), 1),
                "max_ms": round(max(timings), 1),
            }
        )
        log(f"{name}: p50 {out[-1]['p50_ms']} ms, p99 {out[-1]['p99_ms']} ms")
    await engine.dispose()
    return out, facts


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per query")
    parser.add_argument("--reuse", action="store_true", help="measure the seeded database again")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--dsn", default=None)
    parser.add_argument(
        "--explain", default=None, help="print the plans of the queries whose name contains this"
    )
    parser.add_argument("--out", default="bench/results/search.json")
    args = parser.parse_args()
    dsn = admin_dsn(args.dsn)
    took: dict[str, float] = {}
    try:
        if not args.reuse:
            log(f"creating {DB} and seeding {args.messages} messages")
            await create(dsn)
            took = await seed(dsn, args.messages)
        rows, facts = await measure(dsn, args.runs, args.explain)
        if args.explain is not None:
            return
    finally:
        if args.drop:
            conn = await asyncpg.connect(dsn)
            await conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            await conn.close()
    conn = await asyncpg.connect(dsn)
    server = await conn.fetchval("SHOW server_version")
    await conn.close()
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "postgresql": server},
        "messages": facts["messages"],
        "seed_seconds": {k: round(v, 1) for k, v in took.items()},
        "runs": args.runs,
        "queries": rows,
    }
    out = Path(args.out)
    await asyncio.to_thread(out.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(out.write_text, json.dumps(report, ensure_ascii=False, indent=2))
    width = max(len(r["query"]) for r in rows)
    print(f"{'query':<{width}}  hits  p50 ms  p99 ms")
    for r in rows:
        print(f"{r['query']:<{width}}  {r['hits_on_page']:>4}  {r['p50_ms']:>6}  {r['p99_ms']:>6}")


if __name__ == "__main__":
    asyncio.run(main())
