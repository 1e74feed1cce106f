"""Embedded mode (SQLite): a channel adapter's send, which records its delivery mark in its
own transaction, runs after the relay's transaction instead of deadlocking inside it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain.conversations import InboundMessage
from omni.domain.routing import do_route_pending
from omni.services import build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite
from tests.domain.test_adapter_contract import LoopbackChannel


async def test_adapter_send_on_sqlite_does_not_deadlock(sqlite_template: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    services = build_services(settings, run_background=False)
    channel = LoopbackChannel()
    services.adapters.register(channel)
    await services.start()
    try:
        async with services.db.transaction() as s:
            op = await f.user(s, "op")
            q = await f.queue(s, "q", [op])
            ib = await f.inbox(s, q, channel="loopback")
            await f.set_status(s, op)
            res = await c.do_ingest_inbound(
                s, InboundMessage(inbox_id=ib.id, identity_kind="external", identity_value="x", body="hi")
            )
        await do_route_pending(services.db)
        async with services.db.transaction() as s:
            offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == res.conversation.id))
            assert offer is not None
            await c.check_accept_offer(s, f.who(op), offer.id)
            reply = await c.check_send_message(s, f.who(op), res.conversation.id, "hello")
        await asyncio.wait_for(services.relay.relay_once(), timeout=10)
        assert [x.body for x in channel.sent] == ["hello"]
        async with services.db.transaction() as s:
            assert (await s.get_one(m.Message, reply.id)).delivery == "sent"
    finally:
        await services.stop()
