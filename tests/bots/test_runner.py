# ruff: noqa: E501  (scenario documents read best one node per line)
"""Scenarios on real conversations: widget visitor through buttons to an operator, revision
pinning, restart resume, timers as deadlines, HTTP after commit — PostgreSQL, real Socket.IO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from bots import engine as e
from bots import runner, service
from omni.db import Database
from omni.db import models as m
from omni.domain import conversations
from omni.domain.auth import Principal
from omni.domain.engine import run_due_deadlines
from tests import factories as f
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import LiveServer
from tests.helpers import until

DOC: dict[str, Any] = {
    "name": "Front desk",
    "start": "hello",
    "variables": [{"name": "topic"}, {"name": "order", "type": "number"}],
    "nodes": [
        {"id": "hello", "type": "menu", "content": {"text": "Hi {{contact.name}}! What is it about?"},
         "options": [{"id": "billing", "label": "Billing"}, {"id": "tech", "label": "Technical"}],
         "ports": {"opt:billing": "order", "opt:tech": "order", "on_max_retries": "handoff"}},
        {"id": "order", "type": "ask", "input": "number", "content": {"text": "Order number?"},
         "variable": "order", "retries": 1, "timeout_seconds": 60,
         "ports": {"next": "remember", "on_no_input": "handoff", "on_max_retries": "handoff"}},
        {"id": "remember", "type": "set", "assign": [{"variable": "topic", "value": "{{last_input}}"}],
         "ports": {"next": "handoff"}},
        {"id": "handoff", "type": "handoff", "note": "Order {{order}}",
         "ports": {"on_no_agents": "sorry", "on_closed": "sorry"}},
        {"id": "sorry", "type": "close", "result_code": "", "message": {"text": "Nobody is here, sorry"}},
    ],
}  # fmt: skip


async def _setup(server: LiveServer, *, available: bool = True) -> dict[str, Any]:
    async with server.services.db.transaction() as s:
        admin = await f.user(s, "boss", role=m.Role.ADMIN)
        op = await f.user(s, "op")
        q = await f.queue(s, "web", [op])
        ib = await f.inbox(s, q, channel="widget")
        ib.config = {"scenario": "desk"}
        if available:
            await f.set_status(s, op, "available")
        who = Principal.of(admin)
        row = await service.create(s, who, "desk", "Front desk", DOC)
        rev = await service.publish(s, who, row.id)
        return {"token": ib.public_token, "who": who, "scenario_id": row.id, "rev1": rev.id, "op": op.id}


async def _messages(visitor: Visitor, count: int) -> list[dict[str, Any]]:
    await until(lambda: len(visitor.messages) >= count, 10)
    return visitor.messages


async def test_widget_visitor_goes_through_buttons_to_an_operator_with_the_variables(
    live_server: LiveServer,
) -> None:
    ctx = await _setup(live_server)
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=ctx["token"])
    first = await visitor.send("hello", "c-1")
    assert first["ok"] and "position" not in first, "with the bot, not in the line"
    menu = (await _messages(visitor, 1))[0]
    assert menu["body"] == "Hi Ann! What is it about?"
    assert menu["attachments"][0]["buttons"] == [{"id": "billing", "label": "Billing"},
                                                 {"id": "tech", "label": "Technical"}]  # fmt: skip
    pressed = await visitor.sio.call(
        "message",
        {"body": "Technical", "client_id": "c-2", "button": "tech"},
        namespace="/widget",
        timeout=10,
    )
    assert pressed["ok"]
    assert (await _messages(visitor, 2))[1]["body"] == "Order number?"
    await visitor.send("forty-two", "c-3")  # invalid: asked again
    assert (await _messages(visitor, 3))[2]["body"] == "Order number?"
    await visitor.send("42", "c-4")
    conv_id = first["conversation_id"]
    async with live_server.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        assert conv.status in (m.ConversationStatus.QUEUED, m.ConversationStatus.OFFERED)
        assert conv.variables["order"] == 42 and conv.variables["topic"] == "tech"
        note = await s.scalar(select(m.Message).where(m.Message.conversation_id == conv_id,
                                                      m.Message.direction == "note"))  # fmt: skip
        assert note is not None and note.body.endswith("Order 42")
        bot = await s.get_one(m.BotSession, conv_id)
        assert bot.status == "handed_off" and bot.revision_id == ctx["rev1"]
        stats = await service.node_stats(s, ctx["who"], ctx["scenario_id"])
    assert stats["order"]["invalid"] == 1 and stats["order"]["entered"] == 1
    assert stats["handoff"]["ports"] == {"queued": 1}
    assert stats["hello"]["ports"] == {"opt:tech": 1}
    await visitor.sio.disconnect()


async def test_running_conversation_keeps_its_revision_and_resumes_after_a_restart(
    live_server: LiveServer,
) -> None:
    ctx = await _setup(live_server)
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=ctx["token"])
    first = await visitor.send("hello", "c-1")
    await _messages(visitor, 1)
    # A new revision is published while the visitor is at the menu.
    changed = {**DOC, "nodes": [{**DOC["nodes"][0], "content": {"text": "NEW greeting"}}, *DOC["nodes"][1:]]}
    async with live_server.services.db.transaction() as s:
        await service.save_draft(s, ctx["who"], ctx["scenario_id"], changed)
        rev2 = await service.publish(s, ctx["who"], ctx["scenario_id"])
        assert rev2.number == 2
        diff = await service.diff(s, ctx["who"], ctx["scenario_id"], ctx["rev1"], rev2.id)
    assert (
        diff["changed"][0]["node"] == "hello"
        and diff["changed"][0]["fields"]["content"]["to"]["text"] == "NEW greeting"
    )
    # "Restart": a fresh database handle and runner, as after a process restart.
    fresh = Database(live_server.settings.effective_database_url)
    runner.install(fresh)
    async with fresh.transaction() as s:
        conv = await s.get_one(m.Conversation, first["conversation_id"])
        msg = m.Message(conversation_id=conv.id, inbox_id=conv.inbox_id, direction="in", body="billing")
        s.add(msg)
        await s.flush()
        bot = conversations.bot_gateway(s)
        assert bot is not None and await bot.on_inbound(s, conv, msg)
        session_row = await s.get_one(m.BotSession, conv.id)
        assert session_row.revision_id == ctx["rev1"], "stays on the revision it started with"
        assert session_row.state["node"] == "order"
    await fresh.dispose()
    newcomer = Visitor(live_server.url)
    await newcomer.connect(inbox=ctx["token"])
    await newcomer.send("hi", "n-1")
    assert (await _messages(newcomer, 1))[0]["body"] == "NEW greeting"
    await newcomer.sio.disconnect()
    await visitor.sio.disconnect()


async def test_no_input_timer_is_a_persisted_deadline_and_no_agents_closes(live_server: LiveServer) -> None:
    ctx = await _setup(live_server, available=False)
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=ctx["token"])
    first = await visitor.send("hello", "c-1")
    await _messages(visitor, 1)
    await visitor.send("1", "c-2")  # "Billing" by number
    await _messages(visitor, 2)
    db = live_server.services.db
    async with db.transaction() as s:
        await s.execute(update(m.Deadline).where(m.Deadline.kind == runner.BOT_TIMER)
                        .values(due_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
    await run_due_deadlines(db)
    bodies = [x["body"] for x in await _messages(visitor, 3)]
    assert bodies[-1] == "Nobody is here, sorry", "no input → hand-off → nobody available → closing message"
    async with db.transaction() as s:
        conv = await s.get_one(m.Conversation, first["conversation_id"])
        assert conv.status == m.ConversationStatus.CLOSED
        closed = await s.scalar(select(m.Event).where(m.Event.type == "conversation.closed",
                                                      m.Event.conversation_id == conv.id))  # fmt: skip
        assert closed is not None and closed.payload["result_by"] == "bot"
    await visitor.sio.disconnect()


async def test_http_node_runs_after_commit_and_maps_the_response(live_server: LiveServer) -> None:
    calls: list[e.CallHttp] = []

    async def fake_crm(call: e.CallHttp) -> e.HttpResult:
        calls.append(call)
        return e.HttpResult(200, {"customer": {"tier": "gold"}})

    doc = {"name": "crm", "start": "lookup", "variables": [{"name": "tier"}],
           "nodes": [{"id": "lookup", "type": "http", "url": "https://crm.example/c/{{conversation.id}}",
                      "response_map": {"tier": "customer.tier"}, "ports": {"next": "say", "on_error": "say"}},
                     {"id": "say", "type": "message", "content": {"text": "Tier: {{tier}}"}, "ports": {"next": "h"}},
                     {"id": "h", "type": "handoff", "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
                     {"id": "bye", "type": "close"}]}  # fmt: skip
    ctx = await _setup(live_server)
    runner.install(live_server.services.db, http=fake_crm)
    async with live_server.services.db.transaction() as s:
        row = await service.create(s, ctx["who"], "crm", "CRM", doc)
        await service.publish(s, ctx["who"], row.id)
        inbox = await s.scalar(select(m.Inbox).where(m.Inbox.public_token == ctx["token"]))
        assert inbox is not None
        inbox.config = {"scenario": "crm"}
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=ctx["token"])
    first = await visitor.send("hi", "c-1")
    assert (await _messages(visitor, 1))[0]["body"] == "Tier: gold"
    assert calls and calls[0].url == f"https://crm.example/c/{first['conversation_id']}"
    await visitor.sio.disconnect()
