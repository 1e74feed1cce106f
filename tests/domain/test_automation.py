"""Macros, automation rules and operator scripts (issue 18) on the embedded SQLite database;
the two-node run-once check is on PostgreSQL (``test_rule_runs_once_with_two_relays``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import webhooks
from omni.domain.auth import Principal
from omni.domain.automation import macros, rules, scripts
from omni.domain.automation.rules import RuleRunner
from omni.domain.conversations import InboundMessage
from omni.domain.errors import InvalidInput, PermissionDenied
from omni.services import Services, build_services
from omni.settings import Settings, WebhookSettings
from tests import factories as f
from tests.conftest import copy_sqlite
from tests.webhook_receiver import Receiver, check_signature


@dataclass
class World:
    services: Services
    admin: Principal
    sup: Principal
    op: Principal
    sales: int
    support: int
    inbox: int
    code: int
    reply: int


async def _world(services: Services) -> World:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op = await f.user(s, "op")
        sales = await f.queue(s, "Sales", [op])
        support = await f.queue(s, "Support", [op])
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=sales.id))
        inbox = await f.inbox(s, sales)
        code = await f.result_code(s, "sold")
        s.add(
            m.CardField(
                queue_id=None,
                key="city",
                label="City",
                kind="text",
                options=[],
                required=False,
                editable=True,
            )
        )
        reply = m.CannedReply(shortcut="hi", title="Hi", body="Hello {{contact.name}}, {{queue.name}} here")
        s.add(reply)
        await s.flush()
        return World(
            services, f.who(admin), f.who(sup), f.who(op), sales.id, support.id, inbox.id, code.id, reply.id
        )


@pytest.fixture
async def w(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[World]:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    services = build_services(settings, run_background=False)
    services.relay.tx_sinks.append(RuleRunner(lambda ids: None))
    await services.start()
    try:
        yield await _world(services)
    finally:
        await services.stop()


async def _write(w: World, body: str, who: str = "42", name: str = "Anna") -> int:
    async with w.services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=w.inbox, identity_kind="external", identity_value=who, body=body, contact_name=name
            ),
        )
        return res.conversation.id


async def _active(w: World, conv_id: int) -> None:
    """The operator took the chat (routing itself is covered elsewhere)."""
    async with w.services.db.transaction() as s:
        await s.execute(
            update(m.Conversation)
            .where(m.Conversation.id == conv_id)
            .values(status=m.ConversationStatus.ACTIVE, assigned_user_id=w.op.id)
        )


async def _relay(w: World) -> None:
    while await w.services.relay.relay_once():
        pass


async def test_macro_runs_through_the_services_and_stops_at_the_first_failing_action(w: World) -> None:
    db = w.services.db
    with pytest.raises(InvalidInput) as bad:
        async with db.transaction() as s:
            await macros.check_create_macro(s, w.admin, {"name": "x", "actions": [{"kind": "fly"}]})
    assert bad.value.field == "actions[0].kind" and "canned_reply" in bad.value.message
    with pytest.raises(InvalidInput) as bad:  # a rule-only kind
        async with db.transaction() as s:
            await macros.check_create_macro(
                s, w.admin, {"name": "x", "actions": [{"kind": "priority", "priority": 3}]}
            )
    assert bad.value.field == "actions[0].kind"
    with pytest.raises(PermissionDenied):
        async with db.transaction() as s:
            await macros.check_create_macro(
                s, w.op, {"name": "x", "actions": [{"kind": "close", "result_code_id": w.code}]}
            )
    async with db.transaction() as s:
        broken = await macros.check_create_macro(
            s,
            w.sup,
            {
                "name": "Greet and note",
                "queue_id": w.sales,
                "actions": [
                    {"kind": "canned_reply", "reply_id": w.reply},
                    {"kind": "set_field", "key": "age", "value": "40"},
                    {"kind": "close", "result_code_id": w.code},
                ],
            },
        )
        sale = await macros.check_create_macro(
            s,
            w.admin,
            {
                "name": "Sold",
                "actions": [
                    {"kind": "set_field", "key": "city", "value": "Tver"},
                    {"kind": "close", "result_code_id": w.code},
                ],
            },
        )
    conv_id = await _write(w, "hello")
    await _active(w, conv_id)
    async with db.transaction() as s:
        offered = {x.name for x in await macros.macros_for_conversation(s, w.op, conv_id)}
        result = await macros.check_run_macro(s, w.op, conv_id, broken.id)
    assert offered == {"Greet and note", "Sold"}
    assert not result["ok"]
    assert result["done"] == [f"canned_reply(reply_id={w.reply})"]
    assert result["failed"] == "set_field(key=age, value=40)"
    assert result["not_done"] == [f"close(result_code_id={w.code})"]
    assert "stopped at set_field" in result["message"] and "Not done: close" in result["message"]
    async with db.transaction() as s:
        sent = (await s.scalars(select(m.Message.body).where(m.Message.direction == "out"))).all()
        conv = await s.get_one(m.Conversation, conv_id)
        assert sent == ["Hello Anna, Sales here"], "what ran before the failure stays done"
        assert conv.status == m.ConversationStatus.ACTIVE, "what follows the failure did not run"
        ru = Principal(w.op.id, w.op.username, w.op.role, language="ru")
        again = await macros.check_run_macro(s, ru, conv_id, broken.id)
    assert "Не выполнено" in again["message"], again["message"]
    async with db.transaction() as s:
        result = await macros.check_run_macro(s, w.op, conv_id, sale.id)
    assert result["ok"] and result["message"] == ""
    async with db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        contact = await s.get_one(m.Contact, conv.contact_id)
        runs = (await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "macro.run"))).all()
    assert conv.status == m.ConversationStatus.CLOSED and conv.result_code_id == w.code
    assert contact.custom_fields == {"city": "Tver"}
    assert [r.result for r in runs] == ["failed", "failed", "ok"]


async def test_refund_in_sales_raises_priority_once_without_a_loop_and_is_logged(w: World) -> None:
    db = w.services.db
    with pytest.raises(InvalidInput) as bad:
        async with db.transaction() as s:
            await rules.check_create_rule(
                s,
                w.admin,
                {
                    "name": "x",
                    "event": "queued",
                    "conditions": {"text_contains": ["a"]},
                    "actions": [{"kind": "priority", "priority": 1}],
                },
            )
    assert bad.value.field == "conditions.text_contains"
    with pytest.raises(InvalidInput) as bad:
        async with db.transaction() as s:
            await rules.check_create_rule(
                s,
                w.admin,
                {
                    "name": "x",
                    "event": "message_in",
                    "conditions": {"text_regex": "(("},
                    "actions": [{"kind": "priority", "priority": 1}],
                },
            )
    assert bad.value.field == "conditions.text_regex"
    async with db.transaction() as s:
        await rules.check_create_rule(
            s,
            w.admin,
            {
                "name": "Refunds first",
                "event": "message_in",
                "conditions": {"queue_ids": [w.sales], "text_contains": ["Refund"]},
                "actions": [
                    {"kind": "priority", "priority": 7},
                    {"kind": "canned_reply", "reply_id": w.reply},
                ],
            },
        )
        # Moves Bob's chat to Support, whose queueing is again a "queued" event: it must not
        # feed itself.
        await rules.check_create_rule(
            s,
            w.admin,
            {
                "name": "Ping-pong",
                "event": "queued",
                "conditions": {"contact_field": {"key": "name", "value": "Bob"}},
                "actions": [{"kind": "transfer", "queue_id": w.support}],
            },
        )
    quiet = await _write(w, "hello there", who="1")
    loud = await _write(w, "I want a REFUND now", who="2")
    bob = await _write(w, "hi", who="3", name="Bob")
    await _relay(w)
    await _relay(w)
    async with db.transaction() as s:
        prio = dict((await s.execute(select(m.Conversation.id, m.Conversation.priority))).all())
        assert prio[loud] == 7 and prio[quiet] == 0
        auto = (await s.scalars(select(m.Message.body).where(m.Message.direction == "out"))).all()
        assert auto == ["Hello Anna, Sales here"]
        queues = dict((await s.execute(select(m.Conversation.id, m.Conversation.queue_id))).all())
        assert queues == {quiet: w.sales, loud: w.sales, bob: w.support}
        runs = await rules.list_rule_runs(s, w.admin)
    by_rule: dict[str, int] = {}
    async with db.transaction() as s:
        names = dict((await s.execute(select(m.AutomationRule.id, m.AutomationRule.name))).all())
    for run in runs:
        by_rule[names[run.rule_id]] = by_rule.get(names[run.rule_id], 0) + 1
        assert run.state == "done", run.error
    assert by_rule == {"Refunds first": 1, "Ping-pong": 1}, "once for Bob, never on its own events"
    # A restarted relay that sees the same events again (they were never marked dispatched)
    # runs nothing twice.
    async with db.transaction() as s:
        await s.execute(update(m.Event).values(dispatched=False))
    await _relay(w)
    async with db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.RuleRun)) == 2


async def test_rule_regex_that_backtracks_forever_is_stopped_and_counts_as_no_match(w: World) -> None:
    async with w.services.db.transaction() as s:
        await rules.check_create_rule(
            s,
            w.admin,
            {
                "name": "evil",
                "event": "message_in",
                "conditions": {"text_regex": "^(a+)+$"},
                "actions": [{"kind": "priority", "priority": 3}],
            },
        )
        await rules.check_create_rule(
            s,
            w.admin,
            {
                "name": "order no",
                "event": "message_in",
                "conditions": {"text_regex": r"order\s+#\d+"},
                "actions": [{"kind": "priority", "priority": 2}],
            },
        )
    evil = await _write(w, "a" * 40 + "!", who="1")
    order = await _write(w, "where is ORDER #123?", who="2")
    await _relay(w)
    async with w.services.db.transaction() as s:
        prio = dict((await s.execute(select(m.Conversation.id, m.Conversation.priority))).all())
    assert prio == {evil: 0, order: 2}


async def test_script_fills_the_card_and_posts_the_fields_signed_at_close(w: World) -> None:
    crm = Receiver()
    await crm.start()
    try:
        db = w.services.db
        with pytest.raises(InvalidInput) as bad:
            async with db.transaction() as s:
                await scripts.check_create_script(
                    s, w.sup, {"name": "s", "queue_id": w.sales, "body": "x", "fields": ["age"]}
                )
        assert bad.value.field == "fields"
        async with db.transaction() as s:
            script = await scripts.check_create_script(
                s,
                w.sup,
                {
                    "name": "Sales script",
                    "queue_id": w.sales,
                    "body": "Ask {{contact.name}} for the city",
                    "fields": ["city", "name"],
                    "close_url": crm.url,
                },
            )
            sub_id = script.close_subscription_id
            secret = (await s.get_one(m.WebhookSubscription, sub_id)).secret
        assert sub_id is not None and script.start_subscription_id is None
        conv_id = await _write(w, "hi")
        await _active(w, conv_id)
        async with db.transaction() as s:
            shown = await scripts.script_for_conversation(s, w.op, conv_id)
            _, none = await scripts.check_script_step(s, w.op, conv_id, "start", {})
        assert shown is not None and shown["text"] == "Ask Anna for the city"
        assert [x["key"] for x in shown["fields"]] == ["city", "name"] and none == []
        async with db.transaction() as s:
            shown, deliveries = await scripts.check_script_step(s, w.op, conv_id, "close", {"city": "Omsk"})
        assert shown["fields"][0]["value"] == "Omsk"
        await _relay(w)  # the fan-out must not send the hidden subscription anything else
        async with db.transaction() as s:
            assert await s.scalar(select(func.count()).select_from(m.WebhookDelivery)) == 1
        outcome = await webhooks.do_deliver(db, deliveries[0], WebhookSettings())
        assert outcome.delivered
        hit = crm.delivered()[0]
        check_signature(secret, hit.headers, hit.body)
        assert hit.event["type"] == "script.closed"
        assert hit.event["data"]["fields"] == {"city": "Omsk", "name": "Anna"}
    finally:
        await crm.stop()


async def test_rule_runs_once_with_two_relays(services: Services, settings: Settings) -> None:
    """Two nodes' relays on one PostgreSQL database see the same batch: each rule runs once."""
    services.relay.tx_sinks.append(RuleRunner(lambda ids: None))
    other = build_services(settings, run_background=False)
    other.relay.tx_sinks.append(RuleRunner(lambda ids: None))
    await other.start()
    try:
        w = await _world(services)
        async with services.db.transaction() as s:
            await rules.check_create_rule(
                s,
                w.admin,
                {
                    "name": "Refunds",
                    "event": "message_in",
                    "conditions": {"text_contains": ["refund"]},
                    "actions": [{"kind": "priority", "priority": 5}],
                },
            )
        for i in range(5):
            await _write(w, f"refund {i}", who=str(i))
        for _ in range(3):
            await asyncio.gather(services.relay.relay_once(), other.relay.relay_once())
            async with services.db.transaction() as s:  # the "restart": seen again from scratch
                await s.execute(update(m.Event).values(dispatched=False))
        async with services.db.transaction() as s:
            runs = (await s.scalars(select(m.RuleRun.event_id))).all()
            raised = await s.scalar(
                select(func.count()).select_from(m.Conversation).where(m.Conversation.priority == 5)
            )
        assert len(runs) == len(set(runs)) == 5 and raised == 5
    finally:
        await other.stop()
