"""The reports page's pickers (``GET /api/v1/reports/options``): what a caller may filter by,
narrowed like the reports themselves and labelled in the caller's language."""

from __future__ import annotations

from typing import Any

import httpx

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT


async def _options(server: LiveServer, username: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as client:
        login = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
        assert login.status_code == 200, login.text
        return await client.get("/api/v1/reports/options")


def labels(body: dict[str, Any], picker: str) -> list[str]:
    return [o["label"] for o in body[picker]]


async def test_a_supervisor_sees_only_their_groups_queues_operators_inboxes_and_codes(
    live_server: LiveServer,
) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN)
        await f.user(s, "auditor", m.Role.AUDITOR)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR, language="ru")
        olga = await f.user(s, "olga", display_name="Olga")
        boris = await f.user(s, "boris", display_name="Boris")
        g_a, g_b = m.Group(name="Alpha"), m.Group(name="Beta")
        s.add_all([g_a, g_b])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g_a.id, user_id=olga.id),
                m.GroupMember(group_id=g_b.id, user_id=boris.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id),
            ]
        )
        q_a = await f.queue(s, "Support", [olga], group_id=g_a.id)
        q_b = await f.queue(s, "Collections", [boris], group_id=g_b.id)
        await f.inbox(s, q_a, "widget", name="Site chat")
        await f.inbox(s, q_b, "telegram", name="Debt bot")
        sold = await f.result_code(s, "sold", name="Sold", name_ru="Продано")
        promise = await f.result_code(s, "promise", name="Promise to pay", name_ru="Обещание оплаты")
        s.add_all(
            [
                m.QueueResultCode(queue_id=q_a.id, result_code_id=sold.id),
                m.QueueResultCode(queue_id=q_b.id, result_code_id=promise.id),
            ]
        )

    resp = await _options(live_server, "sup")
    assert resp.status_code == 200, resp.text
    mine = resp.json()
    assert labels(mine, "queues") == ["Support"]
    assert labels(mine, "groups") == ["Alpha"]
    assert labels(mine, "operators") == ["Olga"]
    assert mine["inboxes"] == [
        {"id": mine["inboxes"][0]["id"], "label": "Site chat", "channel": "widget", "code": None}
    ]
    assert mine["channels"] == [{"id": "widget", "label": "Веб-чат", "channel": None, "code": None}]
    assert [(o["code"], o["label"]) for o in mine["result_codes"]] == [("sold", "Продано")]

    for reader in ("admin", "auditor"):
        everything = (await _options(live_server, reader)).json()
        assert labels(everything, "queues") == ["Collections", "Support"], reader
        assert labels(everything, "groups") == ["Alpha", "Beta"], reader
        assert {"Olga", "Boris"} <= set(labels(everything, "operators")), reader
        assert [o["id"] for o in everything["channels"]] == ["telegram", "widget"], reader
        assert labels(everything, "result_codes") == ["Promise to pay", "Sold"], reader

    refused = await _options(live_server, "olga")
    assert refused.status_code == 403


async def test_a_queue_without_a_code_list_offers_every_result_code(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        g = m.Group(name="Alpha")
        s.add(g)
        await s.flush()
        s.add(m.SupervisorScope(supervisor_id=sup.id, group_id=g.id))
        await f.queue(s, "Open", [], group_id=g.id)
        await f.result_code(s, "sold", name="Sold")
        await f.result_code(s, "lost", name="Lost")
    body = (await _options(live_server, "sup")).json()
    assert labels(body, "result_codes") == ["Lost", "Sold"]
