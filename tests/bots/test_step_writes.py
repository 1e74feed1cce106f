"""A bot step writes its session row once, at the end, and reads the queue only when the
scenario needs it (a fact, ``{{queue.name}}``, a hand-off or running out of nodes): on
PostgreSQL and on SQLite (the embedded mode), through the same services the app builds."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bots import runner, service
from omni.db import driver
from omni.db import models as m
from omni.domain import conversations as c
from omni.domain.auth import Principal
from omni.services import Services
from tests import factories as f

RUNS_OUT: dict[str, Any] = {
    "name": "asks once", "start": "ask", "variables": [{"name": "who"}],
    "nodes": [{"id": "ask", "type": "ask", "input": "text", "content": {"text": "Your name?"},
               "variable": "who", "timeout_seconds": 60, "retries": 1,
               "ports": {"next": "bye", "on_no_input": "bye", "on_max_retries": "bye"}},
              {"id": "bye", "type": "close", "message": {"text": "Bye {{who}}"}}],
}  # fmt: skip
QUEUE_FACTS: dict[str, Any] = {
    "name": "queue facts", "start": "check", "variables": [],
    "nodes": [{"id": "check", "type": "condition",
               "when": {"op": "gt", "left": {"fact": "agents_online"}, "right": {"value": 0}},
               "ports": {"true": "yes", "false": "no"}},
              {"id": "yes", "type": "close", "message": {"text": "{{queue.name}} has agents"}},
              {"id": "no", "type": "close", "message": {"text": "{{queue.name}} is empty"}}],
}  # fmt: skip


@pytest.fixture
async def svc(svc: Services) -> Services:
    """The shared services on PostgreSQL and SQLite, with the bot runner installed."""
    runner.install(svc.db)
    return svc


async def _inbox(svc: Services, key: str, doc: dict[str, Any], *, staffed: bool = False) -> int:
    async with svc.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        ib = await f.inbox(s, await f.queue(s, "front", [op]))
        if staffed:
            await f.set_status(s, op, "available")
        row = await service.create(s, Principal.of(admin), key, key, doc)
        await service.publish(s, Principal.of(admin), row.id)
        ib.config = {"scenario": key}
        return ib.id


async def _say(svc: Services, inbox_id: int, body: str) -> int:
    async with svc.db.transaction() as s:
        msg = c.InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value="cust", body=body)
        return (await c.do_ingest_inbound(s, msg)).conversation.id


async def _bodies(svc: Services, conv_id: int) -> list[str]:
    async with svc.db.transaction() as s:
        rows = await s.scalars(
            select(m.Message.body)
            .where(m.Message.conversation_id == conv_id, m.Message.direction == "out")
            .order_by(m.Message.id)
        )
        return list(rows)


async def test_bot_timer_token_written_at_the_end_of_the_step_matches_its_deadline(svc: Services) -> None:
    conv_id = await _say(svc, await _inbox(svc, "runs-out", RUNS_OUT), "hello")
    async with svc.db.transaction() as s:
        bot = await s.get_one(m.BotSession, conv_id)
        timers = (await s.scalars(select(m.Deadline).where(m.Deadline.ref_id == conv_id))).all()
        assert bot.status == "running" and bot.timer_token > 0
        assert [t.payload["token"] for t in timers if t.kind == runner.BOT_TIMER] == [bot.timer_token]
    assert await _bodies(svc, conv_id) == ["Your name?"]


async def test_bot_step_that_needs_no_queue_row_still_closes_with_the_variables(svc: Services) -> None:
    inbox_id = await _inbox(svc, "runs-out", RUNS_OUT)
    conv_id = await _say(svc, inbox_id, "hello")
    assert await _say(svc, inbox_id, "Ann") == conv_id
    async with svc.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        bot = await s.get_one(m.BotSession, conv_id)
        assert bot.status == "closed" and conv.status == m.ConversationStatus.CLOSED
        assert conv.variables["who"] == "Ann"
        assert await s.scalar(select(m.BotStep.id).where(m.BotStep.node == "bye")) is not None
    assert await _bodies(svc, conv_id) == ["Your name?", "Bye Ann"]


@pytest.mark.parametrize("staffed", [True, False])
async def test_bot_step_that_names_the_queue_or_asks_for_agents_reads_the_queue(
    svc: Services, staffed: bool
) -> None:
    conv_id = await _say(svc, await _inbox(svc, "facts", QUEUE_FACTS, staffed=staffed), "hello")
    assert await _bodies(svc, conv_id) == ["front has agents" if staffed else "front is empty"]


ASKS_NUMBER: dict[str, Any] = {
    "name": "asks a name and a number", "start": "who",
    "variables": [{"name": "who"}, {"name": "n", "type": "number"}],
    "nodes": [{"id": "who", "type": "ask", "input": "text", "content": {"text": "Your name?"},
               "variable": "who", "ports": {"next": "ask", "on_max_retries": "bye"}},
              {"id": "ask", "type": "ask", "input": "number", "content": {"text": "A number?"},
               "variable": "n", "retries": 5, "ports": {"next": "bye", "on_max_retries": "bye"}},
              {"id": "bye", "type": "close", "message": {"text": "Got {{n}}"}}],
}  # fmt: skip


@pytest.mark.parametrize("answer", ["Ann", "not a number"])
async def test_a_bot_step_on_postgresql_is_a_look_up_and_one_write(svc: Services, answer: str) -> None:
    """The ingest look-up locks the bot session with the conversation (no second select); the
    customer's message, the bot's reply, their events, the session's update, the step records
    and the conversation's update (its message time, the variables the bot collected) go out
    in one statement (bench/README.md, issue 15)."""
    if svc.db.is_sqlite:
        pytest.skip("SQLite looks rows up one by one (no LATERAL; embedded, one process)")
    from sqlalchemy import event

    inbox_id = await _inbox(svc, "asks", ASKS_NUMBER)
    conv_id = await _say(svc, inbox_id, "hello")
    if answer != "Ann":
        await _say(svc, inbox_id, "Ann")
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0])

    def direct(statement: str) -> None:  # sent straight on asyncpg (``omni.db.driver``)
        count(None, None, statement)

    event.listen(svc.db.engine.sync_engine, "before_cursor_execute", count)
    driver.listen(svc.db.engine, direct)
    try:
        assert await _say(svc, inbox_id, answer) == conv_id
    finally:
        event.remove(svc.db.engine.sync_engine, "before_cursor_execute", count)
        driver.remove(svc.db.engine, direct)
    assert seen == ["SELECT", "WITH"], seen
    assert (await _bodies(svc, conv_id))[-1] == "A number?"
    async with svc.db.transaction() as s:
        bot = await s.get_one(m.BotSession, conv_id)
        conv = await s.get_one(m.Conversation, conv_id)
        newest = select(func.max(m.Message.created_at)).where(m.Message.conversation_id == conv_id)
        last = await s.scalar(newest)
        steps = (await s.scalars(select(m.BotStep.outcome).where(m.BotStep.conversation_id == conv_id))).all()
        events = await s.scalar(
            select(func.count()).where(m.Event.conversation_id == conv_id, m.Event.type == "message.created")
        )
        assert bot.status == "running" and bot.state["node"] == "ask"
        assert bot.timer_token == (2 if answer == "Ann" else 3)
        assert conv.variables["who"] == "Ann" and conv.last_message_at == last
        assert events == (4 if answer == "Ann" else 6)
        assert ("invalid" in steps) == (answer != "Ann")


async def test_an_answer_that_waits_for_the_step_before_it_sees_what_that_step_wrote(svc: Services) -> None:
    """The look-up locks the bot session with the conversation: a second message of the same
    customer waits for the first step to commit and then steps from the state it wrote, never
    writing over it (a stale session read would lose the first step's attempt and token)."""
    if svc.db.is_sqlite:
        pytest.skip("SQLite runs one transaction at a time")
    import asyncio

    from sqlalchemy import text

    inbox_id = await _inbox(svc, "asks", ASKS_NUMBER)
    conv_id = await _say(svc, inbox_id, "hello")
    await _say(svc, inbox_id, "Ann")
    stepped, commit = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with svc.db.transaction() as s:
            said = c.InboundMessage(inbox_id, identity_kind="external", identity_value="cust", body="x")
            await c.do_ingest_inbound(s, said)
            stepped.set()
            await commit.wait()

    one = asyncio.create_task(first())
    await stepped.wait()
    two = asyncio.create_task(_say(svc, inbox_id, "def"))
    async with svc.db.engine.connect() as conn:  # the second look-up waits for the first's lock
        for _ in range(400):
            waiting = await conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND wait_event_type = 'Lock'")
            )  # fmt: skip
            await conn.rollback()
            if waiting:
                break
            await asyncio.sleep(0.025)
        assert waiting, "the second message never waited for the first step's lock"
    commit.set()
    await one
    assert await two == conv_id
    async with svc.db.transaction() as s:
        bot = await s.get_one(m.BotSession, conv_id)
        invalid = await s.scalar(
            select(func.count()).where(m.BotStep.conversation_id == conv_id, m.BotStep.outcome == "invalid")
        )
        assert bot.status == "running" and bot.timer_token == 4 and invalid == 2
        assert bot.state["attempts"] == {"ask": 2}, bot.state
    assert await _bodies(svc, conv_id) == ["Your name?"] + ["A number?"] * 3


