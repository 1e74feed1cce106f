"""The CRM REST routes on the real app (uvicorn in the test's loop, embedded SQLite): admins
configure, operators read the card of what they may open, a fuzzer's input is a named 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni.db import models as m
from omni.domain.conversations import InboundMessage, do_ingest_inbound
from tests import factories as f
from tests.conftest import LiveServer
from tests.crm.card_server import CardServer
from tests.crm.conftest import sqlite_settings
from tests.helpers import HTTP_TIMEOUT

SECRET = "fetch-secret-" + "x" * 20


@pytest.fixture
async def server(tmp_path: Path, migrated: Path) -> AsyncIterator[LiveServer]:
    live = LiveServer(sqlite_settings(tmp_path, migrated))
    await live.start()
    try:
        yield live
    finally:
        await live.stop()


async def login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


async def test_crm_settings_and_card_over_rest(server: LiveServer) -> None:
    async with server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        other = await f.user(s, "other")
        q = await f.queue(s, "sales", [op])
        await f.queue(s, "elsewhere", [other])
        ib = await f.inbox(s, q)
        conv = (
            await do_ingest_inbound(
                s,
                InboundMessage(
                    inbox_id=ib.id,
                    identity_kind="external",
                    identity_value="c1",
                    contact_phone="+79161234512",
                ),
            )
        ).conversation
    cards = CardServer(cards={"+79161234512": {"title": "Ivan", "fields": {"Tier": "gold"}}})
    await cards.start()
    admin, op_c, other_c = [await login(server, n) for n in ("admin", "op", "other")]
    try:
        refused: list[tuple[dict[str, Any], int, str]] = [
            ({"fetch_url": "https://crm/{nope}", "fetch_secret": SECRET}, 422, "fetch_url"),
            ({"fetch_timeout_ms": 2**40}, 400, "fetch_timeout_ms"),
            ({"fetch_cache_seconds": -1}, 422, "fetch_cache_seconds"),
            ({"push_url": "https://crm/in", "push_secret": "a\x00b" * 8}, 400, "push_secret"),
            ({"bitrix_entity": ""}, 422, "bitrix_entity"),
            ({"unknown": 1}, 400, "unknown"),
        ]
        for body, status, field in refused:
            resp = await admin.put("/api/v1/admin/crm", json=body)
            assert resp.status_code == status, (body, resp.text)
            assert resp.json()["detail"], resp.text
            assert field in resp.text, (body, resp.text)
        assert (await admin.get("/api/v1/admin/crm")).json()["fetch_url"] == "", "a refusal stores nothing"

        assert (await op_c.put("/api/v1/admin/crm", json={"fetch_timeout_ms": 500})).status_code == 403
        saved = await admin.put(
            "/api/v1/admin/crm",
            json={
                "fetch_url": cards.template,
                "fetch_secret": SECRET,
                "bitrix_url": "https://portal.example/rest/1/tokentokentoken/",
            },
        )
        assert saved.status_code == 200, saved.text
        body = saved.json()
        assert body["fetch_secret_set"] is True
        assert "fetch_secret" not in body
        assert body["bitrix_url"] == "https://portal.example/rest/1/***/"
        assert body["bitrix_subscription_id"] is not None

        card = await op_c.get(f"/api/v1/conversations/{conv.id}/crm-card")
        assert card.status_code == 200, card.text
        assert card.json() == {
            "status": "ok",
            "card": {"title": "Ivan", "url": "", "fields": [{"label": "Tier", "value": "gold"}]},
            "cached": False,
        }
        assert (await other_c.get(f"/api/v1/conversations/{conv.id}/crm-card")).status_code == 404
        assert (await op_c.get(f"/api/v1/conversations/{2**62}/crm-card")).status_code == 404
        assert len(cards.hits) == 1

        # The admin page, in Russian: the form shows the stored values, never a secret.
        admin.cookies.set("omni_lang", "ru")
        page = await admin.get("/admin/crm/1")
        assert page.status_code == 200, page.text
        assert "Шаблон адреса карточки" in page.text
        assert "/rest/1/***/" in page.text
        assert SECRET not in page.text
        assert "tokentokentoken" not in page.text
        assert (await op_c.get("/admin/crm/1")).status_code == 403
    finally:
        for c in (admin, op_c, other_c):
            await c.aclose()
        await cards.stop()
