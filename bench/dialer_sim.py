"""Discrete-event simulation of a dialing campaign, driving the production pacing controller.

Predictive (``omni.domain.outbound.pacing.Controller``, the same code the scheduler asks through
the ``Predictive`` policy), progressive (``policy.Progressive``: one line per free operator) and a
fixed ratio (``--ratio`` lines per free operator, VICIdial's "dial level") run side by side on the
same calls: for every configuration the three modes draw their calls from one seeded stream, so
the table compares pacing, not luck. Deterministic for a ``--seed``.

The world: ``operators`` agents; a placed call is answered by a person with the answer rate, after
a log-normal ring time (median 7 s, clipped to 2..24 s); the others are busy/congestion (30 %,
3..8 s) or ring out at the 25 s ring timeout (no answer). An answered call takes a free operator;
with none it waits ``drop_seconds`` (2 s) for one, else it is dropped (abandoned). Talk times are
log-normal (mean 120 s, sigma 0.6), wrap-up uniform 10..20 s. The scheduler ticks every second and
at once when an operator comes free (at most every 0.2 s, as the scheduler's loop). The controller
sees what ``pacing.measured_load`` gives it in production: ``DialStats`` over the rolling window
(the last 30 minutes, at most 1000 attempts, none younger than ``pacing.window_lag``) and the whole
run as "today", free operators, the age of each ringing line, answered calls waiting, operators
busy on the campaign with ``pacing.seconds_left`` from the measured means. The first ``--warmup``
minutes are not counted.

Figures per mode: abandon % (dropped of answered by a person), occupancy % (talk + wrap-up of
logged-in time), talk minutes per operator-hour. A predictive tick with more lines than its cap
is reported on stderr (none is expected); ``--verbose`` prints the decisions' reasons.

    .venv/bin/python bench/dialer_sim.py                       # the default table
    .venv/bin/python bench/dialer_sim.py --operators 50 --answer 0.3 --minutes 120
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omni.domain.outbound.pacing import (
    WINDOW_ATTEMPTS,
    WINDOW_MINUTES,
    Controller,
    seconds_left,
    window_lag,
)
from omni.domain.outbound.policy import DialStats, Load, Progressive

RING_TIMEOUT = 25.0
TALK_MEAN, TALK_SIGMA = 120.0, 0.6
WRAP_MIN, WRAP_MAX = 10.0, 20.0
RING_MEDIAN, RING_SIGMA = 7.0, 0.5
FAST_FAIL = 0.3
DROP_SECONDS = 2.0
TICK = 1.0
MIN_GAP = 0.2
"""As ``scheduler.MIN_GAP_SECONDS``: nudges closer than this are served by one tick."""


@dataclass(frozen=True)
class Call:
    human: bool
    ring: float
    """Seconds to the answer (human) or to the end (not)."""
    talk: float
    wrap: float


class Calls:
    """The seeded stream of calls one configuration's modes all draw from, in order."""

    def __init__(self, seed: int, answer_rate: float) -> None:
        self.rng = random.Random(seed)
        self.p = answer_rate
        self.drawn: list[Call] = []

    def get(self, i: int) -> Call:
        while len(self.drawn) <= i:
            r = self.rng
            human = r.random() < self.p
            if human:
                ring = min(max(r.lognormvariate(math.log(RING_MEDIAN), RING_SIGMA), 2.0), RING_TIMEOUT - 1)
            elif r.random() < FAST_FAIL:
                ring = r.uniform(3.0, 8.0)
            else:
                ring = RING_TIMEOUT
            mu = math.log(TALK_MEAN) - TALK_SIGMA**2 / 2
            self.drawn.append(
                Call(human, ring, r.lognormvariate(mu, TALK_SIGMA), r.uniform(WRAP_MIN, WRAP_MAX))
            )
        return self.drawn[i]