async def test_a_closing_step_writes_its_conversation_once(svc: Services) -> None:
    """Closing cancels the conversation's timers with a Core statement that flushes nothing
    (it used to autoflush the conversation, which was then written twice); the conversation's
    close, the messages and the events go out with the step's statement (the commit then has
    nothing left to write)."""
    if svc.db.is_sqlite:
        pytest.skip("SQLite looks rows up one by one (no LATERAL; embedded, one process)")
    from sqlalchemy import event

    inbox_id = await _inbox(svc, "asks", ASKS_NUMBER)
    conv_id = await _say(svc, inbox_id, "hello")
    await _say(svc, inbox_id, "Ann")
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()[:3]))

    def direct(statement: str) -> None:  # sent straight on asyncpg (``omni.db.driver``)
        count(None, None, statement)

    event.listen(svc.db.engine.sync_engine, "before_cursor_execute", count)
    driver.listen(svc.db.engine, direct)
    try:
        assert await _say(svc, inbox_id, "42") == conv_id
    finally:
        event.remove(svc.db.engine.sync_engine, "before_cursor_execute", count)
        driver.remove(svc.db.engine, direct)
    assert seen == [
        "SELECT inboxes.id, inboxes.name,", "UPDATE deadlines SET", "WITH written AS",
    ], seen  # fmt: skip
    async with svc.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        bot = await s.get_one(m.BotSession, conv_id)
        closed = (
            await s.scalars(
                select(m.Event.type)
                .where(m.Event.conversation_id == conv_id)
                .order_by(m.Event.id.desc())
                .limit(3)
            )
        ).all()
        assert conv.status == m.ConversationStatus.CLOSED and bot.status == "closed"
        assert conv.closed_at is not None
        assert conv.variables["n"] == 42
        assert list(reversed(closed)) == ["message.created", "message.created", "conversation.closed"]
    assert (await _bodies(svc, conv_id))[-1] == "Got 42"


