"""The collector's pauses in an Omni server under a benchmark (bench/README.md, gc15).

Not part of Omni. Put this directory first on ``PYTHONPATH`` of the benchmark, whose server
inherits it (an absolute path: the server runs elsewhere); only a process started with
``serve`` in its argv is probed::

    PYTHONPATH=$PWD/bench/gcprobe .venv/bin/python bench/widget.py --widgets 1000 --rate 80 ...

Every 2 s the server appends a JSON line to ``$GCPROBE_DIR/stats-<pid>.jsonl`` (default
``/tmp/omni-gcprobe``; not an ``OMNI_`` name, which ``bench/widget.py`` keeps from its
server): collections per generation, seconds spent, the longest pause, pauses over 20 ms since
the last line, and every 10 s the tracked and frozen object counts. Creating
the file ``census`` in that directory makes the server write the 80 commonest tracked types,
then time two full collections in a row (``census-<pid>-<time>.txt``).
"""

from __future__ import annotations

import sys

if "serve" in sys.argv:
    import gc
    import json
    import os
    import threading
    import time
    from collections import Counter
    from pathlib import Path
    from typing import Any

    OUT = Path(os.environ.get("GCPROBE_DIR", "/tmp/omni-gcprobe"))
    OUT.mkdir(parents=True, exist_ok=True)
    _started: dict[int, float] = {}
    _stats: dict[str, Any] = {"n": [0, 0, 0], "s": [0.0, 0.0, 0.0], "max": [0.0, 0.0, 0.0], "big": []}

    def _on_gc(phase: str, info: dict[str, Any]) -> None:
        generation = info["generation"]
        now = time.perf_counter()
        if phase == "start":
            _started[generation] = now
            return
        took = now - _started.get(generation, now)
        _stats["n"][generation] += 1
        _stats["s"][generation] += took
        _stats["max"][generation] = max(_stats["max"][generation], took)
        if took > 0.02:
            _stats["big"].append((round(time.time(), 2), generation, round(took * 1000, 1)))

    def _census(pid: int) -> None:
        counts = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
        full = []
        for _ in range(2):
            t0 = time.perf_counter()
            gc.collect(2)
            full.append(round((time.perf_counter() - t0) * 1000, 1))
        lines = [f"full collections twice: {full} ms; tracked {sum(counts.values())}"]
        lines += [f"{n} {name}" for name, n in counts.most_common(80)]
        (OUT / f"census-{pid}-{int(time.time())}.txt").write_text("\n".join(lines) + "\n")

    def _report() -> None:
        pid = os.getpid()
        stats_path = OUT / f"stats-{pid}.jsonl"
        tick = 0
        while True:
            time.sleep(2)
            tick += 1
            extra = {}
            if tick % 5 == 0:
                extra = {"objects": len(gc.get_objects()), "frozen": gc.get_freeze_count()}
            request = OUT / "census"
            if request.exists():
                request.unlink()
                _census(pid)
            line = {"t": round(time.time(), 1), **_stats, "counts": gc.get_count(), **extra}
            with stats_path.open("a") as f:
                f.write(json.dumps(line) + "\n")
            _stats["big"] = []

    gc.callbacks.append(_on_gc)
    threading.Thread(target=_report, name="gcprobe", daemon=True).start()
