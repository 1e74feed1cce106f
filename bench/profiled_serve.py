"""``omni`` under cProfile, counting CPU time only, switched on and off by signals.

``bench/widget.py --cprofile PATH`` starts the Omni server as
``python bench/profiled_serve.py PATH serve …`` and sends ``SIGUSR1`` when the timed phase
starts and ``SIGUSR2`` when it ends; the profile of that window is written to ``PATH``
(``pstats`` format). The timer is ``time.process_time``: a function's time is the CPU the
server spent in it, not the time its coroutine waited for PostgreSQL or for a share of a
busy machine, so the figures hardly depend on the load (cProfile's own overhead inflates
Python-heavy code, about twofold; compare shares and call counts, not absolute times).

Read it with ``python bench/profiled_serve.py --summary PATH [--per N]`` (``N``: the
messages of the window, to print calls and CPU per message).
"""

from __future__ import annotations

import cProfile
import pstats
import signal
import sys
import time
from types import FrameType

KEY_FUNCTIONS = (
    ("channels/widget/__init__.py", "on_message"),
    ("omni/realtime/operator.py", "on_send"),
    ("omni/domain/conversations/inbound.py", "do_ingest_inbound"),
    ("omni/domain/conversations/handling.py", "check_send_message"),
    ("omni/domain/events.py", "relay_once"),
    ("omni/domain/events.py", "_post_commit"),
    ("omni/channels.py", "__call__"),
    ("channels/widget/__init__.py", "send"),
    ("omni/domain/conversations/handling.py", "do_mark_deliveries"),
    ("omni/realtime/__init__.py", "emit_all"),
    ("omni/realtime/live.py", "_handle_emit"),
    ("omni/realtime/live.py", "_publish"),
    ("omni/realtime/live.py", "check"),
    ("omni/realtime/pii.py", "masked_wire"),
    ("omni/domain/events.py", "checked_payload"),
    ("omni/db/__init__.py", "_run"),
    ("sqlalchemy/orm/session.py", "commit"),
    ("sqlalchemy/orm/session.py", "flush"),
    ("sqlalchemy/engine/base.py", "_execute_context"),
    ("socketio/async_server.py", "_handle_eio_message"),
    ("socketio/async_server.py", "_send_packet"),
    ("socketio/async_server.py", "_trigger_event"),
    ("socketio/async_manager.py", "emit"),
    ("socketio/packet.py", "encode"),
    ("socketio/packet.py", "decode"),
    ("engineio/async_socket.py", "send"),
    ("uvicorn/protocols/websockets/wsproto_impl.py", "send"),
    ("uvicorn/protocols/websockets/wsproto_impl.py", "data_received"),
    ("omni/domain/routing.py", "do_route_pending"),
    ("omni/domain/routing_pg.py", "try_assign"),
)


def serve(path: str, argv: list[str]) -> int:
    from omni.cli import main

    profiler = cProfile.Profile(time.process_time)

    def start(_signum: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(path)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = ["omni", *argv]
    return int(main() or 0)


def summary(path: str, per: int) -> None:
    stats = pstats.Stats(path)
    raw = stats.stats  # type: ignore[attr-defined]  # the documented-by-use table
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values())
    div = max(per, 1)
    print(f"CPU in profiled code: {total:.2f} s; per message: {total * 1000 / div:.2f} ms (n={per})")
    print(f"{'function':60s} {'calls/msg':>9s} {'cum ms/msg':>10s} {'share':>6s}")
    for suffix, name in KEY_FUNCTIONS:
        for (file, _line, func), (_cc, nc, _tt, ct, _callers) in raw.items():
            if func == name and file.endswith(suffix):
                print(f"{suffix + ':' + name:60s} {nc / div:9.2f} {ct * 1000 / div:10.3f} {ct / total:6.1%}")
    print("\ntop 40 by own CPU:")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:40]
    for (file, line, func), (_cc, nc, tt, _ct, _callers) in rows:
        where = "/".join(file.split("/")[-3:])
        share = tt / total
        print(f"{tt * 1000 / div:8.3f} ms/msg {share:6.1%} {nc / div:8.2f} calls/msg  {where}:{line} {func}")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--summary":
        n = int(sys.argv[sys.argv.index("--per") + 1]) if "--per" in sys.argv else 1
        summary(sys.argv[2], n)
    else:
        sys.exit(serve(sys.argv[1], sys.argv[2:]))
