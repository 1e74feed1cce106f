"""Telegram broadcast campaigns end to end: the real app (uvicorn), aiogram's own HTTP session
against the loopback Bot API emulator enforcing Telegram's limits (429 + retry_after per chat
and per bot), attempts handed to the adapter's ``PlacesAttempts.place`` as the scheduler would.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.exceptions import TelegramRetryAfter
from sqlalchemy import func, select

from channels.telegram import TelegramChannel, make_bot
from omni.channels import AttemptOrder, ChannelNotReady, PlacesAttempts
from omni.db import models as m
from omni.db.models.outbound import CampaignChannel, CampaignState, Outcome, TargetState
from omni.domain.engine import run_due_deadlines
from omni.domain.errors import InvalidInput
from omni.domain.outbound import broadcast
from omni.domain.outbound.lifecycle import do_open_attempt
from tests import factories as f
from tests.channels.telegram.emulator import BotApiEmulator
from tests.channels.telegram.test_telegram_channel import create_bot
from tests.conftest import (
    LiveServer,
    _asyncpg_url,
    create_test_database,
    drop_test_database,
    free_port,
    make_settings,
)
from tests.helpers import until

log = logging.getLogger(__name__)

_users = itertools.count(9_100_000)
_phones = itertools.count(1_000_000)
_names = itertools.count(1)


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[BotApiEmulator]:
    emu = BotApiEmulator(free_port())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture(autouse=True)
def fresh_knobs(emulator: BotApiEmulator) -> None:
    emulator.blocked.clear()
    emulator.calls.clear()
    emulator.refused_429 = 0
    emulator.enforce_limits = True
    emulator.arrival_jitter = 0.0


@pytest.fixture(scope="module")
async def app(
    pg_template: str, emulator: BotApiEmulator, tmp_path_factory: Any
) -> AsyncIterator[dict[str, Any]]:
    name = await create_test_database(pg_template)
    settings = make_settings(_asyncpg_url(name), data_dir=tmp_path_factory.mktemp("broadcast"))
    tg = settings.telegram
    tg.api_base_url = emulator.url
    tg.retry_backoff_seconds = 0.1
    server = LiveServer(settings)
    tg.webhook_base_url = server.url
    await server.start()
    try:
        async with server.services.db.transaction() as s:
            await f.user(s, "admin", m.Role.ADMIN)
            inbound = await f.queue(s, "telegram in")
            inbound_id = inbound.id
        from tests.test_realtime import token_for

        yield {"server": server, "queue_id": inbound_id, "admin": await token_for(server, "admin")}
    finally:
        await server.stop()
        await drop_test_database(name)


def channel_of(app: dict[str, Any]) -> TelegramChannel:
    adapter = app["server"].services.adapters.get("telegram")
    assert isinstance(adapter, TelegramChannel)
    assert isinstance(adapter, PlacesAttempts), "the Telegram adapter places campaign attempts"
    return adapter


@pytest.fixture
async def bot(app: dict[str, Any], emulator: BotApiEmulator) -> dict[str, Any]:
    token = emulator.add_bot()
    resp = await create_bot(app, token, queue_message="")
    assert resp.status_code == 201, resp.text
    return {"token": token, "inbox_id": resp.json()["inbox_id"]}


def new_phone() -> str:
    return f"+7916{next(_phones):07d}"


async def seed_talked(app: dict[str, Any], inbox_id: int, n: int) -> list[tuple[int, str]]:
    """``n`` customers who once wrote to the bot (a Telegram identity, a phone, a closed
    conversation in its inbox), built from the models: (Telegram user id, phone)."""
    people = [(next(_users), new_phone()) for _ in range(n)]
    async with app["server"].services.db.transaction() as s:
        contacts = [
            m.Contact(name=f"C{uid}", phone=phone, custom_fields={}, tags=[]) for uid, phone in people
        ]
        s.add_all(contacts)
        await s.flush()
        s.add_all(
            m.ContactIdentity(contact_id=c.id, kind="telegram", value=str(uid))
            for c, (uid, _) in zip(contacts, people, strict=True)
        )
        now = datetime.now(UTC) - timedelta(days=3)
        s.add_all(
            m.Conversation(
                contact_id=c.id,
                inbox_id=inbox_id,
                queue_id=app["queue_id"],
                channel="telegram",
                status=m.ConversationStatus.CLOSED,
                variables={"telegram_chat_id": uid},
                extra_queue_ids=[],
                created_at=now,
                closed_at=now,
                closed_by="customer",
            )
            for c, (uid, _) in zip(contacts, people, strict=True)
        )
    return people


async def make_campaign(
    app: dict[str, Any],
    inbox_id: int,
    targets: list[dict[str, Any]],
    *,
    template: str = "Hello, {name}!",
    escalation: dict[str, Any] | None = None,
) -> tuple[int, int, list[int]]:
    """A running Telegram campaign with its own queue and targets: (campaign, queue, targets)."""
    async with app["server"].services.db.transaction() as s:
        queue = await f.queue(s, f"campaign q {next(_names)}")
        campaign = m.Campaign(
            name=f"Broadcast {next(_names)}",
            state=CampaignState.RUNNING,
            channel=CampaignChannel.TELEGRAM,
            queue_id=queue.id,
            inbox_id=inbox_id,
            message_template=template,
            escalation=escalation,
            max_attempts=3,
        )
        s.add(campaign)
        await s.flush()
        rows = [m.CampaignTarget(campaign_id=campaign.id, phones=[t["phone"]], **t) for t in targets]
        s.add_all(rows)
        await s.flush()
        return campaign.id, queue.id, [r.id for r in rows]


async def voice_campaign(app: dict[str, Any]) -> int:
    async with app["server"].services.db.transaction() as s:
        queue = await f.queue(s, f"voice q {next(_names)}")
        voice = m.Campaign(name=f"Calls {next(_names)}", channel=CampaignChannel.VOICE, queue_id=queue.id)
        s.add(voice)
        await s.flush()
        return voice.id


async def place_all(app: dict[str, Any], target_ids: list[int], inbox_id: int) -> list[int]:
    """Open one attempt per target (as the scheduler does) and hand each order to the adapter."""
    orders: list[AttemptOrder] = []
    async with app["server"].services.db.transaction() as s:
        for target_id in target_ids:
            target = await s.get_one(m.CampaignTarget, target_id)
            attempt = await do_open_attempt(s, target)
            orders.append(
                AttemptOrder(
                    attempt_id=attempt.id,
                    campaign_id=target.campaign_id,
                    target_id=target.id,
                    channel="telegram",
                    dial_mode="progressive",
                    phone=target.phone,
                    caller_id="",
                    inbox_id=inbox_id,
                    queue_id=0,
                    operator_id=None,
                )
            )
    channel = channel_of(app)
    gate = asyncio.Semaphore(8)

    async def place(order: AttemptOrder) -> None:
        async with gate:
            await channel.place(order)

    await asyncio.gather(*(place(o) for o in orders))
    return [o.attempt_id for o in orders]


async def ended(app: dict[str, Any], campaign_id: int) -> int:
    async with app["server"].services.db.transaction() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(m.CampaignAttempt)
                .where(m.CampaignAttempt.campaign_id == campaign_id, m.CampaignAttempt.ended_at.is_not(None))
            )
            or 0
        )


async def attempts_of(app: dict[str, Any], campaign_id: int) -> list[m.CampaignAttempt]:
    async with app["server"].services.db.transaction() as s:
        rows = await s.scalars(
            select(m.CampaignAttempt)
            .where(m.CampaignAttempt.campaign_id == campaign_id)
            .order_by(m.CampaignAttempt.id)
        )
        return list(rows)


# --- the template (pure) --------------------------------------------------------------------


def test_template_variables_are_checked_when_the_campaign_is_saved() -> None:
    assert broadcast.check_template("Hi {name}, you owe {debt} ₽ ({{not a variable}})", ["debt"])
    with pytest.raises(InvalidInput) as unknown:
        broadcast.check_template("Hi {name}, you owe {debtt}", ["debt"])
    assert unknown.value.field == "message_template" and "'debtt'" in unknown.value.message
    assert "debt, name, phone" in unknown.value.message
    for bad in ("Hi {name", "Hi name}", "Hi { }", "   ", "x" * 100_000):
        with pytest.raises(InvalidInput):
            broadcast.check_template(bad, ["debt"])


def test_customer_data_is_filled_in_as_plain_text() -> None:
    target = m.CampaignTarget(
        name="<b>Anna</b> *bold* {debt}", phone="+79161234567", fields={"debt": "1 500", "due": None}
    )
    text = broadcast.render_message("Hi {name}: {debt} by {due} {{ok}} {phone}", target)
    assert text == "Hi <b>Anna</b> *bold* {debt}: 1 500 by  {ok} +79161234567"


# --- end to end -----------------------------------------------------------------------------


# Telegram's 30 messages/s make 1,000 sends take 33 s at best; on a loaded machine the paced
# sender's work stretches that. The test waits for the 1,000 marks up to 600 s (its ``until``),
# so the per-test hang guard must not cut it at the suite's default 180 s.
@pytest.mark.timeout(660)
async def test_broadcast_to_1000_contacts_sends_every_message_with_no_429(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any]
) -> None:
    people = await seed_talked(app, bot["inbox_id"], 1000)
    campaign_id, _, target_ids = await make_campaign(
        app,
        bot["inbox_id"],
        [{"phone": phone, "name": f"Client {uid}", "fields": {"debt": uid % 1000}} for uid, phone in people],
        template="Dear {name}, your balance is {debt}.",
    )
    await place_all(app, target_ids, bot["inbox_id"])
    await until(lambda: _at_least(ended(app, campaign_id), 1000), timeout=600, what="1,000 sent marks")
    attempts = await attempts_of(app, campaign_id)
    assert [a.outcome for a in attempts] == [Outcome.SENT] * 1000
    sends = emulator.of("sendMessage")
    assert emulator.refused_429 == 0 and len(sends) == 1000 and all(c.status == 200 for c in sends)
    assert {int(c.params["chat_id"]) for c in sends} == {uid for uid, _ in people}
    first = next(c for c in sends if int(c.params["chat_id"]) == people[0][0])
    assert first.params["text"] == f"Dear Client {people[0][0]}, your balance is {people[0][0] % 1000}."
    async with app["server"].services.db.transaction() as s:
        done = await s.scalar(
            select(func.count())
            .select_from(m.CampaignTarget)
            .where(m.CampaignTarget.campaign_id == campaign_id, m.CampaignTarget.state == TargetState.DONE)
        )
        stored = await s.scalar(
            select(func.count())
            .select_from(m.Message)
            .join(m.CampaignAttempt, m.CampaignAttempt.conversation_id == m.Message.conversation_id)
            .where(
                m.CampaignAttempt.campaign_id == campaign_id,
                m.Message.direction == "out",
                m.Message.delivery == "sent",
            )
        )
    assert done == 1000 and stored == 1000
    span = sends[-1].at - sends[0].at
    log.info("broadcast of 1,000: %.1f s from first to last send, %d × 429", span, emulator.refused_429)


async def _at_least(value: Any, n: int) -> bool:
    return int(await value) >= n


async def test_blocked_and_never_seen_users_are_closed_with_the_cause(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any]
) -> None:
    (_ok_uid, ok_phone), (blocked_uid, blocked_phone) = await seed_talked(app, bot["inbox_id"], 2)
    stranger = new_phone()
    emulator.blocked.add(blocked_uid)
    campaign_id, _, target_ids = await make_campaign(
        app,
        bot["inbox_id"],
        [{"phone": p, "name": n} for p, n in ((ok_phone, "A"), (blocked_phone, "B"), (stranger, "C"))],
    )
    await place_all(app, target_ids, bot["inbox_id"])
    await until(lambda: _at_least(ended(app, campaign_id), 3), what="three attempts ended")
    by_target = {a.target_id: a for a in await attempts_of(app, campaign_id)}
    ok, blocked, never = (by_target[t] for t in target_ids)
    assert (ok.outcome, ok.cause) == (Outcome.SENT, "")
    assert (blocked.outcome, blocked.cause) == (Outcome.SEND_FAILED, "Forbidden: bot was blocked by the user")
    assert (never.outcome, never.cause) == (Outcome.REFUSED, broadcast.NOT_ON_TELEGRAM)
    async with app["server"].services.db.transaction() as s:
        states = [(await s.get_one(m.CampaignTarget, t)).state for t in target_ids]
        assert states == [TargetState.DONE, TargetState.FAILED, TargetState.FAILED]
        assert (await s.get_one(m.CampaignTarget, target_ids[2])).attempts == 0, "a refusal uses no attempt"
        failed = await s.scalar(
            select(m.Message).where(m.Message.id == int(blocked.external_id.split(":")[1]))
        )
        assert failed is not None and failed.delivery == "failed"
    assert [int(c.params["chat_id"]) for c in emulator.of("sendMessage")].count(blocked_uid) == 1


async def test_template_values_reach_telegram_as_plain_text(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any]
) -> None:
    ((uid, _),) = await seed_talked(app, bot["inbox_id"], 1)
    async with app["server"].services.db.transaction() as s:
        contact_id = await s.scalar(
            select(m.ContactIdentity.contact_id).where(m.ContactIdentity.value == str(uid))
        )
    phone = new_phone()  # a number the contact doesn't have: reached as the list's linked contact
    campaign_id, _, target_ids = await make_campaign(
        app,
        bot["inbox_id"],
        [
            {
                "phone": phone,
                "name": "<b>Анна</b> _x_",
                "fields": {"contract": "A-1 [link](http://x)"},
                "contact_id": contact_id,
            }
        ],
        template="Здравствуйте, {name}! Договор {contract}, номер {phone}.",
    )
    await place_all(app, target_ids, bot["inbox_id"])
    await until(lambda: _at_least(ended(app, campaign_id), 1), what="the attempt ended")
    (call,) = emulator.sent(uid)
    assert (
        call.params["text"] == f"Здравствуйте, <b>Анна</b> _x_! Договор A-1 [link](http://x), номер {phone}."
    )
    assert "parse_mode" not in call.params and "entities" not in call.params


async def test_a_reply_lands_in_the_campaign_queue_linked_to_the_campaign(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any]
) -> None:
    # A real customer: wrote to the bot, shared their own number (phone identity), left.
    uid = next(_users)
    phone = new_phone()
    customer = {"id": uid, "first_name": "Olga"}
    status = await emulator.deliver(
        bot["token"],
        emulator.update(
            message=emulator.message(
                customer, contact={"phone_number": phone, "first_name": "Olga", "user_id": uid}
            )
        ),
    )
    assert status == 200
    async with app["server"].services.db.transaction() as s:
        first = await s.scalar(select(m.Conversation).where(m.Conversation.inbox_id == bot["inbox_id"]))
        assert first is not None
        first.status = m.ConversationStatus.CLOSED
        first.closed_at = datetime.now(UTC) - timedelta(days=2)
        first.closed_by = "operator"
    campaign_id, queue_id, (target_id,) = await make_campaign(
        app, bot["inbox_id"], [{"phone": phone, "name": "Olga"}], template="Your order is ready, {name}."
    )
    (attempt_id,) = await place_all(app, [target_id], bot["inbox_id"])
    await until(lambda: _at_least(ended(app, campaign_id), 1), what="the message sent")
    await emulator.deliver(
        bot["token"], emulator.update(message=emulator.message(customer, text="Thanks! When?"))
    )
    async with app["server"].services.db.transaction() as s:
        attempt = await s.get_one(m.CampaignAttempt, attempt_id)
        conv = await s.get_one(m.Conversation, attempt.conversation_id)
        assert conv.status in (m.ConversationStatus.QUEUED, m.ConversationStatus.OFFERED)
        assert conv.queue_id == queue_id, "replies go to the campaign's queue"
        assert conv.variables["campaign_id"] == campaign_id and conv.variables["target_id"] == target_id
        assert conv.variables["attempt_id"] == attempt_id and conv.variables["name"] == "Olga"
        history = [
            (msg.direction, msg.body)
            for msg in await s.scalars(
                select(m.Message).where(m.Message.conversation_id == conv.id).order_by(m.Message.id)
            )
        ]
        assert history == [("out", "Your order is ready, Olga."), ("in", "Thanks! When?")]
        target = await s.get_one(m.CampaignTarget, target_id)
        assert target.state == TargetState.DONE and target.contact_id == conv.contact_id


async def test_no_reply_in_time_places_exactly_one_voice_target(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any]
) -> None:
    voice_id = await voice_campaign(app)
    (_silent_uid, silent_phone), (chatty_uid, chatty_phone) = await seed_talked(app, bot["inbox_id"], 2)
    campaign_id, _, target_ids = await make_campaign(
        app,
        bot["inbox_id"],
        [
            {
                "phone": silent_phone,
                "name": "Silent",
                "fields": {"debt": 100},
                "timezone": "Asia/Vladivostok",
            },
            {"phone": chatty_phone, "name": "Chatty", "fields": {"debt": 200}},
        ],
        escalation={"unanswered_minutes": 30, "campaign_id": voice_id},
    )
    await place_all(app, target_ids, bot["inbox_id"])
    await until(lambda: _at_least(ended(app, campaign_id), 2), what="both messages sent")
    await emulator.deliver(
        bot["token"],
        emulator.update(message=emulator.message({"id": chatty_uid, "first_name": "C"}, text="ok")),
    )
    sent_at = max(a.ended_at for a in await attempts_of(app, campaign_id) if a.ended_at)
    db = app["server"].services.db

    async def voice_targets() -> list[m.CampaignTarget]:
        async with db.transaction() as s:
            return list(
                await s.scalars(select(m.CampaignTarget).where(m.CampaignTarget.campaign_id == voice_id))
            )

    await run_due_deadlines(db, now=sent_at + timedelta(minutes=29))
    assert await voice_targets() == []
    await run_due_deadlines(db, now=sent_at + timedelta(minutes=31))
    await run_due_deadlines(db, now=sent_at + timedelta(minutes=90))
    (escalated,) = await voice_targets()
    assert (escalated.phone, escalated.name, escalated.fields, escalated.timezone) == (
        silent_phone,
        "Silent",
        {"debt": 100},
        "Asia/Vladivostok",
    )
    assert escalated.state == TargetState.PENDING and escalated.next_due_at is not None
    assert escalated.next_due_at <= sent_at + timedelta(minutes=31)
    async with db.transaction() as s:
        left = await s.scalar(
            select(func.count())
            .select_from(m.Deadline)
            .where(m.Deadline.kind == broadcast.ESCALATION, m.Deadline.done.is_(False))
            .where(m.Deadline.ref_id.in_([a.id for a in await attempts_of(app, campaign_id)]))
        )
    assert left == 0


async def test_an_escalation_rule_is_checked_when_the_campaign_is_saved(
    app: dict[str, Any], bot: dict[str, Any]
) -> None:
    voice_id = await voice_campaign(app)
    telegram_id, _, _ = await make_campaign(app, bot["inbox_id"], [])
    async with app["server"].services.db.transaction() as s:
        rule = {"unread_minutes": 45, "campaign_id": voice_id}
        assert await broadcast.check_escalation(s, rule) == {
            "unanswered_minutes": 45,
            "campaign_id": voice_id,
        }
        assert await broadcast.check_escalation(s, None) is None
        bad = [
            {"unanswered_minutes": 0, "campaign_id": voice_id},
            {"unanswered_minutes": "30", "campaign_id": voice_id},
            {"unanswered_minutes": 30, "campaign_id": telegram_id},
            {"unanswered_minutes": 30, "campaign_id": 10**9},
            {"unanswered_minutes": 30},
        ]
        for raw in bad:
            with pytest.raises(InvalidInput) as refused:
                await broadcast.check_escalation(s, raw, campaign_id=telegram_id)
            assert refused.value.field == "escalation"


async def test_the_emulator_refuses_like_telegram_past_1_per_chat_and_30_per_bot_a_second(
    emulator: BotApiEmulator,
) -> None:
    """What makes "0 × 429" above mean something: unpaced, aiogram's own session gets 429
    with ``retry_after`` for a second message to a chat and for a 31st message of a bot within
    a second."""
    bot = make_bot(emulator.add_bot(), emulator.url)
    try:
        await bot.send_message(5001, "one")
        with pytest.raises(TelegramRetryAfter) as per_chat:
            await bot.send_message(5001, "two")
        assert per_chat.value.retry_after >= 1
        results = await asyncio.gather(
            *(bot.send_message(6000 + i, "burst") for i in range(40)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, TelegramRetryAfter)]
        assert len(results) - len(refused) <= 30 and refused
    finally:
        await bot.session.close()


async def test_a_disabled_bot_is_not_ready_and_the_attempt_is_left_to_the_engine(
    app: dict[str, Any], emulator: BotApiEmulator
) -> None:
    async with app["server"].services.db.transaction() as s:
        queue = await s.get_one(m.Queue, app["queue_id"])
        disabled = await f.inbox(s, queue, "telegram", name=f"off {next(_names)}", active=False)
        inbox_id = disabled.id
    campaign_id, _, target_ids = await make_campaign(app, inbox_id, [{"phone": new_phone(), "name": "X"}])
    with pytest.raises(ChannelNotReady):
        await place_all(app, target_ids, inbox_id)
    (attempt,) = await attempts_of(app, campaign_id)
    assert attempt.ended_at is None and attempt.started_at is None, "nothing stored: the engine decides"
    assert emulator.of("sendMessage") == []


async def test_a_reply_after_the_reopen_window_starts_a_conversation_linked_to_the_campaign(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any]
) -> None:
    ((uid, phone),) = await seed_talked(app, bot["inbox_id"], 1)
    campaign_id, queue_id, (target_id,) = await make_campaign(app, bot["inbox_id"], [{"phone": phone}])
    (attempt_id,) = await place_all(app, [target_id], bot["inbox_id"])
    await until(lambda: _at_least(ended(app, campaign_id), 1), what="the message sent")
    async with app["server"].services.db.transaction() as s:
        sent = await s.get_one(m.CampaignAttempt, attempt_id)
        old = await s.get_one(m.Conversation, sent.conversation_id)
        old.closed_at = datetime.now(UTC) - timedelta(days=2)  # past the 24 h reopen window
        old_id = old.id
    await emulator.deliver(
        bot["token"], emulator.update(message=emulator.message({"id": uid, "first_name": "P"}, text="hi"))
    )
    async with app["server"].services.db.transaction() as s:
        conv = await s.scalar(
            select(m.Conversation)
            .where(m.Conversation.inbox_id == bot["inbox_id"], m.Conversation.contact_id == old.contact_id)
            .order_by(m.Conversation.id.desc())
            .limit(1)
        )
        assert conv is not None and conv.id != old_id
        assert (conv.variables["campaign_id"], conv.variables["target_id"]) == (campaign_id, target_id)
        assert conv.queue_id != queue_id, "a new conversation queues as the bot's inbox says"


async def test_a_message_lost_with_its_node_puts_the_target_back_after_the_guard(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any]
) -> None:
    """The sender's queue is in memory: a node dying before the message left must not leave
    the target in progress for ever."""
    ((_, phone),) = await seed_talked(app, bot["inbox_id"], 1)
    _, _, (target_id,) = await make_campaign(app, bot["inbox_id"], [{"phone": phone}])
    runtime = channel_of(app).bots[bot["inbox_id"]]
    await runtime.sender.stop()  # the node "dies" with whatever it queued
    (attempt_id,) = await place_all(app, [target_id], bot["inbox_id"])
    await until(lambda: runtime.sender.backlog == 1, what="the message queued in the dead sender")
    db = app["server"].services.db
    async with db.transaction() as s:
        placed = await s.get_one(m.CampaignAttempt, attempt_id)
        placed_at = placed.started_at
    assert placed_at is not None
    await run_due_deadlines(db, now=placed_at + timedelta(minutes=14))
    async with db.transaction() as s:
        assert (await s.get_one(m.CampaignAttempt, attempt_id)).ended_at is None
    guard_at = placed_at + timedelta(minutes=broadcast.SEND_GUARD_MINUTES)
    await run_due_deadlines(db, now=guard_at)
    async with db.transaction() as s:
        attempt = await s.get_one(m.CampaignAttempt, attempt_id)
        target = await s.get_one(m.CampaignTarget, target_id)
        message = await s.get_one(m.Message, int(attempt.external_id.split(":")[1]))
        assert (attempt.outcome, attempt.cause) == (Outcome.REFUSED, broadcast.LOST_SEND)
        assert (target.state, target.attempts, target.next_due_at) == (TargetState.PENDING, 0, guard_at)
        assert message.delivery == "failed"
    assert emulator.of("sendMessage") == []
