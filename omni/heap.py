"""The collector and a long-running node.

After start-up a node holds a large, permanent heap: modules, ORM mappers, compiled
statements, routes, catalogs. A full (generation 2) collection walks all of it — about 100 ms
here — and lands on whichever request happened to allocate enough to trigger it: the month
operator-status report took 90 ms most runs and 200–260 ms every few runs only from that
(bench/reports.py, docs/reports.md). ``gc.freeze`` moves what is alive at start-up out of the
collector's reach; what requests allocate later is collected as before.

What a busy node allocates later is mostly short-lived (a message's rows, events, packets),
but with the default young threshold (700 allocations) a young collection runs every few
hundred microseconds and catches whatever is in flight across an ``await``; those objects are
promoted and, a quarter of the old generation later, force a full collection of what the
sockets and pools keep alive. With 1,000 widget sockets that was a 200–400 ms pause every few
seconds at 80 messages a second — over the widget's latency goal on its own — and about a tenth
of the node's CPU (bench/README.md, widget, gc15). With ``YOUNG_THRESHOLD`` most of that is
dead before the collector looks: no full collection in the same minutes and a tenth of the
collector's time.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "freeze_startup_heap", "thaw_heap"]

YOUNG_THRESHOLD = 20_000
"""Allocations (less deallocations) between two young collections on a running node."""

_saved: list[tuple[int, int, int]] = []


def freeze_startup_heap() -> None:
    """Collect once, then keep everything still alive out of later full collections, and
    collect the young generation less often."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    _saved.append((young, middle, old))
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)


def thaw_heap() -> None:
    """Undo :func:`freeze_startup_heap` when a node stops (tests start many apps in one
    process: a stopped app's objects must become collectable again). The test suite's own
    processes replace both with a single freeze of their heap (tests/conftest.py)."""
    gc.unfreeze()
    if _saved:
        gc.set_threshold(*_saved.pop())
