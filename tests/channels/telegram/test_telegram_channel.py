"""The Telegram channel end to end: aiogram's own HTTP session (``AiohttpSession`` with a custom
``TelegramAPIServer``) against the loopback Bot API emulator, the real app under uvicorn,
operators over Socket.IO.
"""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
from sqlalchemy import func, select

from channels.telegram import TelegramChannel
from omni.db import models as m
from omni.domain import automated, place
from omni.domain.reports.chats import csat_of
from tests import factories as f
from tests.channels.telegram.emulator import BotApiEmulator
from tests.conftest import (
    LiveServer,
    _asyncpg_url,
    create_test_database,
    drop_test_database,
    free_port,
    make_settings,
)
from tests.helpers import HTTP_TIMEOUT, until
from tests.test_realtime import OperatorClient, token_for

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


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


@pytest.fixture(scope="module")
async def app(
    pg_template: str, emulator: BotApiEmulator, tmp_path_factory: Any
) -> AsyncIterator[dict[str, Any]]:
    """One app and database for the module (startup is most of a test's cost); every test
    uses its own bot (inbox) and customer, so tests don't see each other's data."""
    name = await create_test_database(pg_template)
    settings = make_settings(_asyncpg_url(name), data_dir=tmp_path_factory.mktemp("telegram"))
    tg = settings.telegram
    tg.api_base_url = emulator.url
    tg.poll_timeout_seconds = 1
    tg.poll_backoff_seconds = 0.1
    tg.poll_backoff_max_seconds = 0.4
    tg.retry_backoff_seconds = 0.1
    server = LiveServer(settings)
    tg.webhook_base_url = server.url
    await server.start()
    try:
        async with server.services.db.transaction() as s:
            await f.user(s, "admin", m.Role.ADMIN)
            await f.user(s, "op")
            q = await f.queue(s, "telegram")  # nobody serves it: conversations just wait
            queue_id = q.id
        yield {
            "server": server,
            "queue_id": queue_id,
            "admin": await token_for(server, "admin"),
            "op": await token_for(server, "op"),
        }
    finally:
        await server.stop()
        await drop_test_database(name)


_ids = itertools.count(424_000)


@pytest.fixture
def customer() -> dict[str, Any]:
    uid = next(_ids)
    return {"id": uid, "first_name": "Anna", "last_name": "K", "username": f"anna_{uid}"}


async def create_bot(
    app: dict[str, Any], token: str, mode: str = "webhook", queue_id: int | None = None, **extra: Any
) -> httpx.Response:
    server: LiveServer = app["server"]
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {app['admin']}"}, timeout=HTTP_TIMEOUT
    ) as c:
        return await c.post(
            "/api/v1/telegram/bots",
            json={
                "name": f"bot-{token.split(':')[0]}",
                "token": token,
                "queue_id": queue_id or app["queue_id"],
                "mode": mode,
                **extra,
            },
        )


@pytest.fixture
async def bot(app: dict[str, Any], emulator: BotApiEmulator) -> dict[str, Any]:
    token = emulator.add_bot()
    resp = await create_bot(app, token, queue_message="")
    assert resp.status_code == 201, resp.text
    return {"token": token, "inbox_id": resp.json()["inbox_id"], "body": resp.json()}


def channel_of(app: dict[str, Any]) -> TelegramChannel:
    adapter = app["server"].services.adapters.get("telegram")
    assert isinstance(adapter, TelegramChannel)
    return adapter


async def count(app: dict[str, Any], model: Any, *where: Any) -> int:
    async with app["server"].services.db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def conversation_of(app: dict[str, Any], inbox_id: int) -> m.Conversation:
    async with app["server"].services.db.transaction() as s:
        conv = await s.scalar(select(m.Conversation).where(m.Conversation.inbox_id == inbox_id))
        assert conv is not None
        return conv


async def say(
    app: dict[str, Any], conv_id: int, body: str, buttons: list[dict[str, str]] | None = None
) -> int:
    """A bot prompt / notice, stored and delivered like an operator reply."""
    async with app["server"].services.db.transaction() as s:
        msg = await automated.do_send_automated(s, conv_id, body, buttons=buttons)
        return msg.id


