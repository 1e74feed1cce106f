"""Dial-mode policies: how many new attempts a campaign may open right now.

A policy is a pure function of what is measured at this instant, so the scheduler, the tests
and the predictive simulator in ``bench/`` (next issue) share it. Preview and progressive
never place more calls than free operators; predictive (next issue) over-dials by the
measured answer rate while the abandon rate stays under its target; agentless is bounded by
the trunk only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from omni.db.models.outbound import DialMode

__all__ = ["POLICIES", "DialPolicy", "Load", "Preview", "Progressive", "policy_for"]


@dataclass(frozen=True, slots=True)
class Load:
    free_operators: int
    """Operators of the campaign now able to take one more outbound contact."""
    open_attempts: int
    """Attempts of the campaign placed and not yet ended or bridged."""
    max_concurrency: int
    """The campaign's (trunk share's) limit of open attempts."""


class DialPolicy(Protocol):
    mode: str

    def wanted(self, load: Load) -> int:
        """New attempts to open now (never negative)."""
        ...


def _room(load: Load) -> int:
    return max(0, load.max_concurrency - load.open_attempts)


class Preview:
    """One target per free operator, shown as a card before anything is dialed."""

    mode: str = DialMode.PREVIEW

    def wanted(self, load: Load) -> int:
        return max(0, min(load.free_operators - load.open_attempts, _room(load)))


class Progressive:
    """One call per free operator: every answered call has an operator waiting."""

    mode: str = DialMode.PROGRESSIVE

    def wanted(self, load: Load) -> int:
        return max(0, min(load.free_operators - load.open_attempts, _room(load)))


_ALL: tuple[DialPolicy, ...] = (Preview(), Progressive())
POLICIES: dict[str, DialPolicy] = {p.mode: p for p in _ALL}


def policy_for(mode: str) -> DialPolicy | None:
    """The policy of a dial mode; ``None`` for modes this install can't dial yet."""
    return POLICIES.get(mode)
