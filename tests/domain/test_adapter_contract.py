"""The channel adapter seam: committed operator replies reach the adapter of their channel,
and its receipt becomes the delivery mark the operator sees."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx
import pytest
from sqlalchemy import select

from omni.channels import ChannelNotReady, DeliveryReceipt, OutboundMessage
from omni.db import models as m
from omni.domain import automated
from omni.domain import conversations as c
from omni.domain.conversations import InboundMessage
from omni.domain.routing import do_route_pending
from omni.services import Services
from tests import factories as f
from tests.channels.telegram.emulator import BotApiEmulator
from tests.channels.telegram.test_telegram_channel import until
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import (
    LiveServer,
    _asyncpg_url,
    create_test_database,
    drop_test_database,
    free_port,
    make_settings,
)
from tests.helpers import HTTP_TIMEOUT
from tests.test_realtime import token_for


class LoopbackChannel:
    """Stands in for an outside messenger: records what it was asked to send."""

    kind: ClassVar[str] = "loopback"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.fail_next = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        if self.fail_next:
            self.fail_next = False
            raise ChannelNotReady("network down")
        self.sent.append(msg)
        return DeliveryReceipt("sent", external_id=f"ext-{msg.message_id}")


async def test_reply_is_sent_after_commit_and_marked(services: Services) -> None:
    channel = LoopbackChannel()
    services.adapters.register(channel)
    async with services.db.transaction() as s:
        op = await f.user(s, "op")
        q = await f.queue(s, "q", [op])
        ib = await f.inbox(s, q, channel="loopback")
        await f.set_status(s, op)
        res = await c.do_ingest_inbound(
            s, InboundMessage(inbox_id=ib.id, identity_kind="external", identity_value="x", body="hi")
        )
        conv_id = res.conversation.id
    await do_route_pending(services.db)
    async with services.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.conversation_id == conv_id))
        assert offer is not None
        await c.check_accept_offer(s, f.who(op), offer.id)
        reply = await c.check_send_message(s, f.who(op), conv_id, "Hello <b>there</b>")
        note = await c.check_send_message(s, f.who(op), conv_id, "internal", private=True)
    assert channel.sent == [], "nothing is sent before the relay sees the commit"
    await services.relay.relay_once()
    assert [(x.message_id, x.body) for x in channel.sent] == [(reply.id, "Hello <b>there</b>")]
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Message, reply.id)).delivery == "sent"
        assert (await s.get_one(m.Message, note.id)).delivery == "stored"
    channel.fail_next = True
    async with services.db.transaction() as s:
        second = await c.check_send_message(s, f.who(op), conv_id, "again")
    await services.relay.relay_once()
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Message, second.id)).delivery == "pending"


# --- One contract, every real adapter -------------------------------------------------------
#
# Like aiogram's storage tests: one class of tests, run against each channel's adapter as the
# app wires it (``channels.<name>.setup``), talking to that channel's real counterpart — a
# Socket.IO client for the widget, the Bot API emulator for Telegram, the AMI emulator for
# voice. A harness knows only how its customer writes and what its customer saw.


class Harness(Protocol):
    kind: str
    server: LiveServer
    shows_text: bool
    """Whether an outbound text reaches the customer as text (not on a phone call)."""
    tells_closed: bool
    """Whether the customer hears that the conversation was closed (a call just ends)."""

    async def customer_writes(self, text: str) -> int:
        """Inbound through the real channel; the conversation's id once it is stored."""
        ...

    def received(self) -> list[str]:
        """Texts the customer has received so far."""
        ...

    def told_closed(self) -> bool: ...

    async def break_link(self) -> bool:
        """Cut the channel's link to its customers (False: the channel has no such link)."""
        ...

    async def restore_link(self) -> None: ...


@dataclass
class WidgetHarness:
    server: LiveServer
    token: str
    visitor: Visitor | None = None
    closed: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "widget"
    shows_text: bool = True
    tells_closed: bool = True

    async def customer_writes(self, text: str) -> int:
        if self.visitor is None:
            self.visitor = Visitor(self.server.url)
            self.visitor.sio.on("closed", self.closed.append, namespace="/widget")
            await self.visitor.connect(inbox=self.token)
        ack = await self.visitor.send(text, f"c-{len(text)}-{id(text)}")
        assert ack["ok"], ack
        return int(ack["conversation_id"])

    def received(self) -> list[str]:
        return [x["body"] for x in self.visitor.messages] if self.visitor else []

    def told_closed(self) -> bool:
        return bool(self.closed)

    async def break_link(self) -> bool:
        return False  # each visitor has their own socket; the channel as a whole stays up

    async def restore_link(self) -> None:
        return None


