"""The collector and a long-running node.

After start-up a node holds a large, permanent heap: modules, ORM mappers, compiled
statements, routes, catalogs. A full (generation 2) collection walks all of it — about 100 ms
here — and lands on whichever request happened to allocate enough to trigger it: the month
operator-status report took 90 ms most runs and 200–260 ms every few runs only from that
(bench/reports.py, docs/reports.md). ``gc.freeze`` moves what is alive at start-up out of the
collector's reach; what requests allocate later is collected as before.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap", "thaw_heap"]


def freeze_startup_heap() -> None:
    """Collect once, then keep everything still alive out of later full collections."""
    gc.collect()
    gc.freeze()


def thaw_heap() -> None:
    """Undo :func:`freeze_startup_heap` when a node stops (tests start many apps in one
    process: a stopped app's objects must become collectable again). The test suite's own
    processes replace both with a single freeze of their heap (tests/conftest.py)."""
    gc.unfreeze()
