"""CRM webhooks end to end: signed, retried with backoff by a real Celery worker, at least once,
replayable and filtered.

The app runs under uvicorn (LiveServer) on PostgreSQL + Redis; deliveries are made by a
``celery worker`` subprocess started here with the same settings through ``OMNI_*`` variables
(one for the module, on the module's database: ``shared``; each test has its own app, CRM and
subscriptions); the CRM is an aiohttp server in the test (tests/webhook_receiver.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, func, select

from omni.db import Database
from omni.db import models as m
from omni.domain import webhooks
from omni.settings import Settings, WebhookSettings
from tests import factories as f
from tests.conftest import LiveServer, _asyncpg_url, create_test_database, drop_test_database, make_settings
from tests.helpers import until as wait_until
from tests.webhook_receiver import Hit, Receiver, always, check_signature, fail_first_attempts

FAST = WebhookSettings(backoff_base_seconds=0.2, backoff_max_seconds=1, max_attempts=10, timeout_seconds=5)
EVENT_TYPES = ["conversation.*", "message.created"]


def wanted(event_type: str) -> bool:
    """What a subscription to EVENT_TYPES must get, written out independently of ``matches``."""
    return event_type.startswith("conversation.") or event_type == "message.created"


# --- a: signatures -------------------------------------------------------------------------


def test_sign_verify_round_trip_and_rejections() -> None:
    secret = "s3cret-" + "k" * 20
    body = b'{"event":{"seq":1,"type":"conversation.created"}}'
    now = str(int(time.time()))
    sig = webhooks.sign(secret, now, body)

    assert (
        sig == "sha256=" + hmac.new(secret.encode(), now.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    assert webhooks.verify(secret, now, body, sig)

    assert not webhooks.verify(secret, now, body.replace(b"created", b"closed!"), sig), "tampered body"
    assert not webhooks.verify(secret, now, body + b" ", sig), "appended byte"
    assert not webhooks.verify("another-secret-xxxxxxxx", now, body, sig), "wrong secret"
    assert not webhooks.verify(secret, str(int(now) + 1), body, sig), "timestamp swapped under the signature"

    old = str(int(time.time()) - 301)
    assert not webhooks.verify(secret, old, body, webhooks.sign(secret, old, body)), "stale timestamp"
    future = str(int(time.time()) + 301)
    assert not webhooks.verify(secret, future, body, webhooks.sign(secret, future, body)), "future timestamp"
    recent = str(int(time.time()) - 100)
    assert webhooks.verify(secret, recent, body, webhooks.sign(secret, recent, body)), "within tolerance"

    # The headers come from the network: garbage is a failed check, not an exception in the CRM.
    assert not webhooks.verify(secret, "not-a-number", body, sig)
    assert not webhooks.verify(secret, "", body, sig)


# --- the stack: app + Celery worker + CRM --------------------------------------------------


class CeleryWorker:
    """``celery -A omni.worker:celery_app worker`` in a subprocess, configured like the app."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
        env.update(
            OMNI_DATABASE_URL=settings.database_url,
            OMNI_REDIS_URL=settings.redis_url,
            OMNI_REDIS_PREFIX=settings.redis_prefix,
            OMNI_SECRET_KEY=settings.effective_secret_key(),
            OMNI_DATA_DIR=str(settings.data_dir),
            # Nested settings: env_nested_delimiter="__" on Settings (checked by the backoff timing below).
            OMNI_WEBHOOK__BACKOFF_BASE_SECONDS=str(settings.webhook.backoff_base_seconds),
            OMNI_WEBHOOK__BACKOFF_MAX_SECONDS=str(settings.webhook.backoff_max_seconds),
            OMNI_WEBHOOK__MAX_ATTEMPTS=str(settings.webhook.max_attempts),
            OMNI_WEBHOOK__TIMEOUT_SECONDS=str(settings.webhook.timeout_seconds),
        )
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "omni.worker:celery_app",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "INFO",
                "-n",
                f"{settings.redis_prefix}@%h",
            ],
            env=env,
            cwd=settings.data_dir,  # no stray .env from the repo
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def ready(self, timeout: float = 30) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"celery worker exited with {self.proc.returncode}:\n{self.log()}")
            return " ready." in self.log()

        await wait_until(up, timeout=timeout, what="the celery worker to be ready")

    def assert_clean(self) -> None:
        text = self.log()
        assert "Traceback" not in text and "ERROR/" not in text, text[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


@dataclass
class Stack:
    server: LiveServer
    worker: CeleryWorker
    crm: Receiver
    api: httpx.AsyncClient
    queue_id: int
    inbox_id: int
    other_queue_id: int
    other_inbox_id: int
    events_after: int = 0
    """The outbox's last event id before this test: ``outbox`` reads what came after."""

    async def subscribe(self, name: str, **extra: Any) -> dict[str, Any]:
        resp = await self.api.post(
            "/api/v1/webhooks", json={"name": name, "url": self.crm.url, "event_types": EVENT_TYPES, **extra}
        )
        assert resp.status_code == 201, resp.text
        hook: dict[str, Any] = resp.json()
        assert len(hook["secret"]) >= 16
        return hook

    async def inbound(self, who: str, body: str = "hello", inbox_id: int | None = None) -> dict[str, Any]:
        resp = await self.api.post(
            f"/api/v1/inboxes/{inbox_id or self.inbox_id}/messages",
            json={"identity_kind": "external", "identity_value": who, "body": body},
        )
        assert resp.status_code == 201, resp.text
        conv: dict[str, Any] = resp.json()["conversation"]
        return conv

    async def deliveries(self, hook_id: int) -> list[dict[str, Any]]:
        resp = await self.api.get(f"/api/v1/webhooks/{hook_id}/deliveries")
        assert resp.status_code == 200, resp.text
        rows: list[dict[str, Any]] = resp.json()
        return rows

    async def outbox(self, *, conversation_ids: set[int] | None = None) -> list[m.Event]:
        async with self.server.services.db.transaction() as session:
            rows = list(
                await session.scalars(
                    select(m.Event).where(m.Event.id > self.events_after).order_by(m.Event.id)
                )
            )
        return [e for e in rows if conversation_ids is None or e.conversation_id in conversation_ids]

    async def all_succeeded(self, hook_id: int, at_least: int) -> list[dict[str, Any]] | None:
        rows = await self.deliveries(hook_id)
        if len(rows) >= at_least and all(r["state"] == "succeeded" for r in rows):
            return rows
        return None


@dataclass
class Shared:
    """What the module's stack tests share: one database with the admin and the two queues, and
    the Celery worker delivering from it (starting one took ~8 s of a test, most of it CPU)."""

    settings: Settings
    worker: CeleryWorker
    ids: tuple[int, int, int, int]


@pytest_asyncio.fixture(scope="module")
async def shared(pg_template: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    dbname = await create_test_database(pg_template)
    data_dir = tmp_path_factory.mktemp("webhooks")
    settings = make_settings(_asyncpg_url(dbname), data_dir=data_dir, webhook=FAST)
    assert not settings.embedded
    worker = CeleryWorker(settings, data_dir / "celery.log")
    try:
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                await f.user(session, "boss", role=m.Role.ADMIN)
                q = await f.queue(session, "sales")
                inbox = await f.inbox(session, q)
                other_q = await f.queue(session, "support")
                other_inbox = await f.inbox(session, other_q)
                ids = (q.id, inbox.id, other_q.id, other_inbox.id)
        finally:
            await db.dispose()
        await worker.ready()
        yield Shared(settings, worker, ids)
    finally:
        worker.stop()
        await drop_test_database(dbname)


@pytest_asyncio.fixture
async def stack(shared: Shared) -> AsyncIterator[Stack]:
    """A fresh app and CRM per test on the module's database and worker. The test sees only
    what it made: ``Stack.outbox`` starts after the events already there, every contact is
    new (its own identity), and its subscriptions are deleted when it ends (their deliveries
    with them), so the next test's events go to nobody else's CRM."""
    crm = Receiver()
    server: LiveServer | None = None
    api: httpx.AsyncClient | None = None
    try:
        await crm.start()
        server = LiveServer(shared.settings)
        await server.start()
        async with server.services.db.transaction() as session:
            seen = await session.scalar(select(func.coalesce(func.max(m.Event.id), 0)))
        api = httpx.AsyncClient(base_url=server.url, timeout=10)
        resp = await api.post("/api/v1/auth/login", json={"username": "boss", "password": f.PASSWORD})
        assert resp.status_code == 200, resp.text
        assert api.cookies.get("omni_session")
        yield Stack(server, shared.worker, crm, api, *shared.ids, events_after=seen or 0)
    finally:
        if server is not None:
            async with server.services.db.transaction() as session:
                await session.execute(delete(m.WebhookSubscription))  # and their deliveries
        if api is not None:
            await api.aclose()
        if server is not None:
            await server.stop()
        await crm.stop()


# --- b: retries with backoff, signatures, at least once ------------------------------------


async def test_delivery_retries_until_the_crm_accepts(stack: Stack) -> None:
    stack.crm.respond = fail_first_attempts(2, status=500)
    hook = await stack.subscribe("crm")
    conv = await stack.inbound("+15550001", "I need help")

    created = await wait_until(
        lambda: [h for h in stack.crm.delivered() if h.event["type"] == "conversation.created"],
        timeout=30,
        what="conversation.created to reach the CRM",
    )
    assert len(created) == 1
    hit = created[0]
    check_signature(hook["secret"], hit.headers, hit.body)
    assert hit.headers["X-Omni-Event"] == "conversation.created"
    assert hit.headers["Content-Type"].startswith("application/json")
    assert hit.payload["subscription_id"] == hook["id"]
    assert hit.payload["delivery_id"] == hit.delivery_id
    assert hit.event["conversation_id"] == conv["id"]
    assert hit.event["data"]["id"] == conv["id"]

    # Every event of the subscription's types in the outbox made it, each after 2 failures.
    matching = [e for e in await stack.outbox() if wanted(e.type)]
    types = {e.type for e in matching}
    assert {"conversation.created", "conversation.queued", "message.created"} <= types
    rows = await wait_until(
        lambda: stack.all_succeeded(hook["id"], len(matching)), timeout=30, what="every delivery to succeed"
    )
    assert sorted(r["event_id"] for r in rows) == sorted(e.id for e in matching)
    for row in rows:
        assert row["attempts"] == 3, row
        assert row["last_status_code"] == 200, row
        assert row["last_error"] == "" and row["delivered_at"], row
    assert stack.crm.delivered_event_ids() == {e.id for e in matching}, "an event is missing or one too many"

    # What the CRM saw: per delivery 500, 500, 200, all signed, never retried before the 0.2 s +
    # 0.4 s backoff; and the worker scheduled exactly those retries (the 2 s default would say
    # 2.0 and 4.0: this proves the worker got OMNI_WEBHOOK__BACKOFF_BASE_SECONDS).
    log = stack.worker.log()
    for row in rows:
        tries = [h for h in stack.crm.hits if h.delivery_id == row["id"]]
        assert [h.status for h in tries] == [500, 500, 200], row
        assert {h.event["seq"] for h in tries} == {row["event_id"]}
        for h in tries:
            check_signature(hook["secret"], h.headers, h.body)
        spread = tries[-1].at - tries[0].at
        assert spread >= 0.45, (
            f"attempts of delivery {row['id']} came {spread:.2f}s apart: before the backoff"
        )
        retries = re.findall(rf"webhook delivery {row['id']} to \S+ failed \(.*?\); retry in ([\d.]+)s", log)
        assert retries == ["0.2", "0.4"], (row, retries)
    stack.worker.assert_clean()


# --- c: the CRM is down for a while --------------------------------------------------------


async def test_events_produced_while_the_crm_is_down_all_arrive(stack: Stack) -> None:
    stack.crm.respond = always(503)
    hook = await stack.subscribe("crm")
    convs = [await stack.inbound(f"+1555002{i}", f"message {i}") for i in range(2)]
    conv_ids = {c["id"] for c in convs}
    matching = [e for e in await stack.outbox(conversation_ids=conv_ids) if wanted(e.type)]
    assert len(matching) >= 3 * len(convs)

    # Down until every delivery has been tried and refused, and retried and refused again.
    def refused_twice() -> bool:
        seqs = [h.event["seq"] for h in stack.crm.hits if h.status == 503]
        return all(seqs.count(e.id) >= 2 for e in matching)

    await wait_until(refused_twice, timeout=30, what="every delivery refused twice")
    stack.crm.respond = always(200)
    up_at = time.monotonic()

    rows = await wait_until(
        lambda: stack.all_succeeded(hook["id"], len(matching)), timeout=30, what="every delivery to succeed"
    )
    missing = {e.id for e in matching} - stack.crm.delivered_event_ids()
    assert not missing, f"events never delivered: {sorted(missing)}"
    assert all(h.at >= up_at for h in stack.crm.delivered())
    for row in rows:
        tries = [h for h in stack.crm.hits if h.delivery_id == row["id"]]
        assert [h.status for h in tries] == [503] * (len(tries) - 1) + [200], row
        assert row["attempts"] == len(tries) >= 2, row
        assert row["attempts"] < FAST.max_attempts and row["last_status_code"] == 200, row
    stack.worker.assert_clean()


# --- d: replay -----------------------------------------------------------------------------


async def test_replay_sends_a_delivered_event_again(stack: Stack) -> None:
    hook = await stack.subscribe("crm")
    conv = await stack.inbound("+15550009")

    def created_rows() -> list[Hit]:
        return [h for h in stack.crm.delivered() if h.event["type"] == "conversation.created"]

    first = (await wait_until(created_rows, timeout=30, what="conversation.created"))[0]
    delivery_id = first.delivery_id
    await wait_until(
        lambda: stack.all_succeeded(hook["id"], 3), timeout=30, what="the first deliveries to succeed"
    )
    before = len(stack.crm.hits)

    resp = await stack.api.post(f"/api/v1/webhook-deliveries/{delivery_id}/replay")
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "pending" and resp.json()["attempts"] == 0

    again = await wait_until(
        lambda: [h for h in stack.crm.hits[before:] if h.delivery_id == delivery_id],
        timeout=30,
        what="the replayed delivery",
    )
    assert len(again) == 1 and again[0].ok
    assert again[0].event == first.event and again[0].event["conversation_id"] == conv["id"]
    check_signature(hook["secret"], again[0].headers, again[0].body)
    assert [h.delivery_id for h in stack.crm.hits[before:]] == [delivery_id], "only that delivery goes again"

    async def replayed_row() -> dict[str, Any] | None:
        row = next(r for r in await stack.deliveries(hook["id"]) if r["id"] == delivery_id)
        return row if row["state"] != "pending" else None  # the CRM saw it before the worker's commit

    row = await wait_until(replayed_row, timeout=30, what="the replayed delivery's result")
    assert row["state"] == "succeeded" and row["attempts"] == 1, row

    missing = await stack.api.post("/api/v1/webhook-deliveries/999999/replay")
    assert missing.status_code == 404, missing.text
    stack.worker.assert_clean()


# --- e: filters ----------------------------------------------------------------------------


async def test_queue_filter_keeps_other_queues_events_out(stack: Stack) -> None:
    mine = await stack.subscribe("crm-sales", filter={"queue_ids": [stack.queue_id]})
    other = await stack.subscribe("crm-support", filter={"queue_ids": [stack.other_queue_id]})
    conv = await stack.inbound("+15550042")

    def sales_types() -> set[str]:
        return {h.event["type"] for h in stack.crm.delivered(mine["id"])}

    await wait_until(
        lambda: {"conversation.queued", "message.created"} <= sales_types(),
        timeout=30,
        what="the sales subscription's events",
    )
    # Deliveries of both subscriptions are written in the same relay transaction, so by now the
    # support subscription would have its rows (and, with a healthy CRM, its requests) if any.
    assert await stack.deliveries(other["id"]) == []
    assert stack.crm.delivered(other["id"]) == []
    assert all(h.event["queue_id"] == stack.queue_id for h in stack.crm.delivered(mine["id"]))
    assert all(h.event["conversation_id"] == conv["id"] for h in stack.crm.delivered(mine["id"]))

    # The filter is not "drop everything": support's own traffic reaches the support subscription.
    conv2 = await stack.inbound("+15550043", inbox_id=stack.other_inbox_id)
    await wait_until(
        lambda: {h.event["conversation_id"] for h in stack.crm.delivered(other["id"])} == {conv2["id"]},
        timeout=30,
        what="the support subscription's events",
    )
    stack.worker.assert_clean()


async def test_queue_filtered_subscription_gets_conversation_created(stack: Stack) -> None:
    hook = await stack.subscribe("crm-sales", filter={"queue_ids": [stack.queue_id]})
    conv = await stack.inbound("+15550044")
    await wait_until(
        lambda: (
            {"conversation.queued", "message.created"}
            <= {h.event["type"] for h in stack.crm.delivered(hook["id"])}
        ),
        timeout=30,
        what="the subscription's events",
    )
    got = {h.event["type"] for h in stack.crm.delivered(hook["id"])}
    created = [
        e for e in await stack.outbox(conversation_ids={conv["id"]}) if e.type == "conversation.created"
    ]
    assert len(created) == 1
    # conversation.created must carry the queue, or every queue filter drops it.
    assert created[0].queue_id == stack.queue_id
    assert created[0].payload["queue_id"] == stack.queue_id
    assert "conversation.created" in got


# --- f: bad input --------------------------------------------------------------------------


async def test_bad_subscriptions_are_refused(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as session:
        await f.user(session, "boss", role=m.Role.ADMIN)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as api:
        resp = await api.post("/api/v1/auth/login", json={"username": "boss", "password": f.PASSWORD})
        assert resp.status_code == 200, resp.text
        cases: list[tuple[dict[str, Any], str]] = [
            ({"name": "ftp", "url": "ftp://x"}, "url"),
            ({"name": "relative", "url": "/hooks"}, "url"),
            ({"name": "nohost", "url": "http://"}, "url"),
            ({"name": "short", "url": "https://crm.example/h", "secret": "short"}, "secret"),
            (
                {"name": "space", "url": "https://crm.example/h", "event_types": ["conversation created"]},
                "event_types",
            ),
            ({"name": "flt", "url": "https://crm.example/h", "filter": {"users": [1]}}, "filter"),
            (
                {"name": "noq", "url": "https://crm.example/h", "filter": {"queue_ids": [424242]}},
                "filter.queue_ids[0]",
            ),
        ]
        for body, field in cases:
            resp = await api.post("/api/v1/webhooks", json=body)
            assert 400 <= resp.status_code < 500, (body, resp.status_code, resp.text)
            err = resp.json()
            assert err.get("field") == field, (body, err)
            assert err.get("detail"), (body, err)
        resp = await api.post("/api/v1/webhooks", json={"name": "ftp", "url": "ftp://x"})
        assert resp.status_code == 422 and "http" in resp.json()["detail"], resp.text

        listed = await api.get("/api/v1/webhooks")
        assert listed.status_code == 200 and listed.json() == []
    async with live_server.services.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(m.WebhookSubscription)) == 0
