"""Regression (issue 16, rest16): a webhook's test send (REST and the admin page's button)
held a database transaction open while it waited for the receiver. While the receiver holds
the request, no connection of Omni's stays idle inside a transaction (PostgreSQL's
``pg_stat_activity``), and the answer is still reported and audited."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select, text

from omni.db import models as m
from tests.api.test_admin_integrations import Api, api, receiver  # noqa: F401  (fixtures)
from tests.helpers import until
from tests.web.test_pages import csrf_of
from tests.webhook_receiver import Receiver

IDLE_IN_TXN = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
)


async def _idle_in_transaction(api: Api) -> int:  # noqa: F811
    async with api.server.services.db.transaction() as s:
        return int(await s.scalar(IDLE_IN_TXN) or 0)


async def _while_the_receiver_waits(
    api: Api,  # noqa: F811
    receiver: Receiver,  # noqa: F811
    send: asyncio.Task[httpx.Response],
) -> None:
    """With the request held by the receiver, every transaction of Omni's ends (a background
    loop's may be caught between two statements, so this waits for none; the bug's never ends)."""
    seen = len(receiver.hits)
    await until(lambda: len(receiver.hits) > seen, 30, what="the test send to reach the receiver")

    async def none_open() -> bool:
        return await _idle_in_transaction(api) == 0

    await until(none_open, 10, what="no transaction left open while the receiver holds the test send")
    assert receiver.answer is not None
    receiver.answer.set()
    resp = await send
    assert resp.status_code == 200, resp.text
    receiver.answer.clear()


async def test_webhook_test_send_holds_no_transaction_while_the_receiver_answers(
    api: Api,  # noqa: F811
    receiver: Receiver,  # noqa: F811
) -> None:
    made = await api.admin.post(
        "/api/v1/webhooks", json={"name": "crm", "url": receiver.url, "event_types": ["never.happens"]}
    )
    assert made.status_code == 201, made.text
    hook_id = made.json()["id"]
    receiver.answer = asyncio.Event()

    rest = asyncio.create_task(api.admin.post(f"/api/v1/webhooks/{hook_id}/test"))
    await _while_the_receiver_waits(api, receiver, rest)
    assert rest.result().json() == {"ok": True, "status_code": 200, "error": ""}

    csrf = csrf_of((await api.admin.get(f"/admin/webhooks/{hook_id}")).text)
    page = asyncio.create_task(api.admin.post(f"/admin/webhooks/{hook_id}/test", data={"_csrf": csrf}))
    await _while_the_receiver_waits(api, receiver, page)
    assert "200" in page.result().text

    async with api.server.services.db.transaction() as s:
        audited = (await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "webhook.test"))).all()
    assert [a.result for a in audited] == ["ok", "ok"]
