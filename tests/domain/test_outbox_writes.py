"""The outbox rows a transaction emits are written by the session with one statement per
flush (``omni.db.outbox``), not as ORM objects: the order of the outbox is still the emit
order — across flushes, savepoints and the router's own event inserts — nothing emitted in
what rolled back is written, and each row gets its sequence number once written. On
PostgreSQL and SQLite, through the services the app builds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import routing
from omni.domain.events import emit
from omni.services import Services
from tests import factories as f


def _changed(n: int) -> dict[str, Any]:
    return {"entity": "queue", "id": n, "action": "created"}


async def _outbox(svc: Services) -> list[tuple[int, str, Any]]:
    async with svc.db.transaction() as s:
        rows = await s.execute(select(m.Event.id, m.Event.type, m.Event.payload).order_by(m.Event.id))
        return [(r.id, r.type, r.payload) for r in rows]


async def test_events_keep_their_emit_order_across_flushes_and_savepoints(svc: Services) -> None:
    async with svc.db.transaction() as s:
        first = emit(s, "admin.changed", _changed(1))
        s.add(m.Skill(name="written with the first event"))
        await s.flush()
        assert first.id is not None  # written with the flush, numbered
        second = emit(s, "admin.changed", _changed(2))
        seen = await s.scalars(select(m.Event.payload).order_by(m.Event.id))  # autoflush: visible
        assert [p["id"] for p in seen] == [1, 2]
        emit(s, "admin.changed", _changed(3))
        with pytest.raises(LookupError):
            async with s.begin_nested():  # what a savepoint emits goes with it
                emit(s, "admin.changed", _changed(4))
                raise LookupError
        async with s.begin_nested():
            emit(s, "admin.changed", _changed(5))
        emit(s, "admin.changed", _changed(6))
    events = await _outbox(svc)
    assert [p["id"] for _, _, p in events] == [1, 2, 3, 5, 6]
    assert [i for i, _, _ in events] == sorted(i for i, _, _ in events)
    assert (first.id, second.id) == (events[0][0], events[1][0])


async def test_a_transaction_that_only_emits_writes_its_events_in_one_statement_at_commit(
    svc: Services,
) -> None:
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0])

    event.listen(svc.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with svc.db.transaction() as s:
            rows = [emit(s, "admin.changed", _changed(n)) for n in (7, 8, 9)]
            assert seen == [] and all(r.id is None for r in rows)
    finally:
        event.remove(svc.db.engine.sync_engine, "before_cursor_execute", count)
    stored = await _outbox(svc)
    assert [(r.id, r.payload) for r in rows] == [(i, p) for i, _, p in stored]
    assert [p["id"] for _, _, p in stored] == [7, 8, 9]
    if not svc.db.is_sqlite:  # SQLite writes them one by one (embedded, one writer)
        assert seen == ["INSERT"], seen


async def test_a_rolled_back_transaction_writes_none_of_its_events(svc: Services) -> None:
    with pytest.raises(LookupError):
        async with svc.db.transaction() as s:
            emit(s, "admin.changed", _changed(1))
            s.add(m.Skill(name="flushed, then rolled back"))
            await s.flush()
            emit(s, "admin.changed", _changed(2))
            raise LookupError
    assert await _outbox(svc) == []


@pytest.mark.parametrize("orm_only", [False, True])
async def test_an_event_emitted_before_a_routing_decision_comes_before_its_offer(
    svc: Services, orm_only: bool
) -> None:
    """On PostgreSQL the router writes its events with its own statement; what the transaction
    emitted before it is written first, as the ORM's pending objects were."""
    async with svc.db.transaction() as s:
        op = await f.user(s, "op")
        inbox = await f.inbox(s, await f.queue(s, "front", [op]))
        await f.set_status(s, op)
    async with svc.db.transaction() as s:
        said = c.InboundMessage(inbox_id=inbox.id, identity_kind="external", identity_value="cust", body="hi")
        conv_id = (await c.do_ingest_inbound(s, said)).conversation.id
    async with svc.db.transaction() as s:  # the router ran already if nothing held the operator
        conv = await s.get_one(m.Conversation, conv_id)
        if conv.status != m.ConversationStatus.QUEUED:
            pytest.skip("offered at ingest")
    async with svc.db.transaction() as s:
        emit(s, "admin.changed", _changed(42))
        assert await routing.do_assign(s, conv_id, routing.RoutePass(orm_only=orm_only)) is not None
    types = [t for _, t, _ in await _outbox(svc)]
    assert types[-3:] == ["admin.changed", "conversation.offered", "presence.changed"], types


