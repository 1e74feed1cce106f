"""Quality assessment over REST (issue 18): a supervisor builds a scorecard and grades a
conversation of their group; bad answers are a 422 naming the question; the operator reads
only their own grade and comments; the routes are in the OpenAPI document."""

from __future__ import annotations

import httpx

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT

ITEMS = [
    {"key": "polite", "text": "Polite", "weight": 3},
    {"key": "tone", "text": "Tone", "kind": "scale", "scale_max": 5, "weight": 2},
    {"key": "safe", "text": "No data leaked", "critical": True},
]


async def _login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


async def test_build_grade_read_and_comment_over_rest(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op = await f.user(s, "op")
        other = await f.user(s, "other")
        g = m.Group(name="A")
        s.add(g)
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g.id, user_id=op.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g.id),
            ]
        )
        q = await f.queue(s, "Q", [op, other], group_id=g.id)
        contact = m.Contact(name="Ann", custom_fields={}, tags=[])
        s.add(contact)
        await s.flush()
        conv = m.Conversation(
            contact_id=contact.id, channel="api", queue_id=q.id, status="closed", assigned_user_id=op.id
        )
        s.add(conv)
        await s.flush()
        conv_id = conv.id
    sup_c, op_c, other_c = [await _login(live_server, u) for u in ("sup", "op", "other")]
    try:
        bad_card = await sup_c.post(
            "/api/v1/qa/scorecards", json={"name": "x", "items": [{"text": "q", "weight": 0}]}
        )
        assert bad_card.status_code == 422 and bad_card.json()["field"] == "items"
        made = await sup_c.post("/api/v1/qa/scorecards", json={"name": "Chats", "items": ITEMS})
        assert made.status_code == 201, made.text
        card = made.json()
        assert [i["key"] for i in card["items"]] == ["polite", "tone", "safe"] and card["version"] == 1

        body = {
            "scorecard_id": card["id"],
            "conversation_id": conv_id,
            "answers": {"polite": True, "tone": 7, "safe": True},
        }
        too_high = await sup_c.post("/api/v1/qa/evaluations", json=body)
        assert too_high.status_code == 422 and too_high.json()["field"] == "answers.tone"
        body["answers"] = {"polite": True, "tone": 4, "safe": True}
        graded = await sup_c.post("/api/v1/qa/evaluations", json=body)
        assert graded.status_code == 201, graded.text
        ev = graded.json()
        assert (ev["score"], ev["critical_failed"], ev["operator_id"]) == (
            round(100 * (3 + 1.6 + 1) / 6, 1),
            False,
            op.id,
        )

        mine = await op_c.get("/api/v1/qa/evaluations")
        assert [e["id"] for e in mine.json()] == [ev["id"]]
        assert (await other_c.get("/api/v1/qa/evaluations")).json() == []
        assert (await other_c.get(f"/api/v1/qa/evaluations/{ev['id']}")).status_code == 404
        assert (await op_c.post("/api/v1/qa/evaluations", json=body)).status_code == 403
        commented = await op_c.post(f"/api/v1/qa/evaluations/{ev['id']}/comment", json={"comment": "Thanks"})
        assert commented.status_code == 200 and commented.json()["operator_comment"] == "Thanks"
        assert commented.json()["acknowledged_at"]

        # the used card changes into version 2; the grade keeps version 1
        changed = await sup_c.patch(f"/api/v1/qa/scorecards/{card['id']}", json={"name": "Chats v2"})
        assert (
            changed.status_code == 200
            and changed.json()["version"] == 2
            and changed.json()["id"] != card["id"]
        )
        assert (await sup_c.get(f"/api/v1/qa/evaluations/{ev['id']}")).json()["scorecard_id"] == card["id"]

        schema = (await sup_c.get("/schema/openapi.json")).json()
        assert {"/api/v1/qa/scorecards", "/api/v1/qa/evaluations/{evaluation_id}/comment"} <= set(
            schema["paths"]
        )
    finally:
        for c in (sup_c, op_c, other_c):
            await c.aclose()
