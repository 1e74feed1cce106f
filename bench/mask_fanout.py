"""What masked fan-out costs per event (issue 16, mask16): ``omni.realtime.pii``.

In-process, no database or Redis: python-socketio's ``AsyncManager`` with N staff sockets in
one queue room (a share of them in its masked twin), the packet send stubbed out so the
figure is the emitter's own work (masking, encoding, picking recipients, scheduling sends).
Compared in the same run:

- ``before``: one ``emit`` of the full wire to the plain rooms (every socket in them);
- ``after, nothing to mask``: ``pii.masked_wire`` finds nothing, one emit to the plain rooms
  and their twins;
- ``after, a phone in the text``: the wire masked once, two emits (plain rooms, twins).

    .venv/bin/python bench/mask_fanout.py --sockets 1000 --masked-share 0.5 --events 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import socketio

from omni.realtime import pii

NS = "/operator"


def message_event(seq: int, body: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": "message.created",
        "at": "2026-11-30T12:00:00+00:00",
        "conversation_id": 5,
        "queue_id": 1,
        "user_id": None,
        "data": {
            "id": seq,
            "conversation_id": 5,
            "direction": "in",
            "author_user_id": None,
            "body": body,
            "attachments": [],
            "client_id": None,
            "external_id": f"tg-{seq}",
            "delivery": "stored",
            "created_at": "2026-11-30T12:00:00+00:00",
            "channel": "telegram",
        },
    }


async def build(sockets: int, masked_share: float) -> tuple[socketio.AsyncServer, list[int]]:
    sio = socketio.AsyncServer(async_mode="asgi")
    sent = [0]

    async def send(eio_sid: str, pkt: Any) -> None:
        sent[0] += 1

    sio._send_eio_packet = send  # the transport is not what is measured
    manager = sio.manager
    manager.initialize()
    masked_count = int(sockets * masked_share)
    for i in range(sockets):
        sid = await manager.connect(f"eio-{i}", NS)
        await manager.enter_room(sid, NS, pii.twin("queue:1", i < masked_count))
    return sio, sent


async def run_case(sio: socketio.AsyncServer, events: list[dict[str, Any]], mode: str) -> float:
    targets = ["all", "queue:1", "conversation:5"]
    start = time.perf_counter()
    for wire in events:
        if mode == "before":
            await sio.emit("event", wire, to=targets, namespace=NS)
        else:
            await pii.emit_event(sio, NS, wire, pii.masked_wire(wire), targets)
        await asyncio.sleep(0)  # let the send tasks run, as the event loop would between events
    # drain the scheduled sends
    pending = asyncio.all_tasks() - {asyncio.current_task()}
    if pending:
        await asyncio.gather(*pending)
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--masked-share", type=float, default=0.5)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results/mask_fanout.json"))
    args = parser.parse_args()

    plain = [message_event(i, "Hello, where is my order? It was due yesterday.") for i in range(args.events)]
    phone = [message_event(i, "Call me back at +7 916 123-45-12, thanks") for i in range(args.events)]
    results: dict[str, Any] = {
        "sockets": args.sockets,
        "masked_share": args.masked_share,
        "events": args.events,
    }

    # Masking alone, per event.
    for key, events in (("mask_us_per_event_plain_text", plain), ("mask_us_per_event_with_phone", phone)):
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for w in events:
                pii.masked_wire(w)
            best = min(best, time.perf_counter() - t0)
        results[key] = best / args.events * 1e6

    for name, mode, events in (
        ("before", "before", plain),
        ("after_nothing_to_mask", "after", plain),
        ("after_phone_in_text", "after", phone),
    ):
        # Before the change every socket sat in the plain room.
        sio, sent = await build(args.sockets, 0.0 if mode == "before" else args.masked_share)
        await run_case(sio, events[:50], mode)  # warm-up
        runs = []
        for _ in range(args.repeat):  # the best of several: the machine is shared
            sent[0] = 0
            runs.append(await run_case(sio, events, mode))
        seconds = min(runs)
        results[name] = {
            "us_per_event": seconds / args.events * 1e6,
            "us_per_delivery": seconds / max(sent[0], 1) * 1e6,
            "deliveries_per_event": sent[0] / args.events,
        }
        print(f"{name}: {results[name]}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
