"""CRM integration on the embedded SQLite: the screen-pop card fetch, the result push on close
and the Bitrix24 connector, against loopback stand-ins (tests/crm/card_server.py,
tests/webhook_receiver.py, tests/crm/bitrix24_emulator.py).

Pushes go through the webhook machinery itself (the relay's fan-out writes the delivery,
``do_deliver`` sends it and schedules the retry); the test plays the Celery worker by calling
``do_deliver`` again whenever it asks for a retry (backoff set to zero).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from omni.db import models as m
from omni.domain import crm, retention, webhooks
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage, do_close, do_ingest_inbound
from omni.domain.errors import InvalidInput, PermissionDenied
from omni.domain.routing import do_route_pending
from omni.services import Services, build_services
from omni.settings import WebhookSettings
from tests import factories as f
from tests.crm.bitrix24_emulator import Bitrix24
from tests.crm.card_server import CardServer
from tests.crm.conftest import sqlite_settings
from tests.webhook_receiver import Receiver, check_signature, fail_first_attempts

FETCH_SECRET = "fetch-secret-" + "f" * 20
PUSH_SECRET = "push-secret-" + "p" * 20
BASE = "https://omni.example"
RETRY_AT_ONCE = WebhookSettings(
    backoff_base_seconds=0, backoff_max_seconds=0, max_attempts=6, timeout_seconds=5
)


@pytest.fixture
async def services(tmp_path: Path, migrated: Path) -> AsyncIterator[Services]:
    svc = build_services(sqlite_settings(tmp_path, migrated), run_background=False)
    await svc.start()
    svc.relay.tx_sinks.append(webhooks.fanout_sink(lambda _ids: None))  # as omni.app wires them
    svc.relay.post_commit_sinks.append(crm.OfferPrefetch(svc.db))
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
async def world(services: Services) -> dict[str, Any]:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN, display_name="Admin")
        op = await f.user(s, "op", display_name="Olga Operator")
        other = await f.user(s, "other")
        q = await f.queue(s, "sales", [op])
        qb = await f.queue(s, "elsewhere", [other])
        ib = await f.inbox(s, q, channel="telegram")
        ib2 = await f.inbox(s, q, channel="telegram", name="second-bot")
        code = await f.result_code(s, "sale", name="Sale")
        return {
            "admin": f.who(admin),
            "op": f.who(op),
            "other": f.who(other),
            "op_id": op.id,
            "inbox": ib.id,
            "inbox2": ib2.id,
            "qb": qb.id,
            "code": code.id,
        }


async def configure(services: Services, who: Principal, **values: Any) -> m.CrmSettings:
    async with services.db.transaction() as s:
        return await crm.check_update_settings(s, who, values)


async def conversation(
    services: Services,
    world: dict[str, Any],
    who: str = "cust-1",
    phone: str = "+7 916 123-45-12",
    inbox: str = "inbox",
    **kw: Any,
) -> int:
    async with services.db.transaction() as s:
        res = await do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=world[inbox],
                identity_kind="telegram",
                identity_value=who,
                body="I want the blue one",
                contact_name="Ivan Petrov",
                contact_phone=phone,
                contact_email="ivan@example.com",
                **kw,
            ),
        )
        conv = res.conversation
        conv.assigned_user_id = world["op_id"]
        conv.status = m.ConversationStatus.ACTIVE
        conv.accepted_at = datetime.now(UTC)
        s.add(
            m.Message(
                conversation_id=conv.id,
                direction="out",
                body="Sold, thank you!",
                author_user_id=world["op_id"],
            )
        )
        return conv.id


async def close(services: Services, world: dict[str, Any], conv_id: int) -> list[int]:
    """Close with the result code; the relay fans the event out: the new deliveries' ids."""
    async with services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        await do_close(s, conv, world["code"], by="operator")
    before = await delivery_ids(services)
    while await services.relay.relay_once():
        pass
    return [i for i in await delivery_ids(services) if i not in before]


async def delivery_ids(services: Services) -> list[int]:
    async with services.db.transaction() as s:
        return list(await s.scalars(select(m.WebhookDelivery.id).order_by(m.WebhookDelivery.id)))


