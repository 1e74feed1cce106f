"""The unit of work a transaction carries: what it records (an event written, routing needed,
a bot's HTTP call) is acted on only after the commit, never after a rollback — on PostgreSQL
and on SQLite (the embedded mode), through the same services the app builds."""

from __future__ import annotations

from typing import Any

import pytest

from bots import engine as e
from bots import runner, service
from omni.db import models as m
from omni.db.unit_of_work import unit_of_work
from omni.domain import conversations as c
from omni.domain.auth import Principal
from omni.domain.events import emit
from omni.domain.routing_signal import request_routing
from omni.services import Services
from tests import factories as f

CRM: dict[str, Any] = {
    "name": "crm", "start": "lookup", "variables": [],
    "nodes": [{"id": "lookup", "type": "http", "url": "https://crm.example/c/{{conversation.id}}",
               "ports": {"next": "bye", "on_error": "bye"}},
              {"id": "bye", "type": "close"}],
}  # fmt: skip


class Rollback(Exception):
    """Raised inside a transaction to roll it back."""


async def test_relay_nudge_follows_a_commit_and_never_a_rollback(svc: Services) -> None:
    nudges: list[str] = []
    svc.bus.subscribe("outbox", lambda _data: nudges.append("outbox"))
    with pytest.raises(Rollback):
        async with svc.db.transaction() as s:
            emit(s, "admin.changed", {"entity": "test", "id": 1, "action": "updated"})
            assert unit_of_work(s).events_written
            raise Rollback
    assert nudges == [], "an event that rolled back must not wake the relay"
    async with svc.db.transaction() as s:
        emit(s, "admin.changed", {"entity": "test", "id": 2, "action": "updated"})
        assert nudges == [], "not before the commit"
    assert nudges == ["outbox"]


async def test_routing_nudge_follows_a_commit_and_never_a_rollback(svc: Services) -> None:
    nudges: list[str] = []
    svc.bus.subscribe("routing", lambda _data: nudges.append("routing"))
    with pytest.raises(Rollback):
        async with svc.db.transaction() as s:
            request_routing(s)
            assert unit_of_work(s).routing_needed
            raise Rollback
    assert nudges == [], "a change that rolled back must not wake the router"
    async with svc.db.transaction() as s:
        request_routing(s)
        assert nudges == [], "not before the commit"
    assert nudges == ["routing"]


async def test_bot_http_call_starts_after_a_commit_and_never_after_a_rollback(svc: Services) -> None:
    urls: list[str] = []

    async def crm(call: e.CallHttp) -> e.HttpResult:
        urls.append(call.url)
        return e.HttpResult(200, {})

    bots = runner.install(svc.db, http=crm)
    async with svc.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        ib = await f.inbox(s, await f.queue(s, "q"))
        row = await service.create(s, Principal.of(admin), "crm", "CRM", CRM)
        await service.publish(s, Principal.of(admin), row.id)
        ib.config = {"scenario": "crm"}
        inbox_id = ib.id

    def hello(who: str) -> c.InboundMessage:
        return c.InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value=who, body="hi")

    with pytest.raises(Rollback):
        async with svc.db.transaction() as s:
            await c.do_ingest_inbound(s, hello("rolled-back"))
            assert unit_of_work(s).after_commit, "the scenario asked for the request"
            raise Rollback
    await bots.drain()
    assert urls == [], "a scenario step that rolled back must not call out"
    async with svc.db.transaction() as s:
        conv_id = (await c.do_ingest_inbound(s, hello("committed"))).conversation.id
        await bots.drain()
        assert urls == [], "not before the commit"
    await bots.drain()
    assert urls == [f"https://crm.example/c/{conv_id}"]
