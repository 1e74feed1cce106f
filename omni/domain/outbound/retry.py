"""Retry rules per outcome: how long after an unsuccessful attempt the next one is due.

Written as supervisors think of them (``busy 15;60;1440``: 15 minutes after the first busy,
an hour after the second, a day after the third and later ones) and stored as minute lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omni.db.models.outbound import Outcome
from omni.domain.errors import InvalidInput

__all__ = ["DEFAULT_RETRY_RULES", "RETRYABLE", "check_retry_rules", "parse_intervals", "retry_minutes"]

RETRYABLE = (
    Outcome.BUSY,
    Outcome.NO_ANSWER,
    Outcome.MACHINE,
    Outcome.CONGESTION,
    Outcome.DROPPED,
    Outcome.SKIPPED,
    Outcome.SEND_FAILED,
)
"""Outcomes a rule may name; the others end the attempt's story (answered, sent, refused)."""

DEFAULT_RETRY_RULES: dict[str, list[int]] = {
    Outcome.BUSY: [15, 60, 1440],
    Outcome.NO_ANSWER: [60, 240],
    Outcome.MACHINE: [120],
    Outcome.CONGESTION: [30],
    Outcome.DROPPED: [10],
    Outcome.SKIPPED: [60],
}

_MAX_MINUTES = 60 * 24 * 366


def parse_intervals(text: str, *, field: str = "retry_rules") -> list[int]:
    """``"15;60;1440"`` → ``[15, 60, 1440]`` (minutes; ``,`` and spaces also separate)."""
    parts = [p for p in text.replace(",", ";").replace(" ", ";").split(";") if p]
    out: list[int] = []
    for part in parts:
        if not part.isdigit() or not 0 <= int(part) <= _MAX_MINUTES:
            raise InvalidInput("'{value}' is not a number of minutes", value=part, field=field)
        out.append(int(part))
    return out


def check_retry_rules(rules: Any) -> dict[str, list[int]]:
    """Rules as stored: outcome → minutes, from lists or ``"15;60"`` strings."""
    if not isinstance(rules, Mapping):
        raise InvalidInput("retry rules must map outcomes to minutes", field="retry_rules")
    clean: dict[str, list[int]] = {}
    for outcome, value in rules.items():
        if outcome not in RETRYABLE:
            raise InvalidInput(
                "no retry rule can be set for outcome '{outcome}'", outcome=str(outcome), field="retry_rules"
            )
        if isinstance(value, str):
            clean[outcome] = parse_intervals(value)
        elif isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            if any(not 0 <= v <= _MAX_MINUTES for v in value):
                raise InvalidInput(
                    "retry minutes must be between 0 and {max}", max=_MAX_MINUTES, field="retry_rules"
                )
            clean[outcome] = list(value)
        else:
            raise InvalidInput(
                "retry rule for '{outcome}' must be minutes like 15;60;1440",
                outcome=str(outcome),
                field="retry_rules",
            )
    return clean


def retry_minutes(rules: Mapping[str, Any], outcome: str, nth: int) -> int | None:
    """Minutes before the next attempt after the ``nth`` (1-based) ``outcome`` of a target;
    ``None`` = no retry for this outcome (the target fails)."""
    steps = rules.get(outcome)
    if not steps:
        return None
    return int(steps[min(nth, len(steps)) - 1])