async def deliver(services: Services, delivery_id: int) -> m.WebhookDelivery:
    """What the Celery worker does: attempt, and attempt again while a retry is asked for."""
    while (
        await webhooks.do_deliver(services.db, delivery_id, RETRY_AT_ONCE, base_url=BASE)
    ).retry_in is not None:
        pass
    async with services.db.transaction() as s:
        return await s.get_one(m.WebhookDelivery, delivery_id)


# --- screen-pop -------------------------------------------------------------------------------


async def test_card_fetch_is_templated_signed_cached_and_scoped(
    services: Services, world: dict[str, Any]
) -> None:
    server = CardServer(
        cards={
            "+79161234512": {
                "title": "Ivan Petrov — VIP",
                "url": "https://crm.example/contacts/77",
                "fields": [{"label": "Manager", "value": "Anna"}, {"label": "Balance", "value": 1200}],
            }
        }
    )
    await server.start()
    try:
        await configure(services, world["admin"], fetch_url=server.template, fetch_secret=FETCH_SECRET)
        conv_id = await conversation(services, world)

        got = await crm.card_for(services.db, world["op"], conv_id)
        assert got["status"] == "ok"
        assert not got["cached"]
        assert got["card"] == {
            "title": "Ivan Petrov — VIP",
            "url": "https://crm.example/contacts/77",
            "fields": [{"label": "Manager", "value": "Anna"}, {"label": "Balance", "value": "1200"}],
        }
        url, headers = server.hits[0]
        query = parse_qs(urlsplit(url).query)
        assert query == {"phone": ["+79161234512"], "email": ["ivan@example.com"], "id": ["cust-1"]}
        assert "phone=%2B79161234512" in url, "the values are URL-encoded into the template"
        assert webhooks.verify(
            FETCH_SECRET, headers["X-Omni-Timestamp"], url.encode(), headers["X-Omni-Signature"]
        )

        again = await crm.card_for(services.db, world["op"], conv_id)
        assert again == {**got, "cached": True}
        assert len(server.hits) == 1, "within fetch_cache_seconds the CRM is not asked again"

        async with services.db.transaction() as s:  # a card of someone else, fetched two days ago
            s.add(
                m.CrmCard(
                    url_digest="0" * 64,
                    data={"title": "old"},
                    fetched_at=datetime.now(UTC) - timedelta(days=2),
                )
            )
        await configure(services, world["admin"], fetch_cache_seconds=0)
        assert (await crm.card_for(services.db, world["op"], conv_id))["cached"] is False
        assert len(server.hits) == 2
        async with services.db.transaction() as s:
            kept = list(await s.scalars(select(m.CrmCard.url_digest)))
            assert "0" * 64 not in kept, "a card older than the longest cache is not kept"
            assert len(kept) == 1

        with pytest.raises(Exception, match="not found"):
            await crm.card_for(services.db, world["other"], conv_id)
        assert len(server.hits) == 2, "an operator of another queue learns nothing and fetches nothing"

        # Erasing the contact's personal data on request removes the CRM's card Omni cached.
        async with services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            await do_close(s, conv, world["code"], by="operator")
            await retention.check_erase_contact(s, world["admin"], conv.contact_id, services.settings)
        async with services.db.transaction() as s:
            assert list(await s.scalars(select(m.CrmCard))) == []
    finally:
        await server.stop()


async def test_an_offer_fetches_the_card_before_the_operator_asks(
    services: Services, world: dict[str, Any]
) -> None:
    server = CardServer(cards={"+79161234512": {"title": "Ivan", "fields": {"Tier": "gold"}}})
    await server.start()
    try:
        await configure(services, world["admin"], fetch_url=server.template, fetch_secret=FETCH_SECRET)
        async with services.db.transaction() as s:
            await f.set_status(s, await s.get_one(m.User, world["op_id"]))
            conv_id = (
                await do_ingest_inbound(
                    s,
                    InboundMessage(
                        inbox_id=world["inbox"],
                        identity_kind="telegram",
                        identity_value="cust-9",
                        body="hi",
                        contact_phone="+7 916 123-45-12",
                    ),
                )
            ).conversation.id
        await do_route_pending(services.db)
        async with services.db.transaction() as s:
            offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == conv_id))
            assert offer is not None, "the router offered it"
        assert server.hits == [], "nothing is fetched before the offer is committed and relayed"
        while await services.relay.relay_once():
            pass
        prefetch = next(p for p in services.relay.post_commit_sinks if isinstance(p, crm.OfferPrefetch))
        await asyncio.gather(*prefetch.tasks)
        assert len(server.hits) == 1, "the offer fetched the card"

        got = await crm.card_for(services.db, world["op"], conv_id)
        assert got["cached"] is True, "the operator's window finds it cached"
        assert got["card"]["title"] == "Ivan"
        assert len(server.hits) == 1
    finally:
        await server.stop()