@dataclass
class TelegramHarness:
    server: LiveServer
    emulator: BotApiEmulator
    token: str
    inbox_id: int
    customer: dict[str, Any]
    kind: str = "telegram"
    shows_text: bool = True
    tells_closed: bool = True

    async def customer_writes(self, text: str) -> int:
        update = self.emulator.update(message=self.emulator.message(self.customer, text=text))
        assert await self.emulator.deliver(self.token, update) == 200
        return await latest_conversation(self.server, self.inbox_id)

    def received(self) -> list[str]:
        calls = self.emulator.sent(chat_id=int(self.customer["id"]), method="sendMessage")
        return [str(c.params.get("text")) for c in calls]

    def told_closed(self) -> bool:
        return CLOSING in self.received()

    async def break_link(self) -> bool:
        return False  # every bot is its own link; one failing bot does not stop the channel

    async def restore_link(self) -> None:
        return None


@dataclass
class VoiceHarness:
    server: LiveServer
    emulator: AmiEmulator
    inbox_id: int
    number: str
    kind: str = "voice"
    shows_text: bool = False
    tells_closed: bool = False

    async def customer_writes(self, text: str) -> int:
        self.emulator.incoming_call(self.number, inbox=self.inbox_id)
        return await latest_conversation(self.server, self.inbox_id)

    def received(self) -> list[str]:
        return []

    def told_closed(self) -> bool:
        return False

    async def break_link(self) -> bool:
        await self.emulator.stop()
        return True

    async def restore_link(self) -> None:
        await self.emulator.start()


CLOSING = "Thank you, this chat is closed."
_n = itertools.count(1)


async def latest_conversation(server: LiveServer, inbox_id: int) -> int:
    async def found() -> int | None:
        async with server.services.db.transaction() as s:
            conv_id: int | None = await s.scalar(
                select(m.Conversation.id)
                .where(m.Conversation.inbox_id == inbox_id)
                .order_by(m.Conversation.id.desc())
                .limit(1)
            )
            return conv_id

    return int(await until(found))


@pytest.fixture(scope="module")
async def bot_api() -> AsyncIterator[BotApiEmulator]:
    emu = BotApiEmulator(free_port())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture(scope="module")
async def ami() -> AsyncIterator[AmiEmulator]:
    emu = AmiEmulator(free_port())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture(scope="module")
async def every_channel(
    pg_template: str, bot_api: BotApiEmulator, ami: AmiEmulator, tmp_path_factory: Any
) -> AsyncIterator[LiveServer]:
    """One app with all three channels on (voice against the AMI emulator, Telegram against
    the Bot API emulator), as ``create_app`` plugs them in."""
    name = await create_test_database(pg_template)
    settings = make_settings(_asyncpg_url(name), data_dir=tmp_path_factory.mktemp("contract"))
    settings.telegram.api_base_url = bot_api.url
    v = settings.voice
    v.enabled = True
    v.ami_port, v.ami_secret = ami.port, ami.secret
    v.reconnect_min_seconds, v.reconnect_max_seconds = 0.05, 0.4
    v.recordings_dir = tmp_path_factory.mktemp("recordings")
    v.agi_port = 0
    server = LiveServer(settings)
    settings.telegram.webhook_base_url = server.url
    await server.start()
    try:
        async with server.services.db.transaction() as s:
            await f.user(s, "admin", m.Role.ADMIN)
        yield server
    finally:
        await server.stop()
        await drop_test_database(name)


