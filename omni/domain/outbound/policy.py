"""Dial-mode policies: how many new attempts a campaign may open right now.

A policy is a pure function of what is measured at this instant, so the scheduler, the tests
and the predictive simulator (``bench/dialer_sim.py``) share it. Preview and progressive
never place more calls than free operators and reserve one for each call; predictive
(``omni.domain.outbound.pacing``) over-dials by the measured answer rate while the abandon
rate stays under its target and reserves nobody (an answered call takes whoever is free);
agentless is bounded by the trunk only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from omni.db.models.outbound import DialMode

__all__ = [
    "POLICIES",
    "Agentless",
    "DialPolicy",
    "DialStats",
    "Load",
    "Preview",
    "Progressive",
    "policy_for",
    "register",
]


@dataclass(frozen=True, slots=True)
class DialStats:
    """What the campaign's recent attempts measured (``pacing.measure``); the predictive
    controller falls back to progressive while ``samples`` is too small to trust."""

    samples: int = 0
    """Ended attempts in the rolling window."""
    answer_rate: float = 0.0
    """Answered / placed over the window (0..1)."""
    ring_seconds: float = 0.0
    """Mean time from placing a call to its answer (calls a person answered)."""
    talk_seconds: float = 0.0
    """Mean time an answered call keeps its operator, wrap-up excluded (calls still talking
    count with their time so far: ``pacing.measure``)."""
    wrap_seconds: float = 0.0
    """Mean wrap-up after a campaign call."""
    fail_seconds: float = 0.0
    """Mean time from placing a call nobody answered to its end (no answer, busy, congestion):
    lines ringing now are mostly these, so an open line is less likely to be answered than a
    new one."""
    abandon_rate: float = 0.0
    """Dropped / answered over the rolling window (0..1)."""
    abandon_rate_today: float = 0.0
    """Dropped / answered since the campaign's local midnight (0..1)."""
    answered_today: int = 0
    answered: int = 0
    """Calls a person answered (answered or dropped) in the rolling window."""
    talked: int = 0
    """Finished conversations behind ``talk_seconds`` (few: the mean is not trusted yet)."""


@dataclass(frozen=True, slots=True)
class Load:
    free_operators: int
    """Operators of the campaign now able to take one more outbound contact."""
    open_attempts: int
    """Attempts of the campaign placed and not yet ended or bridged."""
    max_concurrency: int
    """The campaign's (trunk share's) limit of open attempts."""
    operators: int = 0
    """Predictive: operators able to take the campaign's calls now or after their current
    campaign call and wrap-up (free + busy on it); the lines cap is per these."""
    busy_seconds_left: tuple[float, ...] = ()
    """Predictive: for each busy operator of the campaign, the expected seconds until free
    (from talk/wrap means and how long they have been at it)."""
    stats: DialStats | None = None
    max_lines_per_operator: float = 3.0
    target_abandon_pct: float = 3.0
    drop_seconds: float = 2.0
    """Predictive: how long an answered call may wait for an operator before it is dropped."""
    ringing_seconds: tuple[float, ...] | None = None
    """Predictive: how long each open line not answered yet has rung (``None``: not known,
    every open line counts as a fresh call); a line that has rung long is less likely to be
    answered than a new one."""
    waiting: int = 0
    """Predictive: answered calls waiting for an operator now."""


class DialPolicy(Protocol):
    mode: str
    reserves_operator: bool
    """Whether each attempt holds an operator from the moment it opens (preview,
    progressive) or an answered call takes whoever is free then (predictive, agentless)."""

    def wanted(self, load: Load) -> int:
        """New attempts to open now (never negative)."""
        ...


def _room(load: Load) -> int:
    return max(0, load.max_concurrency - load.open_attempts)


class Preview:
    """One target per free operator, shown as a card before anything is dialed."""

    mode: str = DialMode.PREVIEW
    reserves_operator: bool = True

    def wanted(self, load: Load) -> int:
        return max(0, min(load.free_operators - load.open_attempts, _room(load)))


class Progressive:
    """One call per free operator: every answered call has an operator waiting."""

    mode: str = DialMode.PROGRESSIVE
    reserves_operator: bool = True

    def wanted(self, load: Load) -> int:
        return max(0, min(load.free_operators - load.open_attempts, _room(load)))


class Agentless:
    """No operators: as many calls as the campaign's trunk share allows."""

    mode: str = DialMode.AGENTLESS
    reserves_operator: bool = False

    def wanted(self, load: Load) -> int:
        return _room(load)


_ALL: tuple[DialPolicy, ...] = (Preview(), Progressive(), Agentless())
POLICIES: dict[str, DialPolicy] = {p.mode: p for p in _ALL}


def register(policy: DialPolicy) -> None:
    """Add a mode's policy (``pacing`` registers predictive on import)."""
    POLICIES[policy.mode] = policy


def policy_for(mode: str) -> DialPolicy | None:
    """The policy of a dial mode; ``None`` for modes this install can't dial yet."""
    return POLICIES.get(mode)