@pytest.mark.parametrize("mode", ["hang", "error", "garbage"])
async def test_card_fetch_failure_is_a_quiet_note(
    services: Services, world: dict[str, Any], mode: str
) -> None:
    server = CardServer(mode=mode)
    await server.start()
    try:
        await configure(
            services,
            world["admin"],
            fetch_url=server.template,
            fetch_secret=FETCH_SECRET,
            fetch_timeout_ms=300,
        )
        conv_id = await conversation(services, world)
        got = await crm.card_for(services.db, world["op"], conv_id)
        assert got == {"status": "unavailable", "card": None, "cached": False}
        if mode == "hang":
            assert server.hung.is_set(), "the request reached the CRM and was cut by the timeout"
        async with services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            assert conv.status == m.ConversationStatus.ACTIVE
    finally:
        await server.stop()


async def test_card_fetch_off_and_unknown_customer(services: Services, world: dict[str, Any]) -> None:
    conv_id = await conversation(services, world)
    assert (await crm.card_for(services.db, world["op"], conv_id))["status"] == "off"
    server = CardServer()
    await server.start()
    try:
        await configure(services, world["admin"], fetch_url=server.template, fetch_secret=FETCH_SECRET)
        got = await crm.card_for(services.db, world["op"], conv_id)
        assert got["status"] == "ok"
        assert got["card"] == {"title": "", "url": "", "fields": []}, "a 404 is 'the CRM has no card'"
    finally:
        await server.stop()


# --- result push ------------------------------------------------------------------------------


async def test_result_push_on_close_is_signed_complete_and_retried(
    services: Services, world: dict[str, Any]
) -> None:
    receiver = Receiver(respond=fail_first_attempts(2, status=503))
    cards = CardServer(cards={"+79161234512": {"title": "Ivan", "fields": {"Tier": "gold"}}})
    await receiver.start()
    await cards.start()
    try:
        await configure(
            services,
            world["admin"],
            push_url=receiver.url,
            push_secret=PUSH_SECRET,
            fetch_url=cards.template,
            fetch_secret=FETCH_SECRET,
        )
        conv_id = await conversation(services, world)
        await crm.card_for(services.db, world["op"], conv_id)
        ids = await close(services, world, conv_id)
        assert len(ids) == 1, "one push per closed conversation"
        row = await deliver(services, ids[0])

        assert row.state == "succeeded"
        assert row.attempts == 3
        assert [h.status for h in receiver.hits] == [503, 503, 200]
        assert len({h.delivery_id for h in receiver.hits}) == 1, "retries are the same delivery"
        hit = receiver.hits[-1]
        check_signature(PUSH_SECRET, hit.headers, hit.body)
        assert hit.headers["X-Omni-Event"] == "crm.result"
        body = hit.payload
        assert body["event"]["type"] == "conversation.closed"
        assert body["conversation"]["id"] == conv_id
        assert body["conversation"]["url"] == f"{BASE}/app#c={conv_id}"
        assert body["result"] == {"code": "sale", "name": "Sale"}
        assert body["operator"]["name"] == "Olga Operator"
        assert body["contact"]["phone"] == "+79161234512", "as stored (E.164)"
        assert {"kind": "telegram", "value": "cust-1"} in body["contact"]["identities"]
        assert body["card"] == {"title": "Ivan", "url": "", "fields": [{"label": "Tier", "value": "gold"}]}
        assert [(t["direction"], t["body"]) for t in body["transcript"]] == [
            ("in", "I want the blue one"),
            ("out", "Sold, thank you!"),
        ]
        assert body["recording_url"] is None
    finally:
        await receiver.stop()
        await cards.stop()


