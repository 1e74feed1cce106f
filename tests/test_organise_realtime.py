"""Labels and snooze over the operator's Socket.IO link: who may, bad input, and the customer's
next message bringing a snoozed chat back to the same operator (docs/organise.md)."""

from __future__ import annotations

from typing import Any

import httpx

from omni.db import models as m
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.test_realtime import OperatorClient, post_inbound
from tests.test_realtime_contracts import world

__all__ = ["world"]


async def test_labels_and_snooze_over_the_socket_follow_scope_and_wake_to_the_same_operator(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {world['admin_token']}"},
        timeout=HTTP_TIMEOUT,
    ) as admin:
        made = await admin.post("/api/v1/labels", json={"name": "VIP", "color": "#1e88e5"})
        assert made.status_code == 201, made.text
        label = made.json()
    op = OperatorClient(live_server.url, world["op_token"])
    op2 = OperatorClient(live_server.url, world["op2_token"])
    await op.connect()
    await op2.connect()
    try:
        await op2.call("set_status", {"status": "pause"})
        conv_id = await post_inbound(live_server, world["admin_token"], world["inbox"], "cust")
        offer = await op.wait_for("conversation.offered", id=conv_id)
        assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
        listed = await op.call("labels", {})
        assert [x["name"] for x in listed["labels"]] == ["VIP"]
        # only the handler labels it; a bad id names the field
        refused = await op2.call("set_labels", {"conversation_id": conv_id, "add": [label["id"]]})
        assert refused["ok"] is False and refused["error"] == "forbidden", refused
        bad = await op.call("set_labels", {"conversation_id": conv_id, "add": ["x"]})
        assert bad["ok"] is False and bad["field"] == "add[0]", bad
        done = await op.call("set_labels", {"conversation_id": conv_id, "add": [label["id"]]})
        assert done["ok"] and done["conversation"]["label_ids"] == [label["id"]], done
        changed = await op.wait_for("conversation.labels_changed", id=conv_id)
        assert changed["data"]["labels"][0]["color"] == "#1e88e5"
        # snooze: bad time named, others refused, then until the customer writes
        bad = await op.call("snooze", {"conversation_id": conv_id, "until": "tomorrow"})
        assert bad["ok"] is False and bad["field"] == "until", bad
        refused = await op2.call("snooze", {"conversation_id": conv_id, "until_customer": True})
        assert refused["ok"] is False and refused["error"] == "forbidden", refused
        snoozed = await op.call("snooze", {"conversation_id": conv_id, "until_customer": True})
        assert snoozed["ok"] and snoozed["conversation"]["status"] == "snoozed", snoozed
        assert (await op2.call("set_status", {"status": "available"}))["ok"]
        await post_inbound(live_server, world["admin_token"], world["inbox"], "cust", body="any news?")
        woken = await op.wait_for("conversation.woken", id=conv_id)
        assert woken["data"]["reason"] == "customer" and woken["data"]["to_user_id"] == world["op"]
        again = await op.wait_for("conversation.offered", id=conv_id, offer_id=_next(offer))
        assert again["user_id"] == world["op"], "offered back to the operator who snoozed it"
    finally:
        await op.sio.disconnect()
        await op2.sio.disconnect()
    async with live_server.services.db.transaction() as s:
        actions = set(await s.scalars(m.AuditLog.__table__.select().with_only_columns(m.AuditLog.action)))
    assert {"label.create", "conversation.labels", "conversation.snooze"} <= actions


def _next(offer: dict[str, Any]) -> int:
    return int(offer["data"]["offer_id"]) + 1
