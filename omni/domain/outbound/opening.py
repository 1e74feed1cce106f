"""Opening a claim's attempts on PostgreSQL in one statement, from plain rows.

The scheduler claims targets as plain rows (``Claimed``) and opens their attempts without ORM
objects: the attempt rows, the targets' update, the ``campaign.attempt_started`` events (and, for
a do-not-call hit, ``campaign.attempt_ended`` with the attempt refused at once) and the caller
IDs' ``last_used_at`` are one statement, ``_OPEN``. ``lifecycle.do_open_claimed`` (rows) and
``lifecycle.do_open_attempts`` (ORM targets) both run it on PostgreSQL; elsewhere (SQLite) the
ORM path of ``lifecycle`` writes the same rows and events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db.models.outbound import Outcome, TargetState
from omni.db.outbox import unflushed
from omni.db.unit_of_work import unit_of_work
from omni.domain.errors import Conflict
from omni.domain.events import checked_payload

__all__ = ["CLAIMED_COLUMNS", "Attempt", "Claimed", "RowOpening", "new_attempt", "open_in_one_statement"]

T = TargetState


class Claimed(NamedTuple):
    """A claimed target as a plain row (the scheduler's claim, ``CLAIMED_COLUMNS``): what opening
    its attempt, the channel's order and the pre-dial check read, without an ORM object."""

    id: int
    campaign_id: int
    name: str
    phone: str
    phones: list[Any]
    phone_index: int
    region: str
    fields: dict[str, Any]
    tags: list[Any]
    attempts: int
    state: str
    next_due_at: datetime | None
    callback_user_id: int | None


CLAIMED_COLUMNS = Claimed._fields
"""The ``campaign_targets`` columns a ``Claimed`` row is read from, in its order."""


class Attempt(NamedTuple):
    """An attempt ``do_open_claimed`` opened, as a plain row (every other column is as a new
    attempt's: no conversation, not started, no outcome, empty ``external_id``/``amd``/``cause``)."""

    id: int
    campaign_id: int
    target_id: int
    number: int
    phone: str
    caller_id: str
    channel: str
    operator_id: int | None


@dataclass(frozen=True, slots=True)
class RowOpening:
    """``Opening`` for a claimed row: the campaign's ``channel`` and ``queue_id`` come along
    (its attempts' channel, its events' queue), so nothing is loaded to open it."""

    target: Claimed
    caller_id: str
    operator_id: int | None
    channel: str
    queue_id: int | None
    dnc: bool = False
    """Do-not-call forbids the number: the attempt is closed ``refused`` (cause ``dnc``) as it
    opens, the target is ``dnc`` and no attempt is used up (``do_close_attempt``'s rule)."""


def new_attempt(o: RowOpening) -> tuple[int, int, int, str, str, str, int | None]:
    """(campaign, target, number, phone, caller ID, channel, operator) of the attempt ``o`` opens."""
    t = o.target
    phones = list(t.phones) or [t.phone]
    phone = phones[t.phone_index % len(phones)]
    return (t.campaign_id, t.id, t.attempts + 1, phone, o.caller_id, str(o.channel), o.operator_id)


_OPEN = text(
    """
    WITH given AS (
        SELECT * FROM unnest(
            CAST(:target_ids AS BIGINT[]), CAST(:campaign_ids AS BIGINT[]), CAST(:numbers AS INTEGER[]),
            CAST(:phones AS VARCHAR[]), CAST(:caller_ids AS VARCHAR[]), CAST(:channels AS VARCHAR[]),
            CAST(:operator_ids AS BIGINT[]), CAST(:queue_ids AS BIGINT[]), CAST(:dnc AS BOOLEAN[]),
            CAST(:payloads AS TEXT[]), CAST(:ended AS TEXT[])
        ) WITH ORDINALITY AS g(target_id, campaign_id, number, phone, caller_id, channel,
                               operator_id, queue_id, dnc, payload, ended, n)
    ), d AS (
        -- All or nothing: every target still pending, or no row to write at all.
        SELECT * FROM given WHERE (SELECT count(*) FROM campaign_targets AS p JOIN given AS g
                                   ON p.id = g.target_id AND p.state = CAST(:pending AS VARCHAR))
                                  = (SELECT count(*) FROM given)
    ), attempts AS (
        INSERT INTO campaign_attempts (campaign_id, target_id, number, phone, caller_id, channel,
                                       operator_id, external_id, created_at, amd, cause, outcome,
                                       ended_at)
        SELECT campaign_id, target_id, number, phone, caller_id, channel, operator_id, '',
               CAST(:now AS TIMESTAMPTZ), '', CASE WHEN dnc THEN 'dnc' ELSE '' END,
               CASE WHEN dnc THEN CAST(:refused AS VARCHAR) END,
               CASE WHEN dnc THEN CAST(:now AS TIMESTAMPTZ) END
        FROM d ORDER BY n
        RETURNING id, target_id
    ), targets AS (
        UPDATE campaign_targets AS t
        SET state = CASE WHEN d.dnc THEN CAST(:dnc_state AS VARCHAR) ELSE CAST(:in_progress AS VARCHAR) END,
            attempts = CASE WHEN d.dnc THEN GREATEST(0, d.number - 1) ELSE d.number END,
            last_outcome = CASE WHEN d.dnc THEN CAST(:refused AS VARCHAR) ELSE t.last_outcome END,
            next_due_at = NULL, updated_at = CAST(:now AS TIMESTAMPTZ)
        FROM d WHERE t.id = d.target_id
    ), events AS (
        INSERT INTO events (type, payload, queue_id, user_id, created_at, dispatched)
        SELECT e.type, CAST(jsonb_build_object('id', a.id) || CAST(e.body AS JSONB) AS JSON),
               d.queue_id, d.operator_id, CAST(:emitted AS TIMESTAMPTZ), false
        FROM d JOIN attempts AS a ON a.target_id = d.target_id
        CROSS JOIN LATERAL (VALUES (0, 'campaign.attempt_started', d.payload),
                                   (1, 'campaign.attempt_ended', d.ended)) AS e(k, type, body)
        WHERE e.body IS NOT NULL
        ORDER BY d.n, e.k
    ), stamped AS (
        UPDATE campaign_caller_ids AS c SET last_used_at = CAST(:now AS TIMESTAMPTZ)
        FROM (SELECT DISTINCT campaign_id, caller_id FROM d WHERE caller_id <> '') AS u
        WHERE c.campaign_id = u.campaign_id AND c.number = u.caller_id
    )
    SELECT target_id, id FROM attempts
    """
)
"""Attempts, targets, their ``campaign.attempt_started`` events and the caller IDs' last use in
one statement (rows in the order given; each event's payload is ``attempt_dict`` with the new
attempt's id); nothing at all when one of the targets is not pending (no row returned). A row
with ``dnc`` is ``do_open_attempt`` and ``do_close_attempt(refused, "dnc", refused_state=dnc)``
at once: the attempt ends as it opens, the target is ``dnc`` with no attempt used up, and its
``campaign.attempt_ended`` event follows its start."""


async def open_in_one_statement(
    session: AsyncSession, openings: Sequence[RowOpening], now: datetime
) -> list[int]:
    """``_OPEN`` for ``openings``; the new attempts' ids, in their order. The events' payloads
    are what ``emit`` would write (``checked_payload``) for ``attempt_dict`` of each attempt
    (and, for a ``dnc`` one, ``do_close_attempt``'s ``campaign.attempt_ended``)."""
    if unflushed(session):
        await session.flush()  # what was emitted before keeps its place in the event order
    created = now.isoformat()
    columns: list[list[Any]] = [[] for _ in range(7)]
    queue_ids: list[int | None] = []
    payloads: list[str] = []
    ended: list[str | None] = []
    for o in openings:
        row = new_attempt(o)
        for column, value in zip(columns, row, strict=True):
            column.append(value)
        queue_ids.append(o.queue_id)
        campaign_id, target_id, number, phone, caller_id, channel, operator_id = row
        # ``attempt_dict`` of the new attempt, its id put first by the statement.
        payload = {"id": 0, "campaign_id": campaign_id, "target_id": target_id, "number": number,
                   "phone": phone, "caller_id": caller_id, "channel": channel, "operator_id": operator_id,
                   "conversation_id": None, "outcome": None, "cause": "", "created_at": created,
                   "started_at": None, "answered_at": None, "ended_at": None}  # fmt: skip
        payloads.append(_body("campaign.attempt_started", payload))
        if o.dnc:
            closed = payload | {"outcome": str(Outcome.REFUSED), "cause": "dnc", "ended_at": created}
            closed |= {"target_state": str(T.DNC), "next_due_at": None}
            ended.append(_body("campaign.attempt_ended", closed))
        else:
            ended.append(None)
    campaign_ids, target_ids, numbers, phones, caller_ids, channels, operator_ids = columns
    values = {
        "target_ids": target_ids,
        "campaign_ids": campaign_ids,
        "numbers": numbers,
        "phones": phones,
        "caller_ids": caller_ids,
        "channels": channels,
        "operator_ids": operator_ids,
        "queue_ids": queue_ids,
        "dnc": [o.dnc for o in openings],
        "payloads": payloads,
        "ended": ended,
        "now": now,
        "pending": str(T.PENDING),
        "in_progress": str(T.IN_PROGRESS),
        "dnc_state": str(T.DNC),
        "refused": str(Outcome.REFUSED),
        "emitted": datetime.now(UTC),
    }
    conn = await session.connection()
    ids: dict[int, int] = {
        int(target_id): int(attempt_id) for target_id, attempt_id in await conn.execute(_OPEN, values)
    }
    if not ids:  # a target was not pending after all (the caller's row was stale): nothing written
        target_id, state = (
            await conn.execute(_NOT_PENDING, {"ids": target_ids, "pending": str(T.PENDING)})
        ).one()
        raise Conflict("target {target_id} is {state}, not pending", target_id=target_id, state=state)
    unit_of_work(session).events_written = True
    return [ids[t] for t in target_ids]


_NOT_PENDING = text(
    """
    SELECT g.id, COALESCE(t.state, 'deleted') FROM unnest(CAST(:ids AS BIGINT[])) AS g(id)
    LEFT JOIN campaign_targets AS t ON t.id = g.id
    WHERE t.state IS DISTINCT FROM :pending ORDER BY g.id LIMIT 1
    """
)


def _body(type_: str, payload: dict[str, Any]) -> str:
    """An event's checked payload as JSON, without its ``id`` (the statement puts it first)."""
    clean = checked_payload(type_, payload)
    del clean["id"]
    return json.dumps(clean)
