"""A test send of a webhook subscription: one signed ``webhook.test`` event posted now.

Apart from ``omni.domain.webhooks`` because it is the one place that calls out while an admin
waits: prepared in one transaction, posted with none open, audited in a second one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.domain import audit
from omni.domain.admin.checks import ADMIN, _get
from omni.domain.auth import Principal, check_role
from omni.domain.webhooks import SIGNATURE_HEADER, TEST_EVENT_TYPE, TIMESTAMP_HEADER, sign
from omni.settings import WebhookSettings


@dataclass(frozen=True, slots=True)
class TestSend:
    """What the receiver answered to a test send (``ok``: a 2xx)."""

    ok: bool
    status_code: int | None
    error: str


@dataclass(frozen=True, slots=True)
class TestRequest:
    """A signed test send, prepared inside a transaction and sent after it ended."""

    webhook_id: int
    url: str
    body: bytes
    headers: dict[str, str]


async def check_prepare_test(session: AsyncSession, who: Principal, webhook_id: int) -> TestRequest:
    """Check the caller and the subscription and sign one ``webhook.test`` event for it."""
    check_role(who, ADMIN)
    hook = await _get(session, m.WebhookSubscription, webhook_id, "webhook")
    now = datetime.now(UTC)
    body = json.dumps(
        {
            "delivery_id": None,
            "subscription_id": hook.id,
            "test": True,
            "event": {
                "seq": 0,
                "type": TEST_EVENT_TYPE,
                "at": now.isoformat(),
                "conversation_id": None,
                "queue_id": None,
                "user_id": who.id,
                "data": {"webhook": hook.name},
            },
        },
        separators=(",", ":"),
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Omni-Webhooks/1",
        "X-Omni-Event": TEST_EVENT_TYPE,
        "X-Omni-Delivery": "test",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(hook.secret, timestamp, body),
    }
    return TestRequest(webhook_id=hook.id, url=hook.url, body=body, headers=headers)


async def post_test(
    req: TestRequest, cfg: WebhookSettings, client: httpx.AsyncClient | None = None
) -> TestSend:
    """POST the prepared test send and read the answer; called with no transaction open (a
    slow receiver must not hold a database transaction, on SQLite every other one)."""
    status: int | None = None
    error = ""
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=cfg.timeout_seconds) as own:
                resp = await own.post(req.url, content=req.body, headers=req.headers)
        else:
            resp = await client.post(req.url, content=req.body, headers=req.headers)
        status = resp.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}: {resp.text[:200]}"
    except httpx.HTTPError as exc:
        error = (f"{type(exc).__name__}: {exc}".rstrip(": "))[:500]
    return TestSend(ok=not error, status_code=status, error=error)


def record_test(session: AsyncSession, who: Principal, req: TestRequest, result: TestSend) -> None:
    """The audit row of a test send, with the receiver's answer."""
    audit.record(
        session,
        who,
        "webhook.test",
        object_type="webhook",
        object_id=req.webhook_id,
        data={"url": req.url, "status_code": result.status_code, "error": result.error},
        result="ok" if result.ok else "failed",
    )


async def send_test(
    db: Database,
    who: Principal,
    webhook_id: int,
    cfg: WebhookSettings,
    client: httpx.AsyncClient | None = None,
) -> TestSend:
    """POST one signed ``webhook.test`` event to the subscription now and report the answer.

    Nothing is queued or retried and no delivery row is made: the admin wants to know at once
    whether the URL, the network path and the receiver's signature check work (an inactive
    subscription can be tried too, before it is switched on). Audited with the answer. Two
    short transactions around the outbound call, none held during it.
    """
    async with db.transaction() as session:
        req = await check_prepare_test(session, who, webhook_id)
    result = await post_test(req, cfg, client)
    async with db.transaction() as session:
        record_test(session, who, req, result)
    return result
