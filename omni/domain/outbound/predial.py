"""The pre-dial check: a campaign's optional HTTP URL asked before each attempt is placed.

A CRM often knows what the list doesn't (the debt was paid an hour ago, the customer asked
for tomorrow), so a campaign may name a URL; the scheduler POSTs the target to it and the
answer decides the attempt:

- request: ``{"campaign": id, "campaign_name": ..., "phone": "+7...", "target_id": id,
  "name": ..., "fields": {...}, "tags": [...], "attempt": n}``
- answer (JSON): ``{"answer": "call"}``, ``{"answer": "dont_call"}`` or
  ``{"answer": "later", "at": "2026-12-01T10:00:00+03:00"}`` (or ``"minutes": 90``).

A check that does not answer within the campaign's ``predial_timeout_ms`` — or answers
something else, or can't be reached — is decided by the campaign's ``predial_on_timeout``
policy (``call`` | ``skip`` | ``later``), and logged naming the campaign and the URL, so a
broken CRM neither stops a campaign silently nor lets it call people it should not.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

__all__ = [
    "CALL",
    "DONT_CALL",
    "LATER",
    "LATER_MINUTES",
    "POLICIES",
    "SKIP",
    "Verdict",
    "ask",
]

log = logging.getLogger(__name__)

CALL = "call"
DONT_CALL = "dont_call"
LATER = "later"
SKIP = "skip"
POLICIES = (CALL, SKIP, LATER)
"""What ``Campaign.predial_on_timeout`` may say."""
LATER_MINUTES = 15
""""Later" without a time (a timeout under the ``later`` policy, an answer without ``at``)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str
    """``call`` | ``dont_call`` | ``later`` | ``skip`` (``skip`` only from the timeout policy)."""
    at: datetime | None = None
    """``later``: when the target is due again."""
    cause: str = ""
    """What the attempt records when not placed (``predial_dont_call``, ``predial_timeout``...)."""


def _policy(on_timeout: str, now: datetime, cause: str) -> Verdict:
    if on_timeout == SKIP:
        return Verdict(SKIP, cause=cause)
    if on_timeout == LATER:
        return Verdict(LATER, now + timedelta(minutes=LATER_MINUTES), cause=cause)
    return Verdict(CALL, cause=cause)


def _read(body: Any, now: datetime) -> Verdict | None:
    """The answer, or ``None`` when it is not one of the three."""
    if not isinstance(body, dict):
        return None
    answer = body.get("answer")
    if answer == CALL:
        return Verdict(CALL)
    if answer == DONT_CALL:
        return Verdict(DONT_CALL, cause="predial_dont_call")
    if answer != LATER:
        return None
    at: datetime | None = None
    if isinstance(body.get("at"), str):
        try:
            at = datetime.fromisoformat(body["at"])
        except ValueError:
            return None
        if at.tzinfo is None:
            return None
    elif isinstance(body.get("minutes"), int) and not isinstance(body.get("minutes"), bool):
        at = now + timedelta(minutes=max(1, int(body["minutes"])))
    at = at if at is not None and at > now else now + timedelta(minutes=LATER_MINUTES)
    return Verdict(LATER, at, cause="predial_later")


async def ask(
    client: httpx.AsyncClient,
    *,
    url: str,
    timeout_ms: int,
    on_timeout: str,
    campaign_id: int,
    campaign_name: str,
    payload: dict[str, Any],
    now: datetime,
) -> Verdict:
    """Ask the campaign's URL about one target; never raises (failures follow the policy)."""
    try:
        async with asyncio.timeout(max(1, timeout_ms) / 1000):
            response = await client.post(url, json=payload)
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body = response.json()
    except TimeoutError:
        log.warning(
            "pre-dial check of campaign %s (%s) at %s did not answer in %d ms; policy: %s",
            campaign_id,
            campaign_name,
            url,
            timeout_ms,
            on_timeout,
        )
        return _policy(on_timeout, now, "predial_timeout")
    except (httpx.HTTPError, ValueError) as exc:
        log.warning(
            "pre-dial check of campaign %s (%s) at %s failed: %s; policy: %s",
            campaign_id,
            campaign_name,
            url,
            f"{type(exc).__name__}: {exc}"[:200],
            on_timeout,
        )
        return _policy(on_timeout, now, "predial_error")
    verdict = _read(body, now)
    if verdict is None:
        log.warning(
            "pre-dial check of campaign %s (%s) at %s answered %.200r, not call/dont_call/later; policy: %s",
            campaign_id,
            campaign_name,
            url,
            body,
            on_timeout,
        )
        return _policy(on_timeout, now, "predial_error")
    return verdict