async def delivery(app: dict[str, Any], message_id: int) -> str:
    async with app["server"].services.db.transaction() as s:
        return (await s.get_one(m.Message, message_id)).delivery


# --- tests ----------------------------------------------------------------------------------


async def test_inbound_text_to_operator_reply_round_trip(
    app: dict[str, Any], emulator: BotApiEmulator, customer: dict[str, Any]
) -> None:
    async with app["server"].services.db.transaction() as s:
        op_user = await s.scalar(select(m.User).where(m.User.username == "op"))
        assert op_user is not None
        served = await f.queue(s, "served", [op_user], operator_timeout_seconds=60)
        served_id = served.id
    token = emulator.add_bot()
    created = await create_bot(app, token, queue_id=served_id, csat=None)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["bot_username"] == "omni_test_bot" and body["running"] and body["webhook_error"] is None
    bot = emulator.bots[token]
    assert (
        bot.webhook_url
        == f"{app['server'].url}/api/v1/telegram/webhook/{body['webhook_url'].rsplit('/', 1)[1]}"
    )
    assert bot.webhook_secret, "setWebhook got a secret_token"
    async with app["server"].services.db.transaction() as s:
        inbox = await s.get_one(m.Inbox, body["inbox_id"])
        assert (
            inbox.secret_encrypted and token not in inbox.secret_encrypted and token not in str(inbox.config)
        )

    op = OperatorClient(app["server"].url, app["op"])
    await op.connect()
    status = await emulator.deliver(
        token, emulator.update(message=emulator.message(customer, text="Hello, I need help"))
    )
    assert status == 200
    created_event = await op.wait_for("message.created", body="Hello, I need help")
    conv_id = created_event["data"]["conversation_id"]
    # the customer is told their place in line (default text)
    await until(lambda: emulator.sent(customer["id"]))
    assert "number 1 in line" in emulator.sent(customer["id"])[0].params["text"]

    offer = await op.wait_for("conversation.offered", id=conv_id)
    assert (await op.call("accept", {"offer_id": offer["data"]["offer_id"]}))["ok"]
    ack = await op.call("send", {"conversation_id": conv_id, "body": "Hi Anna, how can I help?"})
    assert ack["ok"], ack
    await until(
        lambda: [c for c in emulator.sent(customer["id"]) if c.params["text"] == "Hi Anna, how can I help?"]
    )
    mark = await op.wait_for("message.delivery", delivery="sent")
    assert mark["conversation_id"] == conv_id
    assert emulator.refused_429 == 0
    await op.sio.disconnect()


async def test_wrong_token_is_refused_naming_it(
    app: dict[str, Any], emulator: BotApiEmulator, customer: dict[str, Any]
) -> None:
    resp = await create_bot(app, "123456:not-a-token-telegram-knows-about-xyz")
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == "token" and "token" in resp.json()["detail"]
    malformed = await create_bot(app, "nonsense")
    assert malformed.status_code == 400 and malformed.json()["field"] == "token"
    async with httpx.AsyncClient(
        base_url=app["server"].url, headers={"Authorization": f"Bearer {app['op']}"}, timeout=HTTP_TIMEOUT
    ) as c:
        denied = await c.post(
            "/api/v1/telegram/bots",
            json={"name": "x", "token": emulator.add_bot(), "queue_id": app["queue_id"]},
        )
    assert denied.status_code == 403
    assert await count(app, m.Inbox, m.Inbox.name.in_(["x", "bot-123456", "bot-nonsense"])) == 0


async def test_webhook_without_or_with_wrong_secret_is_refused(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    url = emulator.bots[bot["token"]].webhook_url
    update = emulator.update(message=emulator.message(customer, text="sneaky"))
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as c:
        missing = await c.post(url, json=update)
        wrong = await c.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "0" * 64})
    assert missing.status_code == 401 and wrong.status_code == 403
    mine = m.Message.inbox_id == bot["inbox_id"]
    assert await count(app, m.Message, mine) == 0
    assert await emulator.deliver(bot["token"], update) == 200
    assert await count(app, m.Message, mine) == 1