async def _conversation(svc: Services) -> int:
    async with svc.db.transaction() as s:
        inbox = await f.inbox(s, await f.queue(s, "front"))
        said = c.InboundMessage(inbox_id=inbox.id, identity_kind="external", identity_value="cust", body="hi")
        return (await c.do_ingest_inbound(s, said)).conversation.id


def _note(conv: m.Conversation, body: str) -> m.Message:
    return m.Message(
        conversation_id=conv.id, inbox_id=conv.inbox_id, direction="note", body=body,
        attachments=[], delivery="stored", created_at=datetime.now(UTC),
    )  # fmt: skip


async def _history(svc: Services, conv_id: int) -> list[tuple[int, str]]:
    async with svc.db.transaction() as s:
        rows = await s.execute(
            select(m.Message.id, m.Message.body)
            .where(m.Message.conversation_id == conv_id)
            .order_by(m.Message.id)
        )
        return [(r.id, r.body) for r in rows]


async def test_a_deferred_message_goes_out_with_its_event_in_emit_order_and_history_order(
    svc: Services,
) -> None:
    """``defer_message`` (a bot step's answer and reply): the message is written with its
    event at the next flush, its id in the event; events emitted before and after keep their
    places; a message made after it, by the ORM or by a Core insert, gets a later id (a
    conversation's history is read in id order)."""
    conv_id = await _conversation(svc)
    async with svc.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        emit(s, "admin.changed", _changed(1))
        first = await c.defer_message(s, conv, _note(conv, "deferred 1"))
        assert first.id is None  # not written yet
        emit(s, "admin.changed", _changed(2))
        s.add(_note(conv, "an ORM note after it"))
        seen = await s.scalars(select(m.Message.body).where(m.Message.conversation_id == conv_id))
        assert {"deferred 1", "an ORM note after it"} <= set(seen)  # the autoflush wrote both
        assert first.id is not None
        second = await c.defer_message(s, conv, _note(conv, "deferred 2"))
        after = await c.insert_message(s, _note(conv, "a Core insert after it"))
        assert second.id is not None and second.id < after.id
    history = await _history(svc, conv_id)
    assert [b for _, b in history][-4:] == [
        "deferred 1",
        "an ORM note after it",
        "deferred 2",
        "a Core insert after it",
    ]
    events = [(t, p) for _, t, p in await _outbox(svc)]
    mine = [(t, p) for t, p in events if t == "admin.changed" or p.get("conversation_id") == conv_id]
    assert [(t, p.get("body")) for t, p in mine][-4:] == [
        ("admin.changed", None), ("message.created", "deferred 1"), ("admin.changed", None),
        ("message.created", "deferred 2"),
    ]  # fmt: skip
    ids = {b: i for i, b in history}
    assert [p["id"] for t, p in mine[-4:] if t == "message.created"] == [ids["deferred 1"], ids["deferred 2"]]


async def test_a_deferred_message_rolled_back_is_not_written(svc: Services) -> None:
    conv_id = await _conversation(svc)
    before = await _history(svc, conv_id)
    events = await _outbox(svc)
    with pytest.raises(LookupError):
        async with svc.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            await c.defer_message(s, conv, _note(conv, "never"))
            raise LookupError
    assert await _history(svc, conv_id) == before
    assert await _outbox(svc) == events
