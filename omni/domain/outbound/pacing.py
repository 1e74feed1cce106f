"""Predictive pacing: how many calls to place ahead of operators becoming free.

``Controller`` is a pure function of a ``policy.Load`` (no clock, no I/O), so the scheduler (through
the ``Predictive`` policy registered here) and the simulator ``bench/dialer_sim.py`` run the very
same code. ``measure`` reads the campaign's recent attempts into ``DialStats`` and
``measured_load`` adds who is free and who will be free soon. The algorithm, its inputs, the
fallback rules and the simulator's figures are in docs/dialer.md ("Predictive pacing").

The model, per decision: each new line is answered by a person with the measured answer rate
``p``, each line ringing now with the chance that a call of its age still ringing is answered
(old lines are mostly no-answers), each answered call waiting for an operator surely; the
operators who can take those answers are the free ones plus each busy operator of the campaign
with the chance that its time left (Erlang around ``seconds_left``) ends within the horizon ``H``
(mean time to answer + ``drop_seconds``). Answers minus operators is taken as normal; its
expected positive part is the expected number of drops, and ``n`` is the largest count whose
expected drops stay within a share (``Controller.margin``) of the target abandon rate of the
expected answers (never fewer than progressive). Fallback to progressive (one line per free
operator) when the window has too few attempts, answers or finished calls, and — "strict" as
Genesys calls it — while the abandon rate of the window or of today is over the target. Lines
never exceed ``max_lines_per_operator`` × operators, nor the campaign's ``max_concurrency``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.outbound import DialMode, Outcome
from omni.domain.outbound import policy
from omni.domain.outbound.policy import DialStats, Load

__all__ = [
    "MIN_ANSWERED",
    "MIN_SAMPLES",
    "WINDOW_ATTEMPTS",
    "WINDOW_MINUTES",
    "Controller",
    "Decision",
    "Predictive",
    "measure",
    "measured_load",
    "seconds_left",
    "window_lag",
]

WINDOW_MINUTES = 30
"""The rolling window: attempts created in the last half hour..."""
WINDOW_ATTEMPTS = 1000
"""...at most the latest thousand of them (a busy campaign's half hour is many more; a thousand
calls measure rates to about ±1.5 points and keep the per-tick read small)."""
MIN_SAMPLES = 50
"""Ended attempts in the window below which the rates are not trusted (progressive)."""
MIN_ANSWERED = 10
"""Answered calls in the window below which talk time and drops are not trusted (progressive)."""
HUMAN = (Outcome.ANSWERED, Outcome.DROPPED)
"""Outcomes of calls a person answered: both needed an operator (a drop is one that got none)."""
NOT_PLACED = (Outcome.SKIPPED, Outcome.REFUSED)
LAG_MARGIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Decision:
    """How many calls to place now and why (logs, the simulator's table, tests)."""

    calls: int
    mode: str
    """``predictive`` or ``progressive`` (the fallback)."""
    reason: str
    """``model``, ``cap`` (the model wanted more than the lines cap), ``few_samples``,
    ``over_target_window``, ``over_target_today``."""


def _progressive(load: Load, limit: int, reason: str) -> Decision:
    """One line per free operator: no more lines than free operators can answer."""
    return Decision(max(0, min(load.free_operators - load.open_attempts, limit)), "progressive", reason)


def _excess(mean: float, var: float) -> float:
    """E[max(D, 0)] for D ~ N(mean, var)."""
    if var <= 1e-12:
        return max(mean, 0.0)
    sd = math.sqrt(var)
    z = mean / sd
    cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return mean * cdf + sd * pdf


def _within(horizon: float, mean: float, shape: int) -> float:
    """P(X <= horizon) for X ~ Gamma(shape, mean / shape), an integer shape (Erlang)."""
    x = shape * horizon / max(mean, 0.1)
    if shape == 3:  # the default, once per busy operator and tick: no loop
        return max(0.0, 1.0 - math.exp(-x) * (1.0 + x + 0.5 * x * x))
    term, total = 1.0, 1.0
    for i in range(1, shape):
        term *= x / i
        total += term
    return max(0.0, 1.0 - math.exp(-x) * total)


def _still_answers(p: float, age: float, ring: float, fail: float) -> float:
    """P(a person answers | the line has rung ``age`` seconds without an end)."""
    if fail <= 0.0 or ring <= 0.0:
        return p
    answered = p * math.exp(-age / ring)
    failed = (1.0 - p) * math.exp(-age / fail)
    return answered / (answered + failed) if answered + failed > 0.0 else 0.0


@dataclass(frozen=True, slots=True)
class Controller:
    """The predictive pacing decision (module docstring). Pure and deterministic."""

    margin: float = 0.15
    """Share of the target abandon rate the model's expected drops may use; the rest absorbs
    what the model does not see (talk times longer than their mean, bursts of answers). Tuned
    with ``bench/dialer_sim.py``."""
    shape: int = 3
    """How concentrated a busy operator's time left is around its expected value (the shape of
    an Erlang distribution; 1 = exponential). Tuned with ``bench/dialer_sim.py``."""
    continuity: float = 0.5
    """Added to answers minus operators before the normal approximation: both are counts, and
    for a small team the approximation alone understates the chance of one answer too many."""
    min_samples: int = MIN_SAMPLES
    min_answered: int = MIN_ANSWERED

    def cap(self, load: Load) -> int:
        """Lines (open attempts) the campaign may have at most now."""
        lines = math.floor(load.max_lines_per_operator * max(load.operators, load.free_operators) + 1e-9)
        return max(0, min(lines, load.max_concurrency))

    def decide(self, load: Load) -> Decision:
        limit = max(0, self.cap(load) - load.open_attempts)
        stats = load.stats
        target = max(0.0, load.target_abandon_pct) / 100.0
        if (
            stats is None
            or stats.samples < self.min_samples
            or stats.answered < self.min_answered
            or stats.talked < self.min_answered
        ):
            return _progressive(load, limit, "few_samples")
        if stats.abandon_rate > target:
            return _progressive(load, limit, "over_target_window")
        if stats.abandon_rate_today > target:
            return _progressive(load, limit, "over_target_today")
        floor = _progressive(load, limit, "model").calls
        p = min(max(stats.answer_rate, 0.0), 1.0)
        if p <= 0.0 or limit <= 0:
            return Decision(floor, "predictive", "model")
        horizon = max(stats.ring_seconds, 1.0) + max(load.drop_seconds, 0.0)
        # Operators able to take an answer within the horizon: the free ones for sure, each busy
        # one with the chance that its time left (gamma distributed around its expected value:
        # a wrap-up ends about when expected, a call rarely ends in the next seconds) ends by then.
        chances = [_within(horizon, left, self.shape) for left in load.busy_seconds_left]
        ready = load.free_operators + sum(chances)
        ready_var = sum(q * (1.0 - q) for q in chances)
        allowed = target * self.margin

        # Lines ringing now: each is answered with the chance that a call of its age still
        # ringing is one a person will answer (answer and failure times taken as exponential
        # with their measured means: a line that has rung long is mostly a no-answer).
        if load.ringing_seconds is None:
            ringing = [p] * max(0, load.open_attempts - load.waiting)
        else:
            ringing = [
                _still_answers(p, age, stats.ring_seconds, stats.fail_seconds) for age in load.ringing_seconds
            ]
        open_answers = float(load.waiting) + sum(ringing)
        open_var = sum(q * (1.0 - q) for q in ringing)

        def fits(n: int) -> bool:
            answers = open_answers + n * p
            var = open_var + n * p * (1.0 - p) + ready_var
            return _excess(answers - ready + self.continuity, var) <= allowed * answers

        if fits(limit):
            return Decision(max(floor, limit), "predictive", "cap" if limit > floor else "model")
        lo, hi = 0, limit  # fits(lo) or lo == 0; not fits(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
        return Decision(max(floor, lo), "predictive", "model")


class Predictive:
    """Dials ahead of operators becoming free (``Controller``); an answered call takes whoever
    is free then (``dialing.do_claim_operator``), so nobody is reserved when a call opens."""

    mode: str = DialMode.PREDICTIVE
    reserves_operator: bool = False

    def __init__(self, controller: Controller | None = None) -> None:
        self.controller = controller or Controller()

    def wanted(self, load: Load) -> int:
        return self.controller.decide(load).calls


policy.register(Predictive())


def seconds_left(stats: DialStats, elapsed: float, *, wrapping: bool) -> float:
    """Expected seconds until a busy operator of the campaign is free: the rest of the wrap-up,
    or the rest of the talk (never less than half the mean: a call already longer than the mean
    tends to go on, talk times are long-tailed) plus the wrap-up. Shared with the simulator."""
    if wrapping:
        return max(stats.wrap_seconds - elapsed, 1.0)
    talk = stats.talk_seconds
    return max(talk - elapsed, 0.5 * talk, 1.0) + stats.wrap_seconds


# --- measuring ----------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _seconds(later: Any, earlier: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _statement(name: str, dialect: str) -> Any:
    """The measurement's statements, built once per dialect and run with bound values."""
    key = (name, dialect)
    if key in _STATEMENTS:
        return _STATEMENTS[key]
    A, C = m.CampaignAttempt, m.Conversation
    if name == "window":
        # The latest attempts of the window (ix_campaign_attempts_campaign_created, backwards).
        recent = (
            select(A.id)
            .where(
                A.campaign_id == bindparam("campaign_id"),
                A.created_at >= bindparam("since"),
                A.created_at <= bindparam("until"),
            )
            .order_by(A.created_at.desc())
            .limit(WINDOW_ATTEMPTS)
            .scalar_subquery()
        )
        ended = and_(A.outcome.is_not(None), A.outcome.not_in(NOT_PLACED))
        human = A.outcome.in_(HUMAN)
        talk = _seconds(func.coalesce(C.wrap_up_at, C.closed_at), C.accepted_at, dialect) - C.hold_seconds
        stmt: Any = (
            select(
                func.count(case((ended, 1))),
                func.count(case((human, 1))),
                func.count(case((A.outcome == Outcome.DROPPED, 1))),
                func.avg(
                    case((human & A.started_at.is_not(None), _seconds(A.answered_at, A.started_at, dialect)))
                ),
                func.avg(
                    case(
                        (
                            ended & ~human & A.started_at.is_not(None),
                            _seconds(A.ended_at, A.started_at, dialect),
                        )
                    )
                ),
                # Talk time, censored: calls still talking add their time so far (over the finished
                # ones only), else the first minutes of a campaign would see only the short calls.
                func.sum(case((C.accepted_at.is_not(None) & C.wrap_up_at.is_not(None), talk))),
                func.sum(
                    case(
                        (
                            C.accepted_at.is_not(None) & C.wrap_up_at.is_(None) & C.closed_at.is_(None),
                            _seconds(bindparam("now", type_=A.created_at.type), C.accepted_at, dialect)
                            - C.hold_seconds,
                        )
                    )
                ),
                func.count(case((C.accepted_at.is_not(None) & C.wrap_up_at.is_not(None), 1))),
                func.avg(
                    case(
                        (
                            C.wrap_up_at.is_not(None) & C.closed_at.is_not(None),
                            _seconds(C.closed_at, C.wrap_up_at, dialect),
                        )
                    )
                ),
            )
            .select_from(A)
            .outerjoin(C, and_(C.id == A.conversation_id, A.outcome == Outcome.ANSWERED))
            .where(A.id.in_(recent))
        )
    elif name == "today":
        # Answered and dropped since local midnight (ix_campaign_attempts_campaign_outcome_ended).
        stmt = (
            select(A.outcome, func.count())
            .where(
                A.campaign_id == bindparam("campaign_id"),
                A.outcome.in_(HUMAN),
                A.ended_at >= bindparam("since"),
                A.ended_at < bindparam("until"),
            )
            .group_by(A.outcome)
        )
    elif name == "busy":
        # Operators on the campaign's calls: answered and claimed, not bridged yet (the
        # attempt is open), talking or in wrap-up (the conversation an answered attempt made).
        claimed = select(
            A.operator_id.label("uid"),
            bindparam("talking", type_=m.Conversation.status.type).label("status"),
            A.answered_at.label("since"),
        ).where(
            A.campaign_id == bindparam("campaign_id"),
            A.ended_at.is_(None),
            A.answered_at.is_not(None),
            A.operator_id.is_not(None),
        )
        on_call = (
            select(
                C.assigned_user_id.label("uid"),
                C.status.label("status"),
                case((C.status == m.ConversationStatus.WRAP_UP, C.wrap_up_at), else_=C.accepted_at).label(
                    "since"
                ),
            )
            .join(A, A.conversation_id == C.id)
            .where(
                C.status.in_(
                    (m.ConversationStatus.ACTIVE, m.ConversationStatus.ON_HOLD, m.ConversationStatus.WRAP_UP)
                ),
                C.medium == m.Medium.VOICE,
                C.assigned_user_id.is_not(None),
                A.campaign_id == bindparam("campaign_id"),
            )
        )
        stmt = claimed.union_all(on_call)
    elif name == "lines":
        # Open lines not answered yet and answered ones no operator took yet
        # (ix_campaign_attempts_open_campaign); a claimed one is its operator's (``busy``).
        stmt = select(func.coalesce(A.started_at, A.created_at), A.answered_at).where(
            A.campaign_id == bindparam("campaign_id"),
            A.ended_at.is_(None),
            A.operator_id.is_(None),
        )
    else:
        raise KeyError(name)
    _STATEMENTS[key] = stmt
    return stmt


def window_lag(ring_seconds: float, drop_seconds: float) -> float:
    """How old an attempt must be to count in the window: every call placed before then has
    rung out and an answered one has had its operator or its drop."""
    return ring_seconds + drop_seconds + LAG_MARGIN_SECONDS


SETTLED_SECONDS = 60.0
"""Attempts that ended longer ago than this are settled: their count is kept (``_today``)."""
_DAYS: dict[tuple[str, int, datetime], tuple[datetime, int, int]] = {}
"""(database, campaign, local midnight) -> (counted up to, answered, dropped)."""


async def _count(
    conn: Any, dialect: str, campaign_id: int, since: datetime, until: datetime
) -> tuple[int, int]:
    rows = dict(
        (
            await conn.execute(
                _statement("today", dialect), {"campaign_id": campaign_id, "since": since, "until": until}
            )
        ).all()
    )
    return int(rows.get(Outcome.ANSWERED, 0)), int(rows.get(Outcome.DROPPED, 0))


async def _today(conn: Any, dialect: str, campaign: m.Campaign, now: datetime) -> tuple[int, int]:
    """Answered (bridged) and dropped calls of the campaign since its local midnight.

    A busy campaign ends tens of thousands of calls a day; counting them all on every tick
    was most of the measurement (150 ms at 90,000 calls). What ended before ``now -
    SETTLED_SECONDS`` does not change (an attempt's end is written once, in a transaction that
    commits at once), so this process keeps that part's counts per campaign and day and adds
    only what settled since; the last minute is counted afresh each time. A clock that goes back
    (tests pin ``now``) starts the count over."""
    midnight = _midnight(campaign, now)
    settled = max(midnight, now - timedelta(seconds=SETTLED_SECONDS))
    key = (str(conn.engine.url), campaign.id, midnight)
    upto, answered, dropped = _DAYS.get(key, (midnight, 0, 0))
    if settled < upto:
        upto, answered, dropped = midnight, 0, 0
    if settled > upto:
        a, d = await _count(conn, dialect, campaign.id, upto, settled)
        upto, answered, dropped = settled, answered + a, dropped + d
        if len(_DAYS) > 10_000:  # yesterday's and deleted campaigns' entries
            _DAYS.clear()
        _DAYS[key] = (upto, answered, dropped)
    a, d = await _count(conn, dialect, campaign.id, upto, _midnight(campaign, midnight + timedelta(hours=36)))
    return answered + a, dropped + d


def _midnight(campaign: m.Campaign, now: datetime) -> datetime:
    zone = _zone(campaign.timezone) or now.tzinfo
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(now.tzinfo)


async def measure(session: AsyncSession, campaign: m.Campaign, now: datetime) -> DialStats:
    """What the campaign's recent attempts measured: the rolling window (``WINDOW_MINUTES``,
    at most ``WINDOW_ATTEMPTS`` latest) for the rates and times, today (since midnight in the
    campaign's zone) for the daily abandon rate. Answer rate = calls a person answered
    (answered or dropped) of the ended attempts that reached the network; abandon rate =
    dropped of those a person answered; talk = the answered calls' conversations from accept
    to wrap-up (hold excluded), wrap-up = wrap-up to close, ring = placing to the answer."""
    dialect = session.get_bind().dialect.name
    conn = await session.connection()
    # Attempts placed in the last ring time have not all ended, and those that have are the
    # quick ones (answered, busy): counting them would raise the answer rate (``window_lag``).
    values = {
        "campaign_id": campaign.id,
        "since": now - timedelta(minutes=WINDOW_MINUTES),
        "until": now - timedelta(seconds=window_lag(campaign.ring_seconds, campaign.drop_seconds)),
        "now": now,
    }
    row = (await conn.execute(_statement("window", dialect), values)).one()
    ended, human, dropped, ring, fail, talked, talking, finished, wrap = row
    talk = (float(talked or 0.0) + max(float(talking or 0.0), 0.0)) / finished if finished else 0.0
    today = await _today(conn, dialect, campaign, now)
    answered_today = today[0] + today[1]
    ended, human, dropped = int(ended or 0), int(human or 0), int(dropped or 0)
    return DialStats(
        samples=ended,
        answer_rate=human / ended if ended else 0.0,
        ring_seconds=float(ring or 0.0),
        fail_seconds=max(float(fail or 0.0), 0.0),
        talk_seconds=max(talk, 0.0),
        wrap_seconds=max(float(wrap or 0.0), 0.0),
        abandon_rate=dropped / human if human else 0.0,
        abandon_rate_today=today[1] / answered_today if answered_today else 0.0,
        answered_today=answered_today,
        answered=human,
        talked=int(finished or 0),
    )


def _aware(value: datetime, now: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=now.tzinfo)


async def measured_load(
    session: AsyncSession, campaign: m.Campaign, *, free_operators: int, open_attempts: int, now: datetime
) -> Load:
    """The load an unreserved policy sees for ``campaign`` at ``now``.

    Predictive: ``measure``'s stats, and the operators of the campaign = the ``free_operators``
    (``scheduler.free_for_outbound``, as the scheduler counted them) + those busy on its calls
    (answered and claimed, talking, in wrap-up), each busy one with ``seconds_left``.
    Agentless needs none of it (bounded by ``max_concurrency``)."""
    load = Load(
        free_operators=free_operators,
        open_attempts=open_attempts,
        max_concurrency=campaign.max_concurrency,
        operators=free_operators,
        max_lines_per_operator=campaign.max_lines_per_operator,
        target_abandon_pct=campaign.target_abandon_pct,
        drop_seconds=float(campaign.drop_seconds),
    )
    if campaign.dial_mode != DialMode.PREDICTIVE:
        return load
    stats = await measure(session, campaign, now)
    dialect = session.get_bind().dialect.name
    conn = await session.connection()
    rows = (
        await conn.execute(
            _statement("busy", dialect), {"campaign_id": campaign.id, "talking": m.ConversationStatus.ACTIVE}
        )
    ).all()
    ringing: list[float] = []
    waiting = 0
    for placed, answered in (
        await conn.execute(_statement("lines", dialect), {"campaign_id": campaign.id})
    ).all():
        if answered is not None:
            waiting += 1
        else:
            ringing.append(max(0.0, (now - _aware(placed, now)).total_seconds()))
    left: dict[int, float] = {}
    for uid, status, since in rows:
        elapsed = max(0.0, (now - _aware(since, now)).total_seconds()) if since is not None else 0.0
        seconds = seconds_left(stats, elapsed, wrapping=status == m.ConversationStatus.WRAP_UP)
        left[int(uid)] = min(seconds, left.get(int(uid), seconds))
    return Load(
        free_operators=free_operators,
        open_attempts=open_attempts,
        max_concurrency=campaign.max_concurrency,
        operators=free_operators + len(left),
        busy_seconds_left=tuple(sorted(left.values())),
        stats=stats,
        max_lines_per_operator=campaign.max_lines_per_operator,
        target_abandon_pct=campaign.target_abandon_pct,
        drop_seconds=float(campaign.drop_seconds),
        ringing_seconds=tuple(ringing),
        waiting=waiting,
    )
