"""The message hot path (issue 15) stores and announces exactly what it did before it took
fewer round trips: one message row and one ``message.created`` per idempotency key, resends
answered with the stored copy, a resend to a closed conversation never reopening it, and a
relay batch's delivery receipts giving the same rows and events as one receipt at a time — on
PostgreSQL and on SQLite (the embedded mode)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from omni.db import driver
from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import presence
from omni.domain.errors import NotFound
from omni.domain.routing import do_route_pending
from omni.services import Services
from tests import factories as f


@pytest.fixture
async def chat(svc: Services) -> dict[str, int]:
    """An auto-accepting queue with one available operator, and its widget inbox."""
    async with svc.db.transaction() as s:
        alice = await f.user(s, "alice")
        q = await f.queue(s, "web", [alice], auto_accept=True)
        inbox = await f.inbox(s, q, channel="widget")
        await presence.do_set_status(s, alice.id, await presence.status_by_code(s, "available"))
        return {"alice": alice.id, "inbox": inbox.id}


async def visitor_says(
    svc: Services, inbox_id: int, body: str, *, client_id: str | None = None, external_id: str | None = None
) -> c.IngestResult:
    async with svc.db.transaction() as s:
        return await c.do_ingest_inbound(
            s,
            c.InboundMessage(
                inbox_id=inbox_id,
                identity_kind="widget",
                identity_value="v:visitor",
                body=body,
                client_id=client_id,
                external_id=external_id,
            ),
        )


async def messages(svc: Services, conv_id: int) -> list[tuple[int, str, str | None, str]]:
    async with svc.db.transaction() as s:
        rows = await s.scalars(
            select(m.Message).where(m.Message.conversation_id == conv_id).order_by(m.Message.id)
        )
        return [(x.id, x.body, x.client_id, x.delivery) for x in rows]


async def events(svc: Services, type_: str) -> list[dict[str, Any]]:
    async with svc.db.transaction() as s:
        rows = await s.scalars(select(m.Event).where(m.Event.type == type_).order_by(m.Event.id))
        return [{"conversation_id": e.conversation_id, "user_id": e.user_id, **e.payload} for e in rows]


async def test_widget_resend_is_stored_once_and_announced_once(svc: Services, chat: dict[str, int]) -> None:
    first = await visitor_says(svc, chat["inbox"], "hello", client_id="w1")
    await do_route_pending(svc.db)
    sent = await visitor_says(svc, chat["inbox"], "where is my order?", client_id="b1")
    again = await visitor_says(svc, chat["inbox"], "where is my order?", client_id="b1")
    assert not sent.duplicate and again.duplicate
    assert again.message.id == sent.message.id and again.conversation.id == first.conversation.id
    assert sent.message.created_at.tzinfo is not None, "the stored row reads back as aware UTC"
    assert sent.conversation.status == "active" and sent.conversation.last_message_at is not None
    stored = await messages(svc, first.conversation.id)
    assert [(body, cid, d) for _, body, cid, d in stored] == [
        ("hello", "w1", "stored"),
        ("where is my order?", "b1", "stored"),
    ]
    created = [e for e in await events(svc, "message.created") if e["direction"] == "in"]
    assert [(e["id"], e["client_id"], e["user_id"]) for e in created] == [
        (stored[0][0], "w1", None),
        (stored[1][0], "b1", chat["alice"]),
    ], "one event per stored message, the second naming the operator it was assigned to"


async def test_resend_to_a_closed_conversation_does_not_reopen_it(
    svc: Services, chat: dict[str, int]
) -> None:
    first = await visitor_says(svc, chat["inbox"], "hello", client_id="w1")
    async with svc.db.transaction() as s:
        left = await c.do_customer_left(s, first.conversation.id)
        assert left is not None and left.status not in m.OPEN_STATUSES
        ended = left.status
    # Within the reopen window a new message would reopen it; the same message again must not.
    again = await visitor_says(svc, chat["inbox"], "hello", client_id="w1")
    assert again.duplicate and again.message.id == first.message.id
    assert again.conversation.status == ended
    assert len(await messages(svc, first.conversation.id)) == 1


async def test_telegram_style_redelivery_by_external_id_is_a_duplicate(
    svc: Services, chat: dict[str, int]
) -> None:
    sent = await visitor_says(svc, chat["inbox"], "hi", external_id="update-7")
    again = await visitor_says(svc, chat["inbox"], "hi", external_id="update-7")
    assert again.duplicate and again.message.id == sent.message.id
    assert len(await messages(svc, sent.conversation.id)) == 1


async def test_operator_resend_with_the_same_client_id_returns_the_stored_reply(
    svc: Services, chat: dict[str, int]
) -> None:
    first = await visitor_says(svc, chat["inbox"], "hello", client_id="w1")
    await do_route_pending(svc.db)
    conv_id = first.conversation.id
    replies = []
    for _ in range(2):
        async with svc.db.transaction() as s:
            alice = f.who(await s.get_one(m.User, chat["alice"]))
            replies.append(await c.check_send_message(s, alice, conv_id, "on its way", client_id="r1"))
    assert replies[0].id == replies[1].id and replies[0].delivery == "pending"
    assert [(b, cid) for _, b, cid, _ in await messages(svc, conv_id)] == [
        ("hello", "w1"),
        ("on its way", "r1"),
    ]
    out = [e for e in await events(svc, "message.created") if e["direction"] == "out"]
    assert [(e["id"], e["client_id"], e["author_user_id"]) for e in out] == [
        (replies[0].id, "r1", chat["alice"])
    ]


async def test_a_batch_of_delivery_receipts_equals_one_at_a_time(svc: Services, chat: dict[str, int]) -> None:
    first = await visitor_says(svc, chat["inbox"], "hello", client_id="w1")
    await do_route_pending(svc.db)
    async with svc.db.transaction() as s:
        alice = f.who(await s.get_one(m.User, chat["alice"]))
        conv_id = first.conversation.id
        ids = [
            (await c.check_send_message(s, alice, conv_id, f"r{i}", client_id=f"r{i}")).id for i in range(4)
        ]
    marks = [
        (ids[0], "sent", ""),
        (ids[1], "failed", "no socket"),
        (ids[0], "delivered", ""),
        (ids[2], "sent", ""),
    ]
    async with svc.db.transaction() as s:
        await c.do_mark_deliveries(s, marks)
    batched = await events(svc, "message.delivery")
    async with svc.db.transaction() as s:
        for message_id, state, error in marks:
            await c.do_mark_delivery(s, message_id, state, error)
    one_by_one = (await events(svc, "message.delivery"))[len(batched) :]
    assert batched == one_by_one
    assert [(e["message_id"], e["delivery"], e["error"], e["user_id"]) for e in batched] == [
        (ids[0], "sent", "", chat["alice"]),
        (ids[1], "failed", "no socket", chat["alice"]),
        (ids[0], "delivered", "", chat["alice"]),
        (ids[2], "sent", "", chat["alice"]),
    ]
    states = {i: d for i, _, _, d in await messages(svc, first.conversation.id)}
    assert [states[i] for i in ids] == ["delivered", "failed", "sent", "pending"]


async def test_a_batch_with_an_unknown_message_records_nothing(svc: Services, chat: dict[str, int]) -> None:
    first = await visitor_says(svc, chat["inbox"], "hello", client_id="w1")
    with pytest.raises(NotFound):
        async with svc.db.transaction() as s:
            await c.do_mark_deliveries(
                s, [(first.message.id, "read", ""), (first.message.id + 999, "read", "")]
            )
    async with svc.db.transaction() as s:
        count = await s.scalar(
            select(func.count()).select_from(m.Event).where(m.Event.type == "message.delivery")
        )
    assert count == 0
    assert (await messages(svc, first.conversation.id))[0][3] == "stored"


async def test_an_external_id_redelivered_after_the_close_is_the_stored_message_not_a_reopen(
    svc: Services, chat: dict[str, int]
) -> None:
    sent = await visitor_says(svc, chat["inbox"], "hi", external_id="update-9")
    async with svc.db.transaction() as s:
        left = await c.do_customer_left(s, sent.conversation.id)
        assert left is not None and left.status not in m.OPEN_STATUSES
        ended = left.status
    again = await visitor_says(svc, chat["inbox"], "hi", external_id="update-9")
    assert again.duplicate and again.message.id == sent.message.id
    assert again.conversation.id == sent.conversation.id and again.conversation.status == ended
    async with svc.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.Conversation)) == 1


async def test_a_caller_is_one_contact_however_the_number_is_written_with_its_zone(svc: Services) -> None:
    async with svc.db.transaction() as s:
        q = await f.queue(s, "phones")
        inbox = await f.inbox(s, q, channel="api")

    async def says(number: str, body: str, name: str = "") -> c.IngestResult:
        async with svc.db.transaction() as s:
            return await c.do_ingest_inbound(
                s,
                c.InboundMessage(
                    inbox_id=inbox.id,
                    identity_kind="phone",
                    identity_value=number,
                    body=body,
                    contact_name=name,
                ),
            )

    first = await says("8 (423) 222-33-44", "hello")
    second = await says("+7 423 222 33 44", "it's me again", name="Ivan Petrov")
    assert second.conversation.id == first.conversation.id and not second.created
    async with svc.db.transaction() as s:
        contacts = (await s.scalars(select(m.Contact))).all()
        assert [(x.phone, x.timezone, x.name) for x in contacts] == [
            ("+74232223344", "Asia/Vladivostok", "Ivan Petrov")  # the name the channel told later
        ]
    with pytest.raises(Exception, match="not a possible phone number"):
        await says("12", "bad number")
    with pytest.raises(NotFound):
        async with svc.db.transaction() as s:
            await c.do_ingest_inbound(
                s,
                c.InboundMessage(
                    inbox_id=inbox.id + 99, identity_kind="phone", identity_value="12", body="x"
                ),
            )


def statements(svc: Services) -> Any:
    """A context manager recording the first word of every statement sent meanwhile."""
    import contextlib

    from sqlalchemy import event

    @contextlib.contextmanager
    def recording() -> Any:
        seen: list[str] = []

        def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            seen.append(statement.split()[0])

        def direct(sql: str) -> None:  # sent straight on asyncpg (omni.db.driver)
            seen.append(sql.split()[0])

        event.listen(svc.db.engine.sync_engine, "before_cursor_execute", count)
        driver.listen(svc.db.engine, direct)
        try:
            yield seen
        finally:
            event.remove(svc.db.engine.sync_engine, "before_cursor_execute", count)
            driver.remove(svc.db.engine, direct)

    return recording()


async def test_a_message_to_an_open_conversation_takes_two_statements_on_postgresql(
    svc: Services, chat: dict[str, int]
) -> None:
    """The look-up is one statement (inbox, contact, locked conversation, re-delivery check),
    then one more stores the message, touches the conversation and writes its event (CTEs;
    bench/README.md, issue 15) — and each of the three is there as before."""
    if svc.db.is_sqlite:
        pytest.skip("SQLite looks them up one by one (no LATERAL; embedded, one process)")
    first = await visitor_says(svc, chat["inbox"], "hello", external_id="u1")
    with statements(svc) as seen:
        again = await visitor_says(svc, chat["inbox"], "and one more", external_id="u2")
    assert again.conversation.id == first.conversation.id and not again.duplicate
    assert seen == ["SELECT", "WITH"], seen
    async with svc.db.transaction() as s:
        conv = await s.get_one(m.Conversation, again.conversation.id)
        assert conv.last_message_at == again.message.created_at
    assert again.conversation.last_message_at == again.message.created_at
    created = await events(svc, "message.created")
    assert [(e["id"], e["body"], e["external_id"], e["channel"]) for e in created] == [
        (first.message.id, "hello", "u1", "widget"),
        (again.message.id, "and one more", "u2", "widget"),
    ]
    assert created[1]["created_at"] == again.message.created_at.isoformat()


async def test_an_operator_reply_is_two_statements_and_a_note_leaves_the_last_message_time(
    svc: Services, chat: dict[str, int]
) -> None:
    """``/operator`` ``send``: the conversation read (locked) and the one statement that stores,
    touches and announces; a private note is announced without touching ``last_message_at``."""
    first = await visitor_says(svc, chat["inbox"], "hello", client_id="w1")
    await do_route_pending(svc.db)
    conv_id = first.conversation.id
    async with svc.db.transaction() as s:
        before = (await s.get_one(m.Conversation, conv_id)).last_message_at
    with statements(svc) as seen:
        async with svc.db.transaction() as s:
            alice = f.who(await s.get_one(m.User, chat["alice"]))
            seen.clear()  # the user read above is the test's, not the reply's
            note = await c.check_send_message(s, alice, conv_id, "vip", client_id="n1", private=True)
    if not svc.db.is_sqlite:
        assert seen == ["SELECT", "WITH"], seen
    async with svc.db.transaction() as s:
        assert (await s.get_one(m.Conversation, conv_id)).last_message_at == before
        alice = f.who(await s.get_one(m.User, chat["alice"]))
        reply = await c.check_send_message(s, alice, conv_id, "on its way", client_id="r1")
    async with svc.db.transaction() as s:
        assert (await s.get_one(m.Conversation, conv_id)).last_message_at == reply.created_at
    created = await events(svc, "message.created")
    assert [(e["id"], e["direction"], e["user_id"]) for e in created[1:]] == [
        (note.id, "note", chat["alice"]),
        (reply.id, "out", chat["alice"]),
    ]


async def test_an_operator_reply_s_rows_are_the_session_s_objects_and_an_expired_one_is_read_afresh(
    svc: Services, chat: dict[str, int]
) -> None:
    """The reply reads its conversation and stores its message on the driver, without the
    ORM's execution: both are the session's persistent objects as if loaded (a change is
    flushed, ``session.get`` finds them), and a conversation this transaction changed behind
    the ORM's back and expired (as ``routing_pg`` does) comes back with the row's values, not a
    lazy load that async code cannot make."""
    from sqlalchemy import inspect, update

    first = await visitor_says(svc, chat["inbox"], "hello", client_id="w1")
    await do_route_pending(svc.db)
    conv_id = first.conversation.id
    table = m.Conversation.__table__
    async with svc.db.transaction() as s:
        held = await s.get_one(m.Conversation, conv_id)
        await s.execute(update(table).where(table.c.id == conv_id).values(subject="set behind"))
        s.sync_session.expire(held)
        alice = f.who(await s.get_one(m.User, chat["alice"]))
        reply = await c.check_send_message(s, alice, conv_id, "on its way", client_id="r1")
        assert held.subject == "set behind" and held.status == m.ConversationStatus.ACTIVE
        assert inspect(reply).persistent and await s.get(m.Message, reply.id) is reply
        assert (reply.body, reply.direction, reply.client_id) == ("on its way", "out", "r1")
        held.subject = "by the operator"
    async with svc.db.transaction() as s:
        stored = await s.get_one(m.Conversation, conv_id)
        assert stored.subject == "by the operator" and stored.last_message_at == reply.created_at


async def test_a_message_that_opens_a_conversation_is_announced_after_it(
    svc: Services, chat: dict[str, int]
) -> None:
    """With the conversation's own events pending in the session, the message's event is
    written after them (the outbox order): the one-statement path is not taken then."""
    result = await visitor_says(svc, chat["inbox"], "hello", client_id="w1")
    assert result.created
    async with svc.db.transaction() as s:
        rows = await s.scalars(
            select(m.Event).where(m.Event.conversation_id == result.conversation.id).order_by(m.Event.id)
        )
        kinds = [e.type for e in rows]
    assert kinds.index("conversation.created") < kinds.index("message.created"), kinds


async def test_a_new_call_is_read_once_and_inserted_with_its_place_in_line_on_postgresql(
    svc: Services,
) -> None:
    """A caller's first contact: one look-up (inbox, its queue, contact, conversation), then
    inserts only — the conversation's insert carries its place in line and last message time
    (no ``UPDATE`` after it), and the conversation is queued with its timer and events as before."""
    if svc.db.is_sqlite:
        pytest.skip("SQLite looks them up one by one (no LATERAL; embedded, one process)")
    from sqlalchemy import event

    async with svc.db.transaction() as s:
        q = await f.queue(s, "calls", queue_timeout_seconds=120)
        inbox = await f.inbox(s, q, channel="voice")
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()[:3]))

    def direct(statement: str) -> None:  # sent straight on asyncpg (``omni.db.driver``)
        count(None, None, statement)

    event.listen(svc.db.engine.sync_engine, "before_cursor_execute", count)
    driver.listen(svc.db.engine, direct)
    try:
        async with svc.db.transaction() as s:
            result = await c.do_ingest_inbound(
                s,
                c.InboundMessage(
                    inbox_id=inbox.id,
                    identity_kind="phone",
                    identity_value="+7 916 123-45-67",
                    contact_phone="+79161234567",
                    external_id="1700000000.1",
                    medium=m.Medium.VOICE,
                    body="Incoming call",
                    variables={"linkedid": "1700000000.1"},
                    channel="voice",
                ),
            )
    finally:
        event.remove(svc.db.engine.sync_engine, "before_cursor_execute", count)
        driver.remove(svc.db.engine, direct)
    assert result.created
    kinds = [x.split()[0] for x in seen]
    assert kinds[0] == "SELECT" and "SELECT" not in kinds[1:] and "UPDATE" not in kinds, seen
    async with svc.db.transaction() as s:
        conv = await s.get(m.Conversation, result.conversation.id)
        assert conv is not None
        timers = (await s.scalars(select(m.Deadline.kind).where(m.Deadline.ref_id == conv.id))).all()
        types = (
            await s.scalars(
                select(m.Event.type).where(m.Event.conversation_id == conv.id).order_by(m.Event.id)
            )
        ).all()
    assert conv.status == "queued" and conv.queue_id == q.id
    assert conv.enqueued_at == conv.first_enqueued_at == conv.last_message_at == conv.created_at
    assert list(timers) == ["queue_timeout"]
    assert list(types) == ["conversation.created", "conversation.queued", "message.created"]


async def test_the_channels_admission_check_sees_the_looked_up_customer_and_refuses_unwritten(
    svc: Services, chat: dict[str, int]
) -> None:
    """``InboundMessage.admit`` (the widget's pre-chat check) is told the inbox, the contact and
    whether they have a conversation here (read by the look-up on PostgreSQL, by the check
    itself on SQLite); when it raises, nothing of the message is written."""
    told: list[c.Admission] = []

    async def admit(_s: Any, found: c.Admission) -> None:
        told.append(found)
        if found.inbox.config.get("closed_to_strangers") and found.contact is None and found.looked_up:
            raise NotFound("refused")

    def says(body: str, client_id: str) -> c.InboundMessage:
        return c.InboundMessage(
            inbox_id=chat["inbox"],
            identity_kind="widget",
            identity_value="v:visitor",
            body=body,
            client_id=client_id,
            admit=admit,
        )

    async with svc.db.transaction() as s:
        (await s.get_one(m.Inbox, chat["inbox"])).config = {"closed_to_strangers": True}
    if not svc.db.is_sqlite:
        with pytest.raises(NotFound):
            async with svc.db.transaction() as s:
                await c.do_ingest_inbound(s, says("hello", "w0"))
        async with svc.db.transaction() as s:
            assert await s.scalar(select(func.count()).select_from(m.Contact)) == 0
            assert await s.scalar(select(func.count()).select_from(m.Message)) == 0
        assert told[-1].contact is None and not told[-1].has_conversation
    async with svc.db.transaction() as s:
        (await s.get_one(m.Inbox, chat["inbox"])).config = {}
    async with svc.db.transaction() as s:
        first = await c.do_ingest_inbound(s, says("hello", "w1"))
    async with svc.db.transaction() as s:
        await c.do_ingest_inbound(s, says("again", "w2"))
    last = told[-1]
    assert last.inbox.id == chat["inbox"]
    if svc.db.is_sqlite:
        assert not last.looked_up and last.contact is None
    else:
        assert last.looked_up and last.has_conversation
        assert last.contact is not None and last.contact.id == first.conversation.contact_id


async def test_the_look_up_sees_what_the_transaction_left_pending(
    svc: Services, chat: dict[str, int]
) -> None:
    """The look-up reads on the driver, without the session's autoflush: what an earlier action
    of the same transaction left pending (here a newer conversation of the customer, not yet
    flushed) is written first, so the message joins that conversation as it did before."""
    from datetime import UTC, datetime

    first = await visitor_says(svc, chat["inbox"], "hello")
    async with svc.db.transaction() as s:
        old = await s.get_one(m.Conversation, first.conversation.id)
        now = datetime.now(UTC)
        newer = m.Conversation(
            contact_id=old.contact_id,
            inbox_id=old.inbox_id,
            queue_id=old.queue_id,
            channel=old.channel,
            medium=old.medium,
            status=m.ConversationStatus.QUEUED,
            subject="",
            variables={},
            extra_queue_ids=[],
            created_at=now,
            last_message_at=now,
        )
        s.add(newer)  # pending: not flushed
        result = await c.do_ingest_inbound(
            s,
            c.InboundMessage(
                inbox_id=chat["inbox"], identity_kind="widget", identity_value="v:visitor", body="again"
            ),
        )
        assert newer.id is not None and result.conversation.id == newer.id != old.id
    async with svc.db.transaction() as s:
        bodies = (await s.scalars(select(m.Message.body).where(m.Message.conversation_id == newer.id))).all()
    assert list(bodies) == ["again"]


async def test_the_look_up_s_objects_are_persistent_as_if_the_orm_had_loaded_them(
    svc: Services, chat: dict[str, int]
) -> None:
    """The look-up attaches its objects as the ORM's loading does (scen8), not through
    ``session.add``: each is persistent in the session under the key ``session.get`` uses (no
    second object, no SELECT), clean, and a change to it is flushed as an UPDATE of that column
    alone; an object the session already held is the one the look-up returns, unchanged."""
    from sqlalchemy import event, inspect

    first = await visitor_says(svc, chat["inbox"], "hello")
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    async with svc.db.transaction() as s:
        result = await c.do_ingest_inbound(
            s,
            c.InboundMessage(
                inbox_id=chat["inbox"], identity_kind="widget", identity_value="v:visitor", body="again"
            ),
        )
        conv = result.conversation
        assert conv.id == first.conversation.id
        state = inspect(conv)
        assert state.persistent and state.session_id == s.sync_session.hash_key
        assert not state.expired_attributes
        contact = await s.get(m.Contact, conv.contact_id)
        inbox = await s.get(m.Inbox, chat["inbox"])
        assert contact is not None and inspect(contact).persistent and not inspect(contact).modified
        assert inbox is not None and inspect(inbox).persistent and not inspect(inbox).modified
        await s.flush()
        event.listen(svc.db.engine.sync_engine, "before_cursor_execute", count)
        try:
            assert await s.get(m.Conversation, conv.id) is conv  # from the identity map
            assert sent == []
            contact.name = "Renamed"
            await s.flush()
        finally:
            event.remove(svc.db.engine.sync_engine, "before_cursor_execute", count)
        assert len(sent) == 1 and sent[0].lstrip().upper().startswith("UPDATE CONTACTS SET NAME=")
    async with svc.db.transaction() as s:
        held = await s.get_one(m.Conversation, first.conversation.id)
        held.subject = "kept"  # a change of this transaction the look-up must not overwrite
        result = await c.do_ingest_inbound(
            s,
            c.InboundMessage(
                inbox_id=chat["inbox"], identity_kind="widget", identity_value="v:visitor", body="third"
            ),
        )
        assert result.conversation is held and held.subject == "kept"
    async with svc.db.transaction() as s:
        assert (await s.get_one(m.Contact, conv.contact_id)).name == "Renamed"
        assert (await s.get_one(m.Conversation, conv.id)).subject == "kept"
