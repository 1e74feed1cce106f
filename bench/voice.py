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
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels.voice import VoiceChannel
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


async def run(dsn: str, calls: int, latency_calls: int, out: Path) -> dict[str, Any]:
    host = urlsplit(dsn).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("refusing to run against a non-loopback database")
    name = f"omni_bench_voice_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    emu = AmiEmulator(free_port())
    await emu.start()
    try:
        await asyncio.to_thread(upgrade, url)
        settings = Settings(database_url=url, secret_key="bench-" + "x" * 32)
        settings.voice.enabled = True
        settings.voice.ami_port = emu.port
        settings.voice.ami_secret = emu.secret
        settings.routing.tick_seconds = 0.05
        result: dict[str, Any] = {"python": platform.python_version(), "cpu": platform.processor() or "?"}

        # --- 1. ingest: callers arrive and hang up while nobody is available ------------------
        services = build_services(settings, run_background=False)
        voice = VoiceChannel(services)
        services.adapters.register(voice)
        await services.start()
        await wait_for(lambda: voice.ami.ready)
        async with services.db.transaction() as s:
            q = await f.queue(s, "bench-wait", [])
            ib = await f.inbox(s, q, channel="voice", name="bench-line")
            inbox_id = ib.id
        received = 0
        original = voice._on_ami

        def counting(message: Any) -> None:
            nonlocal received
            received += 1
            original(message)

        voice.ami.on_event = counting
        sent0, applied0 = emu.events_sent, voice.applied
        t0 = time.perf_counter()
        for i in range(calls):
            ch = emu.incoming_call(f"+7916{i:07d}", inbox=inbox_id)
            emu.hangup(ch.uniqueid)
            if i % 50 == 0:
                await asyncio.sleep(0)
        total = emu.events_sent - sent0
        await wait_for(lambda: received >= total)
        await voice.drain()
        elapsed = time.perf_counter() - t0
        applied = voice.applied - applied0
        async with services.db.transaction() as s:
            abandoned = await s.scalar(
                select(func.count()).select_from(m.Conversation).where(m.Conversation.status == "abandoned")
            )
        result["ingest"] = {
            "calls": calls,
            "ami_events_sent": total,
            "call_events_applied": applied,
            "seconds": round(elapsed, 3),
            "ami_events_per_second": round(total / elapsed, 1),
            "applied_events_per_second": round(applied / elapsed, 1),
            "calls_per_second": round(calls / elapsed, 1),
            "abandoned_persisted": abandoned,
        }
        await services.stop()

        # --- 2. latency: caller joins → Originate sent, with operators free ----------------------
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
    finally:
        await emu.close()
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
    parser.add_argument("--out", type=Path, default=Path("bench/results/voice.json"))
    parser.add_argument("--dsn", default=os.environ.get("OMNI_TEST_PG_DSN", ""))
    args = parser.parse_args()
    if not args.dsn:
        raise SystemExit('set OMNI_TEST_PG_DSN (eval "$(scripts/services.sh start)")')
    result = asyncio.run(run(args.dsn, args.calls, args.latency_calls, args.out))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