# --- Bitrix24 ---------------------------------------------------------------------------------


async def voice_call(services: Services, conv_id: int) -> None:
    """What the voice adapter leaves behind for a recorded, answered inbound call."""
    async with services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        conv.medium = m.Medium.VOICE
        now = datetime.now(UTC)
        s.add(
            m.Call(
                conversation_id=conv_id,
                direction="in",
                linkedid=f"1700000000.{conv_id}",
                caller_number="+79161234512",
                talk_seconds=42.4,
                answered_at=now,
                ended_at=now,
                recording_path=f"/rec/{conv_id}.wav",
            )
        )


async def test_bitrix24_creates_a_lead_attaches_the_call_and_resumes_after_its_errors(
    services: Services, world: dict[str, Any]
) -> None:
    portal = Bitrix24()
    await portal.start()
    try:
        await configure(services, world["admin"], bitrix_url=portal.url, bitrix_user_id=7)
        conv_id = await conversation(services, world)
        await voice_call(services, conv_id)
        portal.fail_next("telephony.externalcall.register")  # 503 QUERY_LIMIT_EXCEEDED
        portal.fail_next(
            "crm.timeline.comment.add",
            status=502,
            body="<html>502 Bad Gateway</html>",
            content_type="text/html",
        )
        ids = await close(services, world, conv_id)
        row = await deliver(services, ids[0])

        assert row.state == "succeeded", row.last_error
        assert row.attempts == 3
        assert len(portal.called("crm.lead.add")) == 1, "a retry resumes after the lead, never adds a second"
        ((lead_id, lead),) = portal.leads.items()
        assert lead["TITLE"] == "Omni: Ivan Petrov"
        assert lead["PHONE"] == [{"VALUE": "+79161234512", "VALUE_TYPE": "WORK"}]
        assert lead["EMAIL"] == [{"VALUE": "ivan@example.com", "VALUE_TYPE": "WORK"}]
        assert lead["ASSIGNED_BY_ID"] == 7
        assert lead["SOURCE_ID"] == "CALL"
        (call,) = portal.calls.values()
        assert call["CRM_ENTITY_TYPE"] == "LEAD"
        assert call["CRM_ENTITY_ID"] == lead_id
        assert call["PHONE_NUMBER"] == "+79161234512"
        assert call["TYPE"] == 2
        assert call["finished"]["DURATION"] == 42
        assert call["finished"]["STATUS_CODE"] == "200"
        assert call["finished"]["RECORD_URL"] == f"{BASE}/api/v1/conversations/{conv_id}/recording"
        (comment,) = portal.comments
        assert comment["ENTITY_ID"] == lead_id
        assert "Result: Sale (sale)" in comment["COMMENT"]
        assert "Customer: I want the blue one" in comment["COMMENT"]
        failures = [(mth, st) for mth, _, st in portal.requests if st != 200]
        assert failures == [("telephony.externalcall.register", 503), ("crm.timeline.comment.add", 502)]

        # The contact's next conversation updates the same lead instead of adding one.
        second = await conversation(services, world, inbox="inbox2")
        assert second != conv_id
        row2 = await deliver(services, (await close(services, world, second))[0])
        assert row2.state == "succeeded", row2.last_error
        assert len(portal.leads) == 1
        assert [p["id"] for p in portal.called("crm.lead.update")] == [lead_id]
        assert len(portal.comments) == 2
        assert len(portal.calls) == 1, "a chat attaches no call"
    finally:
        await portal.stop()


