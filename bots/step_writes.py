"""A bot step's own rows: the session's new state and the step records, written at the end
of the step with statements built once (one on PostgreSQL, two on SQLite), not by the ORM's
flush. On PostgreSQL the same statement writes the transaction's pending outbox: the
customer's message and the bot's replies (deferred, ``conversations.defer_message``) and
every event emitted so far, in emit order (``omni.db.outbox``). The unit of work's flush of
a session row and of a few ``BotStep`` objects cost more Python than the statements
themselves (bench/scenarios.py, bench/README.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Integer,
    String,
    Table,
    TextClause,
    bindparam,
    insert,
    inspect,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from omni.db import driver
from omni.db import models as m
from omni.db.outbox import OUTBOX_CTES, OUTBOX_IDS, assign_ids, outbox_params, take

_SESSIONS = cast(Table, m.BotSession.__table__)
_STEPS = cast(Table, m.BotStep.__table__)

_UPDATE_SESSION = (
    update(_SESSIONS)
    .where(_SESSIONS.c.conversation_id == bindparam("b_conversation_id"))
    .values(
        state=bindparam("b_state"),
        status=bindparam("b_status"),
        timer_token=bindparam("b_timer_token"),
        updated_at=bindparam("b_updated_at"),
    )
)
_INSERT_STEPS = insert(_STEPS)

_SESSION_CTE = """
    WITH written AS (
        UPDATE bot_sessions
        SET state = :state, status = :status, timer_token = :timer_token, updated_at = :at
        WHERE conversation_id = :conversation_id
    )"""
_STEPS_INSERT = """
    INSERT INTO bot_steps (revision_id, conversation_id, channel, node, outcome, created_at)
    SELECT step.revision_id, :conversation_id, :channel, step.node, step.outcome, :at
    FROM unnest(:revisions, :nodes, :outcomes) AS step (revision_id, node, outcome)
    """
_STEPS_CTE = f""",
    stepped AS ({_STEPS_INSERT}),{OUTBOX_CTES}
    {OUTBOX_IDS}"""
"""PostgreSQL: the step records as a CTE, then the transaction's pending outbox rows and their
messages (the customer's message, the bot's replies, their events: ``omni.db.outbox``)."""
_TYPES = (
    bindparam("state", type_=JSON),
    bindparam("status", type_=String),
    bindparam("timer_token", type_=Integer),
    bindparam("at", type_=m.BotSession.__table__.c.updated_at.type),
    bindparam("conversation_id", type_=BigInteger),
    bindparam("channel", type_=String),
    bindparam("revisions", type_=ARRAY(Integer)),
    bindparam("nodes", type_=ARRAY(String)),
    bindparam("outcomes", type_=ARRAY(String)),
)
_BOTH = text(_SESSION_CTE + _STEPS_CTE).bindparams(*_TYPES)
"""PostgreSQL: the session update rides along with the steps' insert and the outbox's rows
(a data-modifying CTE always runs, rows or none), one round trip."""


@functools.cache
def _with_conversation(keys: frozenset[str]) -> TextClause | None:
    """…and the conversation's update too (``keys``: the attributes the step changed, all
    columns), built once per set of columns: the message time and the collected variables on
    most steps, the close's columns too on a closing step, which the commit's flush wrote as
    one more statement. ``None``: a change the statement can't write (not a plain column)."""
    columns = m.Conversation.__mapper__.column_attrs
    if not keys or any(key not in columns or columns[key].columns[0].primary_key for key in keys):
        return None
    chosen = [(key, columns[key].columns[0]) for key in sorted(keys)]
    sets = ", ".join(f"{column.name} = :c_{key}" for key, column in chosen)
    # The names are the mapper's columns, the values bound parameters.
    cte = f""",
    talked AS (UPDATE conversations SET {sets} WHERE id = :conversation_id)"""  # noqa: S608
    binds = [bindparam(f"c_{key}", type_=column.type) for key, column in chosen]
    return text(_SESSION_CTE + cte + _STEPS_CTE).bindparams(*_TYPES, *binds)


@dataclass(slots=True)
class StepRecord:
    """One ``BotStep`` row to write (the revision may change mid-step: a scenario jump)."""

    revision_id: int
    node: str
    outcome: str


async def write_step(
    session: AsyncSession,
    bot: m.BotSession,
    conv: m.Conversation,
    steps: list[StepRecord],
    *,
    state: dict[str, Any],
    status: str,
    timer_token: int,
    now: datetime,
) -> None:
    """Write the session's new ``state``/``status``/``timer_token`` and ``steps``; ``bot``
    (the session's ORM row, locked by the caller) gets the same values as committed ones,
    so the ORM's flush does not write it a second time."""
    with session.no_autoflush:  # what the step left pending goes out at commit, in one flush
        await _write(session, bot, conv, steps, state, status, timer_token, now)
    written = {"state": state, "status": status, "timer_token": timer_token, "updated_at": now}
    for key, value in written.items():
        set_committed_value(bot, key, value)


async def _write(
    session: AsyncSession,
    bot: m.BotSession,
    conv: m.Conversation,
    steps: list[StepRecord],
    state: dict[str, Any],
    status: str,
    timer_token: int,
    now: datetime,
) -> None:
    if session.get_bind().dialect.name == "postgresql":
        statement, changed = _BOTH, {}
        conversation = _with_conversation(frozenset(inspect(conv).committed_state))
        if conversation is not None:
            statement = conversation
            changed = {key: getattr(conv, key) for key in inspect(conv).committed_state}
        params = {f"c_{key}": value for key, value in changed.items()}
        batch = take(session)
        # Straight on asyncpg in the session's transaction (``omni.db.driver``): SQLAlchemy's
        # execution of a statement cost more Python than the round trip.
        run = await driver.session_statements(session)
        returned = await run.rows(
            statement,
            params
            | outbox_params(batch)
            | {
                "state": state,
                "status": status,
                "timer_token": timer_token,
                "at": now,
                "conversation_id": bot.conversation_id,
                "channel": conv.channel,
                "revisions": [s.revision_id for s in steps],
                "nodes": [s.node for s in steps],
                "outcomes": [s.outcome for s in steps],
            },
        )
        assign_ids(batch, returned)
        for key, value in changed.items():  # written: the ORM's flush leaves them alone
            set_committed_value(conv, key, value)
        row = inspect(conv)
        if changed and not row.committed_state:
            # Nothing else of it changed: mark it unmodified, or the commit's flush would run
            # the whole unit of work only to find nothing to write (bench/README.md).
            row._commit_all(row.dict, session.sync_session.identity_map)
    else:
        await session.execute(
            _UPDATE_SESSION,
            {
                "b_conversation_id": bot.conversation_id,
                "b_state": state,
                "b_status": status,
                "b_timer_token": timer_token,
                "b_updated_at": now,
            },
        )
        if steps:
            rows = [
                {
                    "revision_id": s.revision_id,
                    "conversation_id": conv.id,
                    "channel": conv.channel,
                    "node": s.node,
                    "outcome": s.outcome,
                    "created_at": now,
                }
                for s in steps
            ]
            await session.execute(_INSERT_STEPS, rows)
