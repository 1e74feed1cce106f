"""Voice channel benchmark: AMI events ingested and applied per second, and the time from a
caller's ``OmniEnqueue`` (the QueueCallerJoin equivalent) to the operator's ``Originate``.

Everything runs in one process and one event loop (one core): the loopback AMI emulator,
panoramisk, the voice adapter and, for the latency part, the router and the outbox relay,
against PostgreSQL on 127.0.0.1 (``OMNI_TEST_PG_DSN``, see ``scripts/services.sh``).

    eval "$(scripts/services.sh start)"
    .venv/bin/python bench/voice.py --calls 2000 --latency-calls 200
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
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
from panoramisk import Manager
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels.voice import VoiceChannel, adapter, ami
from omni.db import driver
from omni.db import models as m
from omni.db.migrate import upgrade
from omni.services import build_services
from omni.settings import Settings
from tests import factories as f
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.conftest import free_port


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def wait_for(check: Any, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not met")
        await asyncio.sleep(0.005)


def one_call(emu: AmiEmulator, i: int, inbox: int, mix: dict[str, int]) -> None:
    """One contact-center caller with the traffic a real PBX sends around it: the caller
    arrives (Newchannel, Newstate, VarSet, Newexten, MusicOnHoldStart, ``OmniEnqueue``), its
    dialplan and media add a VarSet flood, Newexten and RTCP, meanwhile extensions call each
    other (``internal_calls_per_call`` whole calls Omni has no part in), and the caller hangs
    up while nobody was free."""
    ch = emu.incoming_call(f"+79{i:09d}", inbox=inbox)
    if mix["noise_varsets"]:
        emu.channel_noise(ch.uniqueid, varsets=mix["noise_varsets"], newexten=3, rtcp=4)
    for k in range(mix["internal_calls_per_call"]):
        emu.internal_call(f"1{(i + k) % 900:03d}", f"2{(i * 7 + k) % 900:03d}", varsets=mix["noise_varsets"])
    emu.hangup(ch.uniqueid)


async def generate(emu: AmiEmulator, calls: int, inbox: int, mix: dict[str, int], first: int = 0) -> None:
    """``calls`` callers (numbers from ``first`` on: each run meets new contacts)."""
    for i in range(first, first + calls):
        one_call(emu, i, inbox, mix)
        if i % 20 == 0:
            await asyncio.sleep(0)


async def floor_run(calls: int, mix: dict[str, int], *, inbox_id: int) -> dict[str, Any]:
    """The same-run floor: bare panoramisk logged in with ``Events: on`` reads the same event
    stream from the same emulator and does nothing with it."""
    emu = AmiEmulator(free_port())
    await emu.start()
    received = 0

    def count(_manager: Any, _message: Any) -> None:
        nonlocal received
        received += 1

    manager = Manager(host="127.0.0.1", port=emu.port, username=emu.username, secret=emu.secret, ping_delay=0)
    manager.register_event("*", count)
    try:
        await manager.connect()
        await wait_for(lambda: emu.sessions >= 1 and received >= 1)  # FullyBooted
        received = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        await generate(emu, calls, inbox_id, mix)
        total = emu.events_written
        await wait_for(lambda: received >= total, limit=600)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        manager.close()
        await emu.close()
    return {
        "events": total,
        "seconds": round(elapsed, 3),
        "events_per_second": round(total / elapsed, 1),
        "cpu_us_per_event": round(cpu / total * 1e6, 1),
    }


async def ingest_run(
    settings: Settings,
    calls: int,
    mix: dict[str, int],
    mask: str,
    first: int,
    show_sql: bool = False,
) -> dict[str, Any]:
    """Omni's voice adapter reading the stream: every event parsed by panoramisk, the ones the
    login's mask lets through filtered or normalised, applied to the registry, and the
    effects persisted (the enqueue and the abandon: conversation, message, ``calls`` row,
    callback, outbox events). ``mask`` ``call,user,system`` is what the adapter subscribes to
    (``channels.voice.ami.EVENT_MASK``); ``on`` is every event class."""
    emu = AmiEmulator(free_port())
    await emu.start()
    settings.voice.ami_port = emu.port
    settings.voice.ami_secret = emu.secret
    saved_mask, ami.EVENT_MASK = ami.EVENT_MASK, ("call,user,system" if mask == "mask" else "on")
    services = build_services(settings, run_background=False)
    voice = VoiceChannel(services)
    services.adapters.register(voice)
    statements = 0
    shapes: Counter[str] = Counter()

    def count_sql(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal statements
        statements += 1
        if show_sql:
            shapes[" ".join(statement.split())[:160]] += 1

    def direct_sql(statement: str) -> None:
        count_sql(None, None, statement)

    try:
        await services.start()
        await wait_for(lambda: voice.ami.ready)
        async with services.db.transaction() as s:
            q = await f.queue(s, f"bench-wait-{mask}", [])
            ib = await f.inbox(s, q, channel="voice", name=f"bench-line-{mask}")
            inbox_id = ib.id
        received = 0
        original = voice._on_ami

        def counting(message: Any) -> None:
            nonlocal received
            received += 1
            original(message)

        voice.ami.on_event = counting
        sa_event.listen(services.db.engine.sync_engine, "before_cursor_execute", count_sql)
        driver.listen(services.db.engine, direct_sql)  # the router's, sent straight on asyncpg
        written0, sent0, applied0, batches0 = (
            emu.events_written,
            emu.events_sent,
            voice.applied,
            voice.batches,
        )
        cpu0, t0 = time.process_time(), time.perf_counter()
        await generate(emu, calls, inbox_id, mix, first)
        wire = emu.events_written - written0
        stream = emu.events_sent - sent0
        await wait_for(lambda: received >= wire, limit=1200)
        await voice.drain()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        sa_event.remove(services.db.engine.sync_engine, "before_cursor_execute", count_sql)
        driver.remove(services.db.engine, direct_sql)
        for shape, n in shapes.most_common():
            print(f"{n / calls:6.2f} per caller  {shape}")
        applied = voice.applied - applied0
        async with services.db.transaction() as s:
            abandoned = await s.scalar(
                select(func.count())
                .select_from(m.Conversation)
                .where(m.Conversation.status == "abandoned", m.Conversation.inbox_id == inbox_id)
            )
            closed = await s.scalar(
                select(func.count())
                .select_from(m.Call)
                .where(m.Call.inbox_id == inbox_id, m.Call.ended_at.is_not(None))
            )
    finally:
        ami.EVENT_MASK = saved_mask
        await services.stop()
        await emu.close()
    if abandoned != calls or closed != calls:
        raise SystemExit(f"ingest ({mask}): {abandoned} abandoned / {closed} closed calls, expected {calls}")
    return {
        "calls": calls,
        "stream_events": stream,
        "wire_events": wire,
        "call_events_applied": applied,
        "seconds": round(elapsed, 3),
        "stream_events_per_second": round(stream / elapsed, 1),
        "wire_events_per_second": round(wire / elapsed, 1),
        "applied_events_per_second": round(applied / elapsed, 1),
        "calls_per_second": round(calls / elapsed, 1),
        "cpu_ms_per_call": round(cpu / calls * 1e3, 2),
        "cpu_us_per_stream_event": round(cpu / stream * 1e6, 1),
        "sql_statements_per_call": round(statements / calls, 2),
        "batched_transactions": voice.batches - batches0,
        "abandoned_persisted": abandoned,
    }


async def run(
    dsn: str,
    calls: int,
    latency_calls: int,
    out: Path,
    *,
    noise_varsets: int = 10,
    internal: int = 1,
    masks: tuple[str, ...] = ("mask",),
    show_sql: bool = False,
) -> dict[str, Any]:
    host = urlsplit(dsn).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("refusing to run against a non-loopback database")
    name = f"omni_bench_voice_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        settings = Settings(database_url=url, secret_key="bench-" + "x" * 32)
        settings.voice.enabled = True
        settings.routing.tick_seconds = 0.05
        result: dict[str, Any] = {"python": platform.python_version(), "cpu": platform.processor() or "?"}

        # --- 1. ingest: callers arrive and hang up while nobody is available ------------------
        result["loadavg_at_start"] = list(os.getloadavg())
        mix = {"noise_varsets": noise_varsets, "internal_calls_per_call": internal}
        floor = await floor_run(calls, mix, inbox_id=1)
        result["floor"] = floor
        for n, mask in enumerate(masks):
            result[f"ingest_{mask}"] = await ingest_run(settings, calls, mix, mask, n * calls, show_sql)
        result["loadavg_at_end"] = list(os.getloadavg())

        # --- 2. latency: caller joins → Originate sent, with operators free ----------------------
        if latency_calls <= 0:
            return result
        emu = AmiEmulator(free_port())
        await emu.start()
        settings.voice.ami_port = emu.port
        services = build_services(settings, run_background=True)
        voice = VoiceChannel(services)
        services.adapters.register(voice)
        services.relay.post_commit_sinks.append(voice.on_events)
        async with services.db.transaction() as s:
            ops = [
                await f.user(s, f"bop{i}", sip_extension=f"7{i:04d}", capacity=3, voice_weight=3)
                for i in range(latency_calls)
            ]
            q = await f.queue(s, "bench-voice", ops, wrap_up_seconds=0, operator_timeout_seconds=30)
            ib = await f.inbox(s, q, channel="voice", name="bench-line-2")
            inbox_id = ib.id
            for u in ops:
                await f.set_status(s, u, "available")
                emu.phones[u.sip_extension or ""] = "answer"
        await services.start()
        await wait_for(lambda: voice.ami.ready)
        for i in range(latency_calls):
            emu.incoming_call(f"+7926{i:07d}", inbox=inbox_id)
            n = i + 1
            await wait_for(lambda n=n: len(voice.connect_latencies) >= n, limit=30)
        lat = [x * 1000 for x in voice.connect_latencies]
        result["enqueue_to_originate_ms"] = {
            "calls": len(lat),
            "p50": round(statistics.median(lat), 2),
            "p99": round(pct(lat, 99), 2),
            "max": round(max(lat), 2),
            "tick_seconds": settings.routing.tick_seconds,
        }
        await services.stop()
        await emu.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="scripted calls for the ingest part")
    parser.add_argument(
        "--latency-calls", type=int, default=200, help="calls (and operators) for the latency part"
    )
    parser.add_argument(
        "--noise-varsets", type=int, default=10, help="VarSet flood per channel (0: the old, noise-free mix)"
    )
    parser.add_argument(
        "--internal-calls", type=int, default=1, help="extension-to-extension calls per contact-center call"
    )
    parser.add_argument(
        "--masks",
        default="mask",
        help="comma list of runs: mask (the adapter's Events mask), on (every event class)",
    )
    parser.add_argument(
        "--batch-effects",
        type=int,
        default=adapter.BATCH_EFFECTS,
        help="effects per transaction (1: one transaction per effect, as before batching)",
    )
    parser.add_argument(
        "--show-sql", action="store_true", help="print each statement shape with its count per caller"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/voice.json"))
    parser.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    args = parser.parse_args()
    if not args.dsn:
        raise SystemExit('set OMNI_TEST_PG_DSN (eval "$(scripts/services.sh start)")')
    adapter.BATCH_EFFECTS = args.batch_effects
    result = asyncio.run(
        run(
            args.dsn,
            args.calls,
            args.latency_calls,
            args.out,
            noise_varsets=args.noise_varsets,
            internal=args.internal_calls,
            masks=tuple(args.masks.split(",")),
            show_sql=args.show_sql,
        )
    )
    result["batch_effects"] = args.batch_effects
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    floor = result["floor"]
    print(f"load average {result['loadavg_at_start'][0]:.2f} -> {result['loadavg_at_end'][0]:.2f}")
    print(
        f"floor (bare panoramisk, Events: on): {floor['events_per_second']:,.0f} events/s, "
        f"{floor['cpu_us_per_event']} us CPU/event"
    )
    for key, run_ in result.items():
        if key.startswith("ingest_"):
            ratio = run_["stream_events_per_second"] / floor["events_per_second"]
            print(
                f"{key}: {run_['stream_events_per_second']:,.0f} stream events/s "
                f"({run_['wire_events_per_second']:,.0f} on the wire, "
                f"{run_['applied_events_per_second']:,.0f} applied), {run_['calls_per_second']} calls/s, "
                f"{run_['cpu_us_per_stream_event']} us CPU/event, "
                f"{run_['sql_statements_per_call']} SQL/call; ratio to the floor {ratio:.2f}"
            )


if __name__ == "__main__":
    main()
