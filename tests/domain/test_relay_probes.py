"""The outbox relay skips a transactional sink with nothing configured (``events.probed``):
webhooks without an active subscription, automation without an active rule, service levels
without a policy or a running clock. What an administrator saves on another node must still be
honoured for the very next message this node relays, and what they switch off must stop.
Two nodes on one PostgreSQL database; the relaying node never hears of the change (no bus)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import sla, webhooks
from omni.domain.auth import Principal
from omni.domain.automation import rules
from omni.domain.automation.rules import RuleRunner
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f


@dataclass
class Nodes:
    relaying: Services
    """Relays with the sinks ``omni.app`` wires (SLA from ``build_services``, webhooks, rules)."""
    admin_node: Services
    """Where the administrator saves configuration."""
    admin: Principal
    inbox: int
    queue: int


@pytest.fixture
async def nodes(services: Services, settings: Settings) -> AsyncIterator[Nodes]:
    services.relay.tx_sinks.append(webhooks.fanout_sink(lambda _ids: None))
    services.relay.tx_sinks.append(RuleRunner(lambda _ids: None))
    other = build_services(settings, run_background=False)
    await other.start()
    try:
        async with services.db.transaction() as s:
            admin = await f.user(s, "admin", m.Role.ADMIN)
            op = await f.user(s, "op")
            queue = await f.queue(s, "Sales", [op])
            inbox = await f.inbox(s, queue)
            world = Nodes(services, other, f.who(admin), inbox.id, queue.id)
        await _relay(world)
        yield world
    finally:
        await other.stop()


async def _message(n: Nodes, body: str, who: str) -> int:
    """A visitor message, relayed by the relaying node; the conversation's id."""
    async with n.relaying.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s, c.InboundMessage(inbox_id=n.inbox, identity_kind="external", identity_value=who, body=body)
        )
        conv_id = res.conversation.id
    await _relay(n)
    return conv_id


async def _relay(n: Nodes) -> None:
    while await n.relaying.relay.relay_once():
        pass


async def _delivered_events(n: Nodes) -> list[str]:
    async with n.relaying.db.transaction() as s:
        return list(
            await s.scalars(
                select(m.Event.type)
                .join(m.WebhookDelivery, m.WebhookDelivery.event_id == m.Event.id)
                .order_by(m.WebhookDelivery.id)
            )
        )


async def test_a_subscription_saved_on_another_node_gets_the_next_message_and_stops_when_switched_off(
    nodes: Nodes,
) -> None:
    await _message(nodes, "before anyone listened", "1")
    assert await _delivered_events(nodes) == []
    async with nodes.admin_node.db.transaction() as s:
        hook, _secret = await webhooks.check_create_webhook(
            s,
            nodes.admin,
            {"name": "crm", "url": "http://127.0.0.1:9/hook", "event_types": ["message.created"]},
        )
        hook_id = hook.id
    await _message(nodes, "first one heard", "1")
    assert await _delivered_events(nodes) == ["message.created"]
    async with nodes.admin_node.db.transaction() as s:
        await webhooks.check_update_webhook(s, nodes.admin, hook_id, {"active": False})
    await _message(nodes, "after it was switched off", "1")
    assert await _delivered_events(nodes) == ["message.created"]


async def test_a_rule_saved_on_another_node_runs_on_the_next_message(nodes: Nodes) -> None:
    early = await _message(nodes, "refund please", "1")
    async with nodes.admin_node.db.transaction() as s:
        await rules.check_create_rule(
            s,
            nodes.admin,
            {
                "name": "Refunds",
                "event": "message_in",
                "conditions": {"text_contains": ["refund"]},
                "actions": [{"kind": "priority", "priority": 5}],
            },
        )
    later = await _message(nodes, "refund now", "2")
    async with nodes.relaying.db.transaction() as s:
        rows = await s.execute(
            select(m.Conversation.id, m.Conversation.priority).where(m.Conversation.id.in_([early, later]))
        )
        priorities = {conv_id: priority for conv_id, priority in rows}
        runs = await s.scalar(select(func.count()).select_from(m.RuleRun))
    assert priorities[later] == 5 and priorities[early] != 5
    assert runs == 1


async def test_a_service_level_saved_on_another_node_starts_the_next_clock(nodes: Nodes) -> None:
    before = await _message(nodes, "hello", "1")
    async with nodes.admin_node.db.transaction() as s:
        await sla.check_save_policy(
            s,
            nodes.admin,
            nodes.queue,
            {"first_response_seconds": 60, "next_response_seconds": 30, "warning_percent": 50},
        )
    after = await _message(nodes, "hello", "2")
    async with nodes.relaying.db.transaction() as s:
        clocks = list(await s.scalars(select(m.SlaTarget.conversation_id).where(m.SlaTarget.kind == "first")))
    assert clocks == [after] and before not in clocks
