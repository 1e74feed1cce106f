"""Admin pages of macros, automation rules (and their runs) and operator scripts with fields:
errors next to the field they are about, the list shows what was saved, delete works; a
supervisor is kept to their queues. Over HTTP against the running app (no browser needed)."""

from __future__ import annotations

import json

from sqlalchemy import select

from omni.db import models as m
from tests.web.test_admin_pages import World, client_for, field_error, post_form, world

__all__ = ["world"]


async def test_macros_rules_and_scripts_pages(world: World) -> None:
    q_a, done = world.ids["q_a"], world.ids["done"]
    async with client_for(world, "root") as c:
        index = await c.get("/admin")
        for slug in ("macros", "automation-rules", "rule-runs", "operator-scripts"):
            assert f'href="/admin/{slug}"' in index.text
        bad = await post_form(
            c, "/admin/macros/new", "/admin/macros/new", name="Sold", actions=json.dumps([{"kind": "fly"}])
        )
        assert bad.status_code == 400
        assert "unknown action 'fly'" in (field_error(bad.text, "actions") or "")
        actions = [{"kind": "close", "result_code_id": done}]
        ok = await post_form(
            c,
            "/admin/macros/new",
            "/admin/macros/new",
            name="Sold",
            actions=json.dumps(actions),
            queue_id=str(q_a),
        )
        assert ok.status_code in (302, 303), ok.text
        listing = await c.get("/admin/macros")
        assert "Sold" in listing.text and "QA" in listing.text

        rule_actions = json.dumps([{"kind": "priority", "priority": 10}])
        bad_rule = await post_form(
            c,
            "/admin/automation-rules/new",
            "/admin/automation-rules/new",
            name="Refunds",
            event="queued",
            conditions=json.dumps({"text_contains": ["refund"]}),
            actions=rule_actions,
        )
        assert "needs the event 'message_in'" in (field_error(bad_rule.text, "conditions") or "")
        rule = await post_form(
            c,
            "/admin/automation-rules/new",
            "/admin/automation-rules/new",
            name="Refunds",
            event="message_in",
            conditions=json.dumps({"queue_ids": [q_a], "text_contains": ["refund"]}),
            actions=rule_actions,
        )
        assert rule.status_code in (302, 303), rule.text
        assert "Refunds" in (await c.get("/admin/automation-rules")).text
        assert (await c.get("/admin/rule-runs")).status_code == 200

        no_field = await post_form(
            c,
            "/admin/operator-scripts/new",
            "/admin/operator-scripts/new",
            name="Sales",
            body="Ask {{contact.name}}",
            fields="age",
            queue_id=str(q_a),
        )
        assert "the card has no field 'age'" in (field_error(no_field.text, "fields") or "")
        bad_url = await post_form(
            c,
            "/admin/operator-scripts/new",
            "/admin/operator-scripts/new",
            name="Sales",
            body="Ask {{contact.name}}",
            fields="name",
            close_url="ftp://crm",
            queue_id=str(q_a),
        )
        assert field_error(bad_url.text, "close_url")
        script = await post_form(
            c,
            "/admin/operator-scripts/new",
            "/admin/operator-scripts/new",
            name="Sales",
            body="Ask {{contact.name}}",
            fields="name\nphone",
            close_url="https://crm.example/close",
            queue_id=str(q_a),
        )
        assert script.status_code in (302, 303), script.text
        assert "crm.example/close" in (await c.get("/admin/operator-scripts")).text

        async with world.server.services.db.transaction() as s:
            macro_id = await s.scalar(select(m.Macro.id).where(m.Macro.name == "Sold"))
        gone = await post_form(c, f"/admin/macros/{macro_id}/delete", f"/admin/macros/{macro_id}")
        assert gone.status_code in (302, 303), gone.text
        assert "Sold" not in (await c.get("/admin/macros")).text

    async with client_for(world, "sup") as c:
        assert (await c.get("/admin/macros")).status_code == 200
        assert (await c.get("/admin/automation-rules")).status_code == 403
        other = await post_form(
            c,
            "/admin/macros/new",
            "/admin/macros/new",
            name="Theirs",
            actions=json.dumps([{"kind": "transfer", "queue_id": q_a}]),
            queue_id=str(world.ids["q_b"]),
        )
        assert other.status_code == 400 and field_error(other.text, "queue_id")
    async with client_for(world, "op_a") as c:
        assert (await c.get("/admin/macros")).status_code == 403