@pytest.fixture(params=["widget", "telegram", "voice"])
async def harness(
    request: pytest.FixtureRequest, every_channel: LiveServer, bot_api: BotApiEmulator, ami: AmiEmulator
) -> AsyncIterator[Harness]:
    """Each channel's adapter wired to its real counterpart, with a fresh inbox and customer."""
    server = every_channel
    n = next(_n)
    kind = str(request.param)
    async with server.services.db.transaction() as s:
        queue = await f.queue(s, f"contract-{kind}-{n}")  # nobody serves it: conversations wait
        queue_id = queue.id
        if kind != "telegram":
            inbox = await f.inbox(s, queue, channel=kind, name=f"{kind}-{n}")
            inbox.config = {"did": f"49599{n}"} if kind == "voice" else {}
            inbox_id, token = inbox.id, inbox.public_token
    if kind == "widget":
        widget = WidgetHarness(server, token)
        yield widget
        if widget.visitor is not None:
            await widget.visitor.sio.disconnect()
    elif kind == "telegram":
        bot_token = bot_api.add_bot()
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {await token_for(server, 'admin')}"},
            timeout=HTTP_TIMEOUT,
        ) as http:
            created = await http.post(
                "/api/v1/telegram/bots",
                json={
                    "name": f"contract-{n}",
                    "token": bot_token,
                    "queue_id": queue_id,
                    "queue_message": "",
                    "closing_message": CLOSING,
                },
            )
        assert created.status_code == 201, created.text
        customer = {"id": 525_000 + n, "first_name": "Anna", "username": f"anna_{n}"}
        yield TelegramHarness(server, bot_api, bot_token, int(created.json()["inbox_id"]), customer)
    else:
        ami.reset()
        await until(lambda: voice_adapter(server).ami.ready)
        yield VoiceHarness(server, ami, inbox_id, f"+7916777{n:04d}")


def voice_adapter(server: LiveServer) -> Any:
    return server.services.adapters.get("voice")


async def delivery_of(server: LiveServer, message_id: int) -> str:
    async with server.services.db.transaction() as s:
        return (await s.get_one(m.Message, message_id)).delivery


class TestAdapterContract:
    """What ``omni.channels.ChannelAdapter`` promises, checked on every real adapter."""

    async def test_is_registered_under_the_kind_its_inboxes_name(self, harness: Harness) -> None:
        adapter = harness.server.services.adapters.get(harness.kind)
        assert adapter is not None and adapter.kind == harness.kind

    async def test_customer_message_is_stored_in_a_conversation_of_its_channel(
        self, harness: Harness
    ) -> None:
        conv_id = await harness.customer_writes("Hello, I need help")
        async with harness.server.services.db.transaction() as s:
            conv = await s.get_one(m.Conversation, conv_id)
            inbox = await s.get_one(m.Inbox, conv.inbox_id)
            assert inbox.channel == harness.kind
            assert conv.status in (m.ConversationStatus.QUEUED, m.ConversationStatus.OFFERED)

    async def test_reports_available_while_it_can_reach_customers(self, harness: Harness) -> None:
        registry = harness.server.services.adapters
        assert harness.kind not in registry.unavailable()
        if not await harness.break_link():
            return  # no channel-wide link to lose
        try:
            reason = await until(lambda: registry.unavailable().get(harness.kind))
            assert reason, "an unavailable channel says why"
        finally:
            await harness.restore_link()
        await until(lambda: harness.kind not in registry.unavailable())

    async def test_outbound_message_reaches_the_customer_and_is_marked(self, harness: Harness) -> None:
        conv_id = await harness.customer_writes("Hello")
        async with harness.server.services.db.transaction() as s:
            first = (await automated.do_send_automated(s, conv_id, "One moment, please")).id
            second = (await automated.do_send_automated(s, conv_id, "Still here")).id
        if harness.shows_text:
            await until(lambda: harness.received()[-2:] == ["One moment, please", "Still here"])
            for message_id in (first, second):
                await until(lambda mid=message_id: _delivered(harness.server, mid))
        else:
            # A call can't show text: a prompt is handed to the IVR (pending) or refused; never "sent".
            await harness.server.services.relay.relay_once()
            assert await delivery_of(harness.server, first) != "sent"

    async def test_message_for_an_unknown_conversation_is_refused(
        self, harness: Harness, request: pytest.FixtureRequest
    ) -> None:
        adapter = harness.server.services.adapters.get(harness.kind)
        assert adapter is not None
        missing = OutboundMessage(
            message_id=2**62, conversation_id=2**62, inbox_id=None, channel=harness.kind, body="hi"
        )
        receipt = await adapter.send(missing)
        assert receipt.state == "failed" and receipt.error, receipt

    async def test_closed_conversation_tells_the_customer(self, harness: Harness) -> None:
        if not harness.tells_closed:
            pytest.skip(f"{harness.kind}: the conversation ends with the call; there is nobody to tell")
        conv_id = await harness.customer_writes("Bye soon")
        async with harness.server.services.db.transaction() as s:
            await c.do_close(s, await s.get_one(m.Conversation, conv_id), None, by="supervisor")
        await until(harness.told_closed)


async def _delivered(server: LiveServer, message_id: int) -> bool:
    return await delivery_of(server, message_id) in ("sent", "delivered", "read")