async def test_bitrix24_deal_mode(services: Services, world: dict[str, Any]) -> None:
    portal = Bitrix24()
    await portal.start()
    try:
        await configure(services, world["admin"], bitrix_url=portal.url, bitrix_entity="deal")
        row = await deliver(services, (await close(services, world, await conversation(services, world)))[0])
        assert row.state == "succeeded", row.last_error
        assert not portal.leads
        (deal,) = portal.deals.values()
        assert deal["SOURCE_ID"] == "WEB"
        assert portal.comments[0]["ENTITY_TYPE"] == "deal"
    finally:
        await portal.stop()


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ({"bitrix_user_id": 99}, "Bitrix24 crm.lead.add: Responsible user with ID 99 not found. (HTTP 400)"),
        (
            {"token": "wrong-token-xxxxxxx"},
            "Bitrix24 crm.lead.add: INVALID_CREDENTIALS: Invalid request credentials (HTTP 401)",
        ),
    ],
)
async def test_bitrix24_errors_are_named_in_the_delivery_log(
    services: Services, world: dict[str, Any], setup: dict[str, Any], error: str
) -> None:
    portal = Bitrix24()
    await portal.start()
    try:
        url = portal.url.replace(portal.token, setup.get("token", portal.token))
        await configure(
            services, world["admin"], bitrix_url=url, bitrix_user_id=setup.get("bitrix_user_id", 1)
        )
        row = await deliver(services, (await close(services, world, await conversation(services, world)))[0])
        assert row.state == "failed"
        assert row.attempts == RETRY_AT_ONCE.max_attempts
        assert row.last_error == error
        assert not portal.leads
    finally:
        await portal.stop()


# --- settings ---------------------------------------------------------------------------------


async def test_crm_settings_are_checked_audited_and_keep_secrets(
    services: Services, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    bad: list[tuple[dict[str, Any], str, str]] = [
        (
            {"fetch_url": "https://crm/x?p={phone}&n={name}", "fetch_secret": FETCH_SECRET},
            "fetch_url",
            "unknown placeholder 'name'",
        ),
        (
            {"fetch_url": "https://crm/x?p={phone", "fetch_secret": FETCH_SECRET},
            "fetch_url",
            "unbalanced braces",
        ),
        (
            {"fetch_url": "ftp://crm/{phone}", "fetch_secret": FETCH_SECRET},
            "fetch_url",
            "absolute http(s) URL",
        ),
        ({"push_url": "http://[::1", "push_secret": PUSH_SECRET}, "push_url", "absolute http(s) URL"),
        ({"fetch_url": "https://crm/{phone}"}, "fetch_secret", "fetch_secret is required with fetch_url"),
        ({"push_url": "https://crm/in", "push_secret": "short"}, "push_secret", "at least 16 characters"),
        ({"fetch_timeout_ms": 0}, "fetch_timeout_ms", "between 100 and 10000"),
        ({"bitrix_entity": "contact"}, "bitrix_entity", "one of: lead, deal"),
        ({"surprise": 1}, "surprise", "unknown field"),
    ]
    for values, field, message in bad:
        with pytest.raises(InvalidInput) as exc:
            await configure(services, admin, **values)
        assert exc.value.field == field, values
        assert message in str(exc.value), (values, str(exc.value))
    with pytest.raises(PermissionDenied):
        await configure(services, world["op"], push_url="https://crm/in", push_secret=PUSH_SECRET)

    portal_url = "https://portal.bitrix24.ru/rest/1/t0ps3cr3tt0k3n/"
    row = await configure(
        services, admin, push_url="https://crm/in", push_secret=PUSH_SECRET, bitrix_url=portal_url
    )
    shown = crm.settings_dict(row)
    assert shown["bitrix_url"] == "https://portal.bitrix24.ru/rest/1/***/"
    assert shown["push_secret_set"] is True
    assert PUSH_SECRET not in str(shown)
    async with services.db.transaction() as s:
        subs = {sub.kind: sub for sub in await s.scalars(select(m.WebhookSubscription))}
        assert subs["crm_push"].url == "https://crm/in"
        assert subs["crm_push"].secret == PUSH_SECRET
        assert subs["crm_push"].event_types == ["conversation.closed"]
        assert subs["bitrix24"].url == portal_url
        entry = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "crm.update"))
        assert entry is not None
        assert PUSH_SECRET not in str(entry.input)
        assert "t0ps3cr3tt0k3n" not in str(entry.input)

    # Saving the form back as shown keeps the token; a blank secret keeps the stored one.
    row = await configure(services, admin, bitrix_url=shown["bitrix_url"], push_secret="")
    assert row.bitrix_url == portal_url
    assert row.push_secret == PUSH_SECRET
    # Clearing a URL removes its subscription (and so its pushes).
    await configure(services, admin, push_url="", bitrix_url="")
    async with services.db.transaction() as s:
        assert list(await s.scalars(select(m.WebhookSubscription))) == []