async def test_redelivered_update_is_stored_once(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    update = emulator.update(message=emulator.message(customer, text="once"))
    results = await asyncio.gather(*(emulator.deliver(bot["token"], update) for _ in range(3)))
    assert results == [200, 200, 200]
    assert await emulator.deliver(bot["token"], update) == 200
    assert await count(app, m.Message, m.Message.inbox_id == bot["inbox_id"]) == 1
    assert await count(app, m.Conversation, m.Conversation.inbox_id == bot["inbox_id"]) == 1


async def test_redelivered_media_update_is_stored_once_and_downloaded_once(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    """Text skips the separate "already stored?" transaction (the storing one dedupes it);
    media keeps it, so Telegram re-delivering a photo does not fetch the file again."""
    photo_id = emulator.add_file(JPEG, "again.jpg")
    photo = [{"file_id": photo_id, "file_unique_id": "ag1", "width": 8, "height": 8, "file_size": len(JPEG)}]
    update = emulator.update(message=emulator.message(customer, photo=photo))
    assert await emulator.deliver(bot["token"], update) == 200
    assert await emulator.deliver(bot["token"], update) == 200
    assert await count(app, m.Message, m.Message.inbox_id == bot["inbox_id"]) == 1
    assert await count(app, m.StoredFile, m.StoredFile.inbox_id == bot["inbox_id"]) == 1
    assert [c.method for c in emulator.calls].count("getfile") == 1


async def test_429_retry_after_is_honoured_and_the_message_arrives(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    await emulator.deliver(bot["token"], emulator.update(message=emulator.message(customer, text="hi")))
    conv = await conversation_of(app, bot["inbox_id"])
    emulator.inject("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    msg_id = await say(app, conv.id, "after the flood")
    await until(lambda: emulator.sent(customer["id"]))
    refused, accepted = emulator.of("sendMessage")[0], emulator.sent(customer["id"])[0]
    assert refused.status == 429 and accepted.params["text"] == "after the flood"
    assert accepted.at - refused.at >= 1.0, "the retry waited retry_after"
    await until(lambda: _is(delivery(app, msg_id), "sent"))


async def _is(value: Awaitable[str], expected: str) -> bool:
    return await value == expected


async def test_network_errors_are_retried(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    await emulator.deliver(bot["token"], emulator.update(message=emulator.message(customer, text="hi")))
    conv = await conversation_of(app, bot["inbox_id"])
    emulator.inject("sendMessage", 502, "Bad Gateway")
    emulator.inject("sendMessage", 500, "Internal Server Error")
    msg_id = await say(app, conv.id, "eventually")
    await until(lambda: _is(delivery(app, msg_id), "sent"))
    assert [c.status for c in emulator.of("sendMessage")] == [502, 500, 200]


async def test_blocked_user_marks_the_message_failed(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    await emulator.deliver(bot["token"], emulator.update(message=emulator.message(customer, text="hi")))
    conv = await conversation_of(app, bot["inbox_id"])
    emulator.blocked.add(customer["id"])
    msg_id = await say(app, conv.id, "are you there?")
    await until(lambda: _is(delivery(app, msg_id), "failed"))
    async with app["server"].services.db.transaction() as s:
        event = await s.scalar(
            select(m.Event).where(m.Event.type == "message.delivery", m.Event.conversation_id == conv.id)
        )
        assert event is not None and event.payload["message_id"] == msg_id
        assert "blocked" in event.payload["error"]
    assert len(emulator.of("sendMessage")) == 1, "a permanent refusal is not retried"


async def test_contact_sharing_merges_identities(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    services = app["server"].services
    async with services.db.transaction() as s:
        caller = m.Contact(name="Anna (caller)", phone="+79161234567", custom_fields={}, tags=[])
        s.add(caller)
        await s.flush()
        s.add(m.ContactIdentity(contact_id=caller.id, kind="phone", value="+79161234567"))
        ib = await f.inbox(s, await s.get_one(m.Queue, app["queue_id"]), channel="api", name="phone-line")
        s.add(
            m.Conversation(
                contact_id=caller.id,
                inbox_id=ib.id,
                channel="api",
                status="closed",
                extra_queue_ids=[],
                variables={},
            )
        )
        caller_id = caller.id
    await emulator.deliver(bot["token"], emulator.update(message=emulator.message(customer, text="hi")))
    shared = {"phone_number": "79161234567", "first_name": "Anna", "user_id": customer["id"]}
    assert (
        await emulator.deliver(
            bot["token"], emulator.update(message=emulator.message(customer, contact=shared))
        )
        == 200
    )
    async with services.db.transaction() as s:
        identity = await s.scalar(
            select(m.ContactIdentity).where(
                m.ContactIdentity.kind == "telegram", m.ContactIdentity.value == str(customer["id"])
            )
        )
        assert identity is not None and identity.contact_id == caller_id
        tg_conv = await s.scalar(select(m.Conversation).where(m.Conversation.inbox_id == bot["inbox_id"]))
        assert tg_conv is not None and tg_conv.contact_id == caller_id, "both histories belong to one contact"
        assert (
            await s.scalar(
                select(func.count()).select_from(m.Conversation).where(m.Conversation.contact_id == caller_id)
            )
            == 2
        )
        shared_msg = await s.scalar(
            select(m.Message).where(m.Message.inbox_id == bot["inbox_id"], m.Message.body.like("Contact:%"))
        )
        assert shared_msg is not None and shared_msg.attachments[0]["phone"] == "79161234567"


async def test_someone_elses_contact_card_does_not_merge(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    async with app["server"].services.db.transaction() as s:
        boris = m.Contact(name="Boris", phone="+79990001122", custom_fields={}, tags=[])
        s.add(boris)
        await s.flush()
        boris_id = boris.id
    card = {"phone_number": "+79990001122", "first_name": "Boris", "user_id": 999}
    await emulator.deliver(bot["token"], emulator.update(message=emulator.message(customer, contact=card)))
    conv = await conversation_of(app, bot["inbox_id"])
    assert conv.contact_id != boris_id
    assert await count(app, m.Contact, m.Contact.id == boris_id) == 1


async def test_edited_message_updates_the_stored_one_and_tells_the_operator(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    original = emulator.message(customer, text="my order is 1234")
    await emulator.deliver(bot["token"], emulator.update(message=original))
    edited = {**original, "text": "my order is 12345", "edit_date": original["date"] + 5}
    assert await emulator.deliver(bot["token"], emulator.update(edited_message=edited)) == 200
    async with app["server"].services.db.transaction() as s:
        bodies = (await s.scalars(select(m.Message.body).where(m.Message.inbox_id == bot["inbox_id"]))).all()
        assert bodies == ["my order is 12345"]
        event = await s.scalar(
            select(m.Event).where(
                m.Event.type == "message.edited",
                m.Event.conversation_id == (await conversation_of(app, bot["inbox_id"])).id,
            )
        )
        assert event is not None and event.payload["previous_body"] == "my order is 1234"


async def test_media_is_downloaded_and_stored_with_the_message(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    photo_id = emulator.add_file(JPEG, "photo.jpg")
    voice_id = emulator.add_file(b"OggS voice", "voice.oga")
    photo = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 10},
        {"file_id": photo_id, "file_unique_id": "ph1", "width": 800, "height": 600, "file_size": len(JPEG)},
    ]
    updates = [
        emulator.update(message=emulator.message(customer, photo=photo, caption="the receipt")),
        emulator.update(
            message=emulator.message(
                customer,
                voice={"file_id": voice_id, "file_unique_id": "v1", "duration": 2, "mime_type": "audio/ogg"},
            )
        ),
        emulator.update(
            message=emulator.message(
                customer,
                sticker={
                    "file_id": "st",
                    "file_unique_id": "st",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                    "emoji": "👍",
                },
            )
        ),
        emulator.update(message=emulator.message(customer, location={"latitude": 55.75, "longitude": 37.62})),
    ]
    for update in updates:
        assert await emulator.deliver(bot["token"], update) == 200
    async with app["server"].services.db.transaction() as s:
        rows = (
            await s.scalars(
                select(m.Message).where(m.Message.inbox_id == bot["inbox_id"]).order_by(m.Message.id)
            )
        ).all()
        photo_msg, voice_msg, sticker_msg, location_msg = rows
        assert photo_msg.body == "the receipt" and photo_msg.attachments[0]["type"] == "image/jpeg"
        stored = await s.get_one(m.StoredFile, photo_msg.attachments[0]["id"])
        assert stored.conversation_id == photo_msg.conversation_id and stored.size == len(JPEG)
        assert voice_msg.attachments[0]["type"] == "audio/ogg"
        assert sticker_msg.body == "[sticker 👍]" and sticker_msg.attachments[0]["kind"] == "sticker"
        assert location_msg.attachments[0]["kind"] == "location" and "55.75" in location_msg.body
    assert await asyncio.to_thread(Path(stored.path).read_bytes) == JPEG


async def test_buttons_become_an_inline_keyboard_and_presses_come_back(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    await emulator.deliver(bot["token"], emulator.update(message=emulator.message(customer, text="hi")))
    conv = await conversation_of(app, bot["inbox_id"])
    await say(
        app,
        conv.id,
        "Choose",
        buttons=[{"id": "sales", "label": "Sales"}, {"id": "help", "label": "Support"}],
    )
    sent = (await until(lambda: emulator.sent(customer["id"])))[0]
    keyboard = sent.params["reply_markup"]["inline_keyboard"]
    assert [[b["callback_data"] for b in row] for row in keyboard] == [["sales"], ["help"]]
    prompt = {
        "message_id": 99,
        "from": emulator.bots[bot["token"]].user(),
        "chat": {"id": customer["id"], "type": "private", "first_name": "Anna"},
        "date": 1,
        "text": "Choose",
        "reply_markup": sent.params["reply_markup"],
    }
    press = {
        "id": "cq-1",
        "from": {"is_bot": False, **customer},
        "chat_instance": "ci",
        "message": prompt,
        "data": "help",
    }
    assert await emulator.deliver(bot["token"], emulator.update(callback_query=press)) == 200
    assert emulator.of("answerCallbackQuery")[0].params["callback_query_id"] == "cq-1"
    async with app["server"].services.db.transaction() as s:
        reply = await s.scalar(select(m.Message).where(m.Message.external_id == "cb:cq-1"))
        assert reply is not None and reply.body == "Support"
        assert reply.attachments == [{"kind": "button_reply", "id": "help"}]


async def test_closing_message_and_csat(
    app: dict[str, Any], emulator: BotApiEmulator, customer: dict[str, Any]
) -> None:
    token = emulator.add_bot()
    resp = await create_bot(
        app,
        token,
        queue_message="",
        closing_message="Thanks, bye!",
        csat={"question": "Rate us", "labels": ["😞", "😐", "🙂"]},
    )
    inbox_id = resp.json()["inbox_id"]
    await emulator.deliver(token, emulator.update(message=emulator.message(customer, text="hi")))
    conv = await conversation_of(app, inbox_id)
    async with app["server"].services.db.transaction() as s:
        from omni.domain.conversations import do_close

        c = await s.get_one(m.Conversation, conv.id)
        await do_close(s, c, None, by="operator")
    await until(lambda: len(emulator.sent(customer["id"])) >= 2, timeout=10)
    texts = [c.params["text"] for c in emulator.sent(customer["id"])]
    assert texts == ["Thanks, bye!", "Rate us"]
    rate = emulator.sent(customer["id"])[1]
    prompt = {
        "message_id": 7,
        "chat": {"id": customer["id"], "type": "private"},
        "date": 1,
        "text": "Rate us",
        "reply_markup": rate.params["reply_markup"],
    }
    press = {
        "id": "cq-r",
        "from": {"is_bot": False, **customer},
        "chat_instance": "ci",
        "message": prompt,
        "data": "csat:3",
    }
    assert await emulator.deliver(token, emulator.update(callback_query=press)) == 200
    async with app["server"].services.db.transaction() as s:
        closed = await s.get_one(m.Conversation, conv.id)
        assert closed.status == "closed" and closed.variables["csat"] == 3, "a rating does not reopen it"
        # Reports see the top of three labels as satisfied, as the widget's (``csat_scale``).
        assert csat_of(closed.variables) == 5, closed.variables


async def test_polling_mode_survives_the_api_restarting(
    app: dict[str, Any], emulator: BotApiEmulator, customer: dict[str, Any]
) -> None:
    token = emulator.add_bot("omni_polling_bot")
    resp = await create_bot(app, token, mode="polling", queue_message="")
    assert resp.status_code == 201, resp.text
    assert emulator.bots[token].webhook_url == ""
    runtime = channel_of(app).bots[resp.json()["inbox_id"]]
    emulator.push(token, emulator.update(message=emulator.message(customer, text="before")))
    mine = m.Message.inbox_id == resp.json()["inbox_id"]
    await until(lambda: count(app, m.Message, mine, m.Message.body == "before"))
    await emulator.stop()
    errors = runtime.poll_errors
    await until(lambda: runtime.poll_errors > errors)
    emulator.push(token, emulator.update(message=emulator.message(customer, text="after")))
    await emulator.start()
    await until(lambda: count(app, m.Message, mine, m.Message.body == "after"), timeout=15)
    assert await count(app, m.Message, mine) == 2, "nothing stored twice"


async def test_bot_edited_over_rest_restarts_in_its_new_mode_and_a_deleted_bot_stops(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any]
) -> None:
    """REST parity with the admin form: PATCH changes mode, texts and token checks; DELETE stops it."""
    server: LiveServer = app["server"]
    inbox_id = bot["inbox_id"]
    channel = channel_of(app)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {app['admin']}"}, timeout=HTTP_TIMEOUT
    ) as c:
        one_label = await c.patch(
            f"/api/v1/telegram/bots/{inbox_id}", json={"csat": {"question": "OK?", "labels": ["yes"]}}
        )
        assert one_label.status_code == 422 and one_label.json()["field"] == "csat", one_label.text
        other = emulator.add_bot("other_bot")
        assert (await create_bot(app, other)).status_code == 201
        clash = await c.patch(f"/api/v1/telegram/bots/{inbox_id}", json={"token": other})
        assert clash.status_code == 422 and clash.json()["field"] == "token", clash.text
        changed = await c.patch(
            f"/api/v1/telegram/bots/{inbox_id}",
            json={
                "mode": "polling",
                "closing_message": "Bye!",
                "csat": {"question": "OK?", "labels": ["no", "yes"]},
            },
        )
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert body["mode"] == "polling" and body["webhook_url"] is None
        assert body["config"] == {
            "queue_message": "",  # the fixture's: no place-in-line messages, kept
            "closing_message": "Bye!",
            "csat": {"question": "OK?", "labels": ["no", "yes"]},
        }
        assert channel.bots[inbox_id].mode == "polling"  # restarted at once on this node
        assert (await c.get(f"/api/v1/telegram/bots/{inbox_id}")).json() == {**body, "running": True}
        gone = await c.delete(f"/api/v1/telegram/bots/{inbox_id}")
        assert gone.status_code == 200, gone.text
        assert inbox_id not in channel.bots
        assert (await c.get(f"/api/v1/telegram/bots/{inbox_id}")).status_code == 404


async def test_callme_keeps_the_customers_place_as_a_callback(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    """ "/callme" from a waiting Telegram customer: the same conversation stays in line with its
    first place and becomes a call back to their number; without a number they are told why."""
    services = app["server"].services
    async with services.db.transaction() as s:
        q = await s.get_one(m.Queue, app["queue_id"])
        line = await f.inbox(s, q, channel="voice", name=f"line-{customer['id']}")
        line.config = {"caller_id": "+74950000000"}
    await emulator.deliver(bot["token"], emulator.update(message=emulator.message(customer, text="hi")))
    conv = await conversation_of(app, bot["inbox_id"])
    await emulator.deliver(bot["token"], emulator.update(message=emulator.message(customer, text="/callme")))

    def told(text: str) -> bool:
        return any(text in str(c.params.get("text", "")) for c in emulator.sent(customer["id"]))

    await until(lambda: told("a phone number to call back is required"))
    assert not place.is_callback((await conversation_of(app, bot["inbox_id"])).variables)
    await emulator.deliver(
        bot["token"], emulator.update(message=emulator.message(customer, text="/callme 8 916 765-43-21"))
    )
    await until(lambda: told("We will call you back at +79167654321"))
    after = await conversation_of(app, bot["inbox_id"])
    assert after.id == conv.id and after.medium == "voice" and place.is_callback(after.variables)
    assert after.first_enqueued_at == conv.first_enqueued_at and after.priority == conv.priority
    async with services.db.transaction() as s:
        (await s.get_one(m.Inbox, line.id)).active = False  # the next tests' queue has no voice line


async def test_transcript_command_sends_the_pdf_of_the_conversation(
    app: dict[str, Any], emulator: BotApiEmulator, bot: dict[str, Any], customer: dict[str, Any]
) -> None:
    """ "/transcript": the bot sends the conversation as a PDF document (Cyrillic readable, the
    private note left out), stored with the conversation as a bot message."""
    services = app["server"].services
    first = emulator.message(customer, text="Здравствуйте, пришлите копию переписки")
    await emulator.deliver(bot["token"], emulator.update(message=first))
    conv = await conversation_of(app, bot["inbox_id"])
    await say(app, conv.id, "Конечно, напишите /transcript")
    async with services.db.transaction() as s:
        s.add(m.Message(conversation_id=conv.id, direction="note", body="внутренняя заметка"))
    ask = emulator.message(customer, text="/transcript")
    await emulator.deliver(bot["token"], emulator.update(message=ask))
    await until(lambda: emulator.sent(customer["id"], "sendDocument"), what="the PDF document")
    [doc] = emulator.sent(customer["id"], "sendDocument")
    [data] = doc.files.values()  # aiogram names the part itself (attach://…)
    assert data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    assert "Здравствуйте, пришлите копию переписки" in text and "Конечно, напишите /transcript" in text
    assert "внутренняя" not in text
    async with services.db.transaction() as s:
        sent = await s.scalar(
            select(m.Message)
            .where(m.Message.conversation_id == conv.id, m.Message.direction == "out")
            .order_by(m.Message.id.desc())
            .limit(1)
        )
        assert sent is not None
        assert [a["name"] for a in sent.attachments] == [f"transcript-{conv.id}.pdf"]

    # Asked again once the conversation has closed: that conversation's PDF, and the command
    # neither reopens it nor starts a new one (it is a command, never the customer's text).
    async with services.db.transaction() as s:
        from omni.domain.conversations import do_close

        await do_close(s, await s.get_one(m.Conversation, conv.id), None, by="operator")
    again = emulator.update(message=emulator.message(customer, text="/transcript"))
    assert await emulator.deliver(bot["token"], again) == 200
    await until(lambda: len(emulator.sent(customer["id"], "sendDocument")) == 2, what="the second PDF")
    assert await emulator.deliver(bot["token"], again) == 200  # Telegram delivers it again
    async with services.db.transaction() as s:
        convs = (
            await s.scalars(select(m.Conversation).where(m.Conversation.inbox_id == bot["inbox_id"]))
        ).all()
        assert [(c.id, c.status) for c in convs] == [(conv.id, "closed")]
        asked = await s.scalar(
            select(func.count()).where(m.Message.conversation_id == conv.id, m.Message.body == "/transcript")
        )
        assert asked == 0
    # The sender keeps each chat's order: once a later bot message is out, so is anything before it.
    await say(app, conv.id, "Anything else?")
    await until(
        lambda: any(c.params.get("text") == "Anything else?" for c in emulator.sent(customer["id"])),
        what="the sentinel message",
    )
    assert len(emulator.sent(customer["id"], "sendDocument")) == 2, "a re-delivered update sent it twice"
