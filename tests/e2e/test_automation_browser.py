"""Macros, automation rules and operator scripts in real Chromium (issue 18): the operator runs
a macro with one click (its canned reply reaches the conversation); the customer writes
"refund" and the rule raises the conversation's priority, shown live; the script's field fills
the customer's card and its close POST, signed, reaches a loopback receiver with the field."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain import webhooks
from omni.domain.auth import Principal
from omni.domain.automation import macros, rules, scripts
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page
from tests.e2e.test_operator_browser import BORIS, customer_says, desk, server  # noqa: F401
from tests.webhook_receiver import Receiver, check_signature

TIMEOUT = 15_000


async def test_operator_runs_a_macro_a_rule_raises_priority_and_the_script_posts_at_close(
    server: LiveServer,  # noqa: F811
    desk: dict[str, Any],  # noqa: F811
    browser: Browser,
) -> None:
    crm = Receiver()
    await crm.start()
    async with server.services.db.transaction() as s:
        admin = Principal.of(
            await s.get_one(m.User, (await s.scalar(select(m.User.id).where(m.User.username == "admin"))))
        )
        sales = await s.scalar(select(m.Queue.id).where(m.Queue.name == "sales"))
        s.add(
            m.CardField(
                queue_id=None,
                key="city",
                label="City",
                kind="text",
                options=[],
                required=False,
                editable=True,
            )
        )
        reply = m.CannedReply(shortcut="thanks", title="Thanks", body="Thank you, {{contact.name}}!")
        s.add(reply)
        await s.flush()
        await macros.check_create_macro(
            s, admin, {"name": "Thank", "actions": [{"kind": "canned_reply", "reply_id": reply.id}]}
        )
        await rules.check_create_rule(
            s,
            admin,
            {
                "name": "Refunds first",
                "event": "message_in",
                "conditions": {"queue_ids": [sales], "text_contains": ["refund"]},
                "actions": [{"kind": "priority", "priority": 10}],
            },
        )
        script = await scripts.check_create_script(
            s,
            admin,
            {
                "name": "Sales script",
                "queue_id": sales,
                "body": "Ask {{contact.name}} for the city",
                "fields": ["city"],
                "close_url": crm.url,
            },
        )
        secret = (await s.get_one(m.WebhookSubscription, script.close_subscription_id)).secret
    op_ctx, op = await staff_page(browser, server.url, "olga")
    try:
        await expect(op.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)
        conv_id = await customer_says(server, desk["inbox"], BORIS, "Hello")
        await op.get_by_test_id("offer-accept").click()
        await expect(op.get_by_test_id("conversation-contact")).to_have_text(BORIS, timeout=TIMEOUT)

        await op.get_by_test_id("macro").filter(has_text="Thank").click()
        await expect(op.get_by_test_id("message-body").last).to_have_text(
            f"Thank you, {BORIS}!", timeout=TIMEOUT
        )

        priority = op.get_by_test_id("priority")
        await expect(priority).to_be_hidden()
        assert conv_id == await customer_says(server, desk["inbox"], BORIS, "I want a REFUND, please")
        await expect(priority).to_have_text("Priority 10", timeout=TIMEOUT)

        panel = op.get_by_test_id("operator-script")
        await expect(panel).to_contain_text(f"Ask {BORIS} for the city")
        await panel.get_by_test_id("script-field-city").fill("Omsk")
        await panel.get_by_test_id("script-close").click()
        await expect(op.locator("#op-toast")).to_contain_text("Script finished", timeout=TIMEOUT)
        await op.screenshot(path=screenshot_path("automation.png"), full_page=True)
        async with server.services.db.transaction() as s:
            contact = await s.get_one(m.Contact, (await s.get_one(m.Conversation, conv_id)).contact_id)
            assert contact.custom_fields.get("city") == "Omsk"
            pending = list(
                await s.scalars(
                    select(m.WebhookDelivery.id).where(
                        m.WebhookDelivery.subscription_id == script.close_subscription_id
                    )
                )
            )
        # What the Celery worker runs for the enqueued delivery (its retries: tests/test_webhooks.py).
        assert len(pending) == 1
        outcome = await webhooks.do_deliver(server.services.db, pending[0], server.settings.webhook)
        assert outcome.delivered
        hit = crm.delivered()[0]
        check_signature(secret, hit.headers, hit.body)
        assert hit.event["type"] == "script.closed" and hit.event["data"]["fields"] == {"city": "Omsk"}
        async with server.services.db.transaction() as s:
            runs = list(await s.scalars(select(m.RuleRun)))
        assert [(r.conversation_id, r.state) for r in runs] == [(conv_id, "done")]
    finally:
        await op_ctx.close()
        await crm.stop()