@dataclass
class Window:
    """Running sums over the rolling window, as ``pacing.measure`` reads them from the table:
    attempts placed in the last ``WINDOW_MINUTES`` (at most ``WINDOW_ATTEMPTS``) but at least
    ``pacing.window_lag`` ago; talk and wrap-up of the calls finished in the window plus the time
    so far of those still talking."""

    lag: float
    placed: list[tuple[float, int]] = field(default_factory=list)
    """(placed at, call index), in order"""
    outcome: dict[int, tuple[bool, bool, float]] = field(default_factory=dict)
    """call index -> (human, dropped, ring seconds: to the answer, or to the end)"""
    lo: int = 0
    hi: int = 0
    done: deque[tuple[float, float, float]] = field(default_factory=deque)
    """(wrap-up end, talk, wrap) of finished conversations"""
    n: int = 0
    human: int = 0
    dropped: int = 0
    ring: float = 0.0
    fail: float = 0.0
    talk: float = 0.0
    wrap: float = 0.0
    human_today: int = 0
    dropped_today: int = 0

    def end(self, i: int, human: bool, dropped: bool, ring: float) -> None:
        self.outcome[i] = (human, dropped, ring)
        self.human_today += human
        self.dropped_today += dropped

    def finished(self, t: float, talk: float, wrap: float) -> None:
        self.done.append((t, talk, wrap))
        self.talk += talk
        self.wrap += wrap

    def _add(self, i: int, sign: int) -> None:
        h, d, r = self.outcome.get(i, (False, False, 0.0))
        if i not in self.outcome:
            return  # still open: not an ended attempt
        self.n += sign
        self.human += sign * h
        self.dropped += sign * d
        self.ring += sign * (r if h else 0.0)
        self.fail += sign * (0.0 if h else r)

    def stats(self, now: float, talking: float = 0.0) -> DialStats:
        """``talking``: seconds so far of the calls still talking (``measure``'s censored mean)."""
        while self.hi < len(self.placed) and self.placed[self.hi][0] <= now - self.lag:
            self._add(self.placed[self.hi][1], 1)
            self.hi += 1
        since = now - WINDOW_MINUTES * 60
        while self.lo < self.hi and (self.placed[self.lo][0] < since or self.hi - self.lo > WINDOW_ATTEMPTS):
            self._add(self.placed[self.lo][1], -1)
            self.lo += 1
        while self.done and (self.done[0][0] < since or len(self.done) > WINDOW_ATTEMPTS):
            _, tk, w = self.done.popleft()
            self.talk -= tk
            self.wrap -= w
        k = len(self.done)
        return DialStats(
            samples=self.n,
            answer_rate=self.human / self.n if self.n else 0.0,
            ring_seconds=self.ring / self.human if self.human else 0.0,
            fail_seconds=self.fail / (self.n - self.human) if self.n > self.human else 0.0,
            talk_seconds=(self.talk + talking) / k if k else 0.0,
            wrap_seconds=self.wrap / k if k else 0.0,
            abandon_rate=self.dropped / self.human if self.human else 0.0,
            abandon_rate_today=self.dropped_today / self.human_today if self.human_today else 0.0,
            answered_today=self.human_today,
            answered=self.human,
            talked=k,
        )


@dataclass
class Result:
    mode: str
    answered: int = 0
    dropped: int = 0
    busy: float = 0.0
    talk: float = 0.0
    span: float = 0.0
    operators: int = 0
    max_lines_per_operator: float = 0.0
    over_cap: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    """Predictive: decisions per reason (``pacing.Decision.reason``) in the measured time."""

    @property
    def abandon(self) -> float:
        return 100.0 * self.dropped / self.answered if self.answered else 0.0

    @property
    def occupancy(self) -> float:
        return 100.0 * self.busy / (self.operators * self.span)

    @property
    def talk_per_hour(self) -> float:
        return self.talk / 60.0 / (self.operators * self.span / 3600.0)