async def test_a_bot_step_stores_the_answer_and_the_reply_in_order_with_their_events(svc: Services) -> None:
    """The customer's answer and the bot's reply are written with the step (deferred, in one
    statement with the step's rows on PostgreSQL): both stored, in the order they were made,
    each announced once with its own id, the answer's event first; the ingest's result names
    the stored answer."""
    inbox_id = await _inbox(svc, "asks", ASKS_NUMBER)
    conv_id = await _say(svc, inbox_id, "hello")
    async with svc.db.transaction() as s:
        said = c.InboundMessage(
            inbox_id=inbox_id, identity_kind="external", identity_value="cust", body="Ann"
        )
        result = await c.do_ingest_inbound(s, said)
        answer_id = result.message.id
        assert answer_id is not None and result.message.body == "Ann"
    async with svc.db.transaction() as s:
        stored = (
            await s.execute(
                select(m.Message.id, m.Message.direction, m.Message.body)
                .where(m.Message.conversation_id == conv_id)
                .order_by(m.Message.id)
            )
        ).all()
        events = (
            await s.execute(
                select(m.Event.id, m.Event.payload)
                .where(m.Event.conversation_id == conv_id, m.Event.type == "message.created")
                .order_by(m.Event.id)
            )
        ).all()
    assert [(d, b) for _, d, b in stored] == [
        ("in", "hello"), ("out", "Your name?"), ("in", "Ann"), ("out", "A number?"),
    ]  # fmt: skip
    assert stored[2][0] == answer_id
    assert [(e.payload["id"], e.payload["direction"], e.payload["body"]) for e in events] == [
        (i, d, b) for i, d, b in stored
    ]
    assert all(e.payload["conversation_id"] == conv_id for e in events)


async def test_an_answer_no_bot_step_takes_is_still_stored_and_announced(svc: Services) -> None:
    """The answer to a bot is deferred to the step's statement; when no step runs (the bot's
    session stopped while the conversation still says bot) it is written before the ingest
    returns, its id in the result and in its event."""
    inbox_id = await _inbox(svc, "asks", ASKS_NUMBER)
    conv_id = await _say(svc, inbox_id, "hello")
    async with svc.db.transaction() as s:
        (await s.get_one(m.BotSession, conv_id)).status = "error"
    async with svc.db.transaction() as s:
        said = c.InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value="cust", body="x")
        result = await c.do_ingest_inbound(s, said)
        assert result.message.id
        answer_id = result.message.id
    async with svc.db.transaction() as s:
        stored = await s.get_one(m.Message, answer_id)
        announced = (
            await s.scalars(
                select(m.Event.payload).where(m.Event.conversation_id == conv_id).order_by(m.Event.id.desc())
            )
        ).first()
    assert stored.body == "x" and stored.direction == "in"
    assert announced is not None and announced["id"] == answer_id and announced["body"] == "x"
