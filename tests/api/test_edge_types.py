"""Inputs are validated by type at the edge (issue 11): values PostgreSQL can't hold, NUL
bytes and runaway nesting answer a 4xx with the error body, never a 500; every refusal is
documented in /schema/openapi.json; 405 carries ``Allow``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from omni.db import models as m
from omni.domain import auth
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT


@pytest.fixture
async def admin(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with live_server.services.db.transaction() as s:
        user = await f.user(s, "admin", m.Role.ADMIN)
        _, token = await auth.do_create_api_token(s, user, "t")
    async with httpx.AsyncClient(
        base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    ) as client:
        yield client


def assert_invalid(resp: httpx.Response, field: str | None = None) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid" and body["detail"]
    if field is not None:
        assert body["field"] == field and body["errors"][0]["field"] == field
        assert body["fields"][0]["key"] == field  # the pre-issue-11 shape, kept for clients


async def test_event_cursor_beyond_bigint_is_a_400_not_a_500(admin: httpx.AsyncClient) -> None:
    assert_invalid(await admin.get("/api/v1/events", params={"after": "9223372036854775808"}), "after")
    assert (await admin.get("/api/v1/events", params={"after": "9223372036854775807"})).status_code == 200


async def test_queue_filter_outside_the_id_range_is_a_400_not_a_500(admin: httpx.AsyncClient) -> None:
    assert_invalid(await admin.get("/api/v1/conversations", params={"queue_id": "-9846372643"}), "queue_id")
    assert_invalid(await admin.get("/api/v1/conversations", params={"queue_id": "9846372643"}), "queue_id")
    assert_invalid(await admin.get("/api/v1/conversations", params={"limit": "99999999999"}), "limit")
    assert (await admin.get("/api/v1/conversations", params={"queue_id": "5"})).status_code == 200


async def test_path_id_beyond_bigint_is_a_400_not_a_500(admin: httpx.AsyncClient) -> None:
    assert_invalid(await admin.get("/api/v1/conversations/99999999999999999999"), "conversation_id")
    assert_invalid(await admin.post("/api/v1/offers/0/accept"), "offer_id")
    # Scenario and revision ids are INTEGER columns: beyond int32 is as wrong as beyond int64.
    assert_invalid(await admin.get("/api/v1/scenarios/41205798069/diff?a=1&b=2"), "scenario_id")
    assert_invalid(await admin.get("/api/v1/scenarios/1/diff?a=12341&b=11880000000"), "b")
    assert (await admin.get("/api/v1/scenarios/2147483647/export")).status_code == 404


async def test_nul_in_the_login_name_is_a_400_not_a_500_and_records_nothing(live_server: LiveServer) -> None:
    """Unauthenticated: ``{"username": "ad\\u0000min"}`` reached PostgreSQL (which can't store NUL)."""
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        audit_before = await s.scalar(select(func.count()).select_from(m.AuditLog))
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        resp = await client.post("/api/v1/auth/login", json={"username": "ad\u0000min", "password": "x"})
        assert_invalid(resp)
        assert "NUL" in resp.text and resp.json()["field"] == "username"
        ru = await client.post(
            "/api/v1/auth/login",
            json={"username": "ad\u0000min", "password": "x"},
            headers={"Accept-Language": "ru"},
        )
        assert ru.status_code == 400 and ru.json()["detail"] == "текст не должен содержать символ NUL"
        ok = await client.post("/api/v1/auth/login", json={"username": "admin", "password": f.PASSWORD})
        assert ok.status_code == 200
    async with live_server.services.db.transaction() as s:
        # Only the successful login is audited; the NUL one never reached the domain.
        assert await s.scalar(select(func.count()).select_from(m.AuditLog)) == (audit_before or 0) + 1


async def test_nul_anywhere_in_path_query_or_a_json_document_is_a_400(admin: httpx.AsyncClient) -> None:
    assert_invalid(await admin.get("/api/v1/files/ab%00cd"))
    assert_invalid(await admin.get("/api/v1/conversations", params={"status": "queued\u0000"}))
    nested = {"key": "k", "name": "n", "document": {"nodes": [{"id": "a", "text": "hi\u0000"}]}}
    assert_invalid(await admin.post("/api/v1/scenarios", json=nested))
    # An escaped backslash followed by "u0000" is text, not a NUL: the route's own checks answer.
    text = await admin.post("/api/v1/me/tokens", json={"name": "a\\u0000b"})
    assert text.status_code == 201 and text.json()["name"] == "a\\u0000b"


async def test_a_100k_deep_json_body_is_a_400_not_a_500(admin: httpx.AsyncClient) -> None:
    deep = b'{"document":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for path in ("/api/v1/scenarios/import", "/api/v1/me/tokens"):
        resp = await admin.post(path, content=deep, headers={"content-type": "application/json"})
        assert_invalid(resp)
        assert "nested" in resp.json()["detail"]


async def test_method_not_allowed_and_options_say_which_methods_are(admin: httpx.AsyncClient) -> None:
    resp = await admin.delete("/api/v1/events")
    assert resp.status_code == 405
    assert resp.json()["error"] == "http"
    assert "GET" in resp.headers["allow"]
    # GET and POST share the path: OPTIONS used to answer "GET, OPTIONS" or "OPTIONS, POST".
    options = await admin.options("/api/v1/scenarios")
    assert options.status_code == 204 and options.headers["allow"] == "GET, OPTIONS, POST"


async def test_openapi_documents_every_refusal_with_the_error_body(admin: httpx.AsyncClient) -> None:
    schema = (await admin.get("/schema/openapi.json")).json()
    op = schema["paths"]["/api/v1/conversations/{conversation_id}/close"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "413", "422"} <= set(op["responses"])
    assert op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert op["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/InvalidBody")
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ConversationOut"
    )
    login = schema["paths"]["/api/v1/auth/login"]["post"]
    assert {"401", "429"} <= set(login["responses"])
    body = schema["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"error", "detail"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if path.startswith("/api/v1/") and method in ("get", "post", "put", "patch", "delete"):
                assert "400" in operation["responses"], (method, path)


async def test_nul_in_the_widget_upload_form_is_a_404_not_a_500(live_server: LiveServer) -> None:
    """Multipart fields are not JSON, so the inbox token is checked where it is looked up."""
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        resp = await client.post(
            "/api/v1/widget/files",
            data={"inbox": "tok\u0000en", "visitor": "v"},
            files={"file": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")},
        )
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"] == "not_found" and resp.headers["access-control-allow-origin"] == "*"