def simulate(
    mode: str,
    operators: int,
    calls: Calls,
    *,
    minutes: float,
    warmup: float,
    ratio: float = 2.0,
    target_pct: float = 3.0,
    max_lines: float = 3.0,
    controller: Controller | None = None,
) -> Result:
    controller = controller or Controller()
    progressive = Progressive()
    t0, t1 = warmup * 60.0, (warmup + minutes) * 60.0
    res = Result(mode, operators=operators, span=t1 - t0)
    events: list[tuple[float, int, str, int]] = []
    seq = 0

    def push(t: float, kind: str, ref: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, ref))

    free: list[int] = list(range(operators))
    state: dict[int, tuple[bool, float]] = {}
    """busy operator -> (wrapping, since)"""
    waiting: deque[tuple[int, float]] = deque()
    """answered calls with no operator yet: (call index, answered at)"""
    placed_at: dict[int, float] = {}
    lines = 0
    drawn = 0
    window = Window(window_lag(RING_TIMEOUT, DROP_SECONDS))

    def overlap(a: float, b: float) -> float:
        return max(0.0, min(b, t1) - max(a, t0))

    def take(op: int, i: int, now: float) -> None:
        call = calls.get(i)
        state[op] = (False, now)
        push(now + call.talk, "talked", op * 10_000_000 + i)

    last_tick = -1.0
    nudged = False

    def tick(now: float) -> None:
        nonlocal lines, drawn, last_tick
        last_tick = now
        free_now = len(free)
        if mode == "predictive":
            stats = window.stats(now, sum(now - since for w, since in state.values() if not w))
            left = tuple(seconds_left(stats, now - since, wrapping=w) for w, since in state.values())
            load = Load(
                free_operators=free_now,
                open_attempts=lines,
                max_concurrency=operators * 10,
                operators=free_now + len(state),
                busy_seconds_left=left,
                stats=stats,
                max_lines_per_operator=max_lines,
                target_abandon_pct=target_pct,
                drop_seconds=DROP_SECONDS,
                ringing_seconds=tuple(now - t for t in placed_at.values()),
                waiting=len(waiting),
            )
            decision = controller.decide(load)
            n = decision.calls
            if t0 <= now < t1:
                res.reasons[decision.reason] = res.reasons.get(decision.reason, 0) + 1
        elif mode == "progressive":
            n = progressive.wanted(Load(free_now, lines, operators * 10))
        else:
            n = max(0, math.floor(ratio * free_now) - lines)
        for _ in range(n):
            i = drawn
            drawn += 1
            call = calls.get(i)
            placed_at[i] = now
            window.placed.append((now, i))
            lines += 1
            push(now + call.ring, "answer" if call.human else "end", i)
        if mode == "predictive" and lines > max(1, math.floor(max_lines * operators)):
            res.over_cap += 1

    push(0.0, "tick", 0)
    while events:
        now, _, kind, ref = heapq.heappop(events)
        if now > t1:
            break
        if kind == "tick":
            tick(now)
            push(now + TICK, "tick", 0)
        elif kind == "nudge":
            nudged = False
            tick(now)
        elif kind == "end":
            lines -= 1
            placed_at.pop(ref)
            window.end(ref, False, False, calls.get(ref).ring)
        elif kind == "answer":
            ring = now - placed_at.pop(ref)
            if free:
                lines -= 1
                window.end(ref, True, False, ring)
                take(free.pop(0), ref, now)
                if t0 <= now < t1:
                    res.answered += 1
            else:
                waiting.append((ref, now))
                push(now + DROP_SECONDS, "drop", ref)
        elif kind == "drop":
            if waiting and any(i == ref for i, _ in waiting):
                waiting.remove(next(w for w in waiting if w[0] == ref))
                lines -= 1
                window.end(ref, True, True, calls.get(ref).ring)
                if t0 <= now < t1:
                    res.answered += 1
                    res.dropped += 1
        elif kind == "talked":
            op, i = divmod(ref, 10_000_000)
            call = calls.get(i)
            res.talk += overlap(now - call.talk, now)
            state[op] = (True, now)
            push(now + call.wrap, "wrapped", ref)
        elif kind == "wrapped":
            op, i = divmod(ref, 10_000_000)
            call = calls.get(i)
            res.busy += overlap(now - call.talk - call.wrap, now)
            window.finished(now, call.talk, call.wrap)
            del state[op]
            if waiting:
                j, answered_at = waiting.popleft()
                lines -= 1
                window.end(j, True, False, calls.get(j).ring)
                take(op, j, now)
                if t0 <= answered_at < t1:
                    res.answered += 1
            else:
                free.append(op)
                # An operator came free: the scheduler is nudged (at most every MIN_GAP).
                if now - last_tick >= MIN_GAP:
                    tick(now)
                elif not nudged:
                    nudged = True
                    push(last_tick + MIN_GAP, "nudge", 0)
    for wrapping, since in state.values():  # still busy at the end
        res.busy += overlap(since, t1)
        if not wrapping:
            res.talk += overlap(since, t1)
    res.max_lines_per_operator = max_lines
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--operators", type=int, nargs="*", default=[10, 50, 200])
    ap.add_argument("--answer", type=float, nargs="*", default=[0.15, 0.30, 0.60])
    ap.add_argument("--minutes", type=float, default=60.0, help="measured simulated minutes per run")
    ap.add_argument("--warmup", type=float, default=15.0, help="simulated minutes not counted")
    ap.add_argument(
        "--ratio", type=float, default=2.0, help="lines per free operator of the fixed-ratio mode"
    )
    ap.add_argument("--target", type=float, default=3.0, help="target abandon %%")
    ap.add_argument("--max-lines", type=float, default=3.0, help="lines per operator cap (predictive)")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--verbose", action="store_true", help="the predictive decisions' reasons, to stderr")
    args = ap.parse_args()
    began = time.perf_counter()
    modes = ("predictive", "progressive", f"ratio {args.ratio:g}")
    head = "| operators | answer % | " + " | ".join(
        f"{name}: abandon % / occupancy % / talk min/h" for name in modes
    )
    print(head + " |")
    print("|---:|---:|" + "---|" * len(modes))
    goal: Result | None = None
    for k, ops in enumerate(args.operators):
        for j, p in enumerate(args.answer):
            calls = Calls(args.seed * 1000 + k * 10 + j, p)
            cells = []
            for mode in modes:
                r = simulate(
                    mode.split()[0],
                    ops,
                    calls,
                    minutes=args.minutes,
                    warmup=args.warmup,
                    ratio=args.ratio,
                    target_pct=args.target,
                    max_lines=args.max_lines,
                )
                if mode == "predictive" and args.verbose:
                    print(f"{ops} ops {p:.0%}: {r.reasons}", file=sys.stderr)
                if r.over_cap:
                    print(f"controller over its cap {r.over_cap} times", file=sys.stderr)
                cells.append(f"{r.abandon:.1f} / {r.occupancy:.0f} / {r.talk_per_hour:.1f}")
                if mode == "predictive" and ops == 50 and abs(p - 0.30) < 1e-9:
                    goal = r
            print(f"| {ops} | {100 * p:.0f} | " + " | ".join(cells) + " |", flush=True)
    took = time.perf_counter() - began
    print(f"\n{took:.1f} s; seed {args.seed}, {args.minutes:g} min measured after {args.warmup:g} min")
    if goal is not None:
        ok = goal.abandon <= args.target and goal.occupancy >= 85.0
        print(
            f"goal (50 operators, 30 % answer): abandon {goal.abandon:.2f} % <= {args.target:g} %, "
            f"occupancy {goal.occupancy:.1f} % >= 85 %: {'met' if ok else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
