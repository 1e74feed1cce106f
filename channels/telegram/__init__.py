"""Telegram channel: any number of bots, each an inbox, through aiogram.

- Inbound: webhook (``POST /api/v1/telegram/webhook/{inbox public token}`` with the
  ``secret_token`` Omni registered via ``setWebhook``) or long polling run by the app (one
  poller per bot, restarted with backoff). Updates go through one aiogram ``Dispatcher``
  (``handlers.router``) to ``TelegramChannel.ingest``: normalised by ``mapping`` (pure),
  media downloaded, then stored through ``do_ingest_inbound`` before the update is acknowledged.
- Outbound: ``send`` queues the message in the bot's ``BotSender`` (rate limits, 429,
  retries) and returns a ``pending`` receipt; the sender records ``sent`` / ``failed``.
- Campaigns: ``place`` (``omni.channels.PlacesAttempts``) stores a broadcast message in the
  contact's conversation (``omni.domain.outbound.broadcast``); it leaves through the same
  sender, whose delivery mark closes the attempt (``sent`` / ``send_failed``).
- Events: position in line when a Telegram conversation is queued, closing message and
  satisfaction question when it ends (per inbox ``config``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import FSInputFile, Update
from sqlalchemy.exc import IntegrityError

from channels.telegram import commands, handlers
from channels.telegram.mapping import (
    CSAT_PREFIX,
    IMAGE_TYPES,
    MediaRef,
    TelegramInbound,
    file_attachments,
    inline_keyboard,
    queue_text,
    split_text,
    update_to_inbound,
)
from channels.telegram.sender import BotSender, Call, Job
from omni import crypto
from omni.channels import AttemptOrder, ChannelNotReady, ChannelSetup, DeliveryReceipt, OutboundMessage
from omni.db import models as m
from omni.domain import (
    automated,
    conversations,
    customer_view,
    files,
    identities,
    inboxes,
    place,
)
from omni.domain.contacts import normalise_phone
from omni.domain.errors import DomainError, InvalidInput
from omni.domain.events import DomainEvent
from omni.domain.outbound import broadcast
from omni.domain.routing import line_wait_infos, wait_info
from omni.lease import Lease
from omni.services import Services

__all__ = ["KIND", "TelegramChannel", "setup", "webhook_secret"]

log = logging.getLogger(__name__)

KIND = "telegram"
WEBHOOK_PATH = "/api/v1/telegram/webhook"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
DEFAULT_QUEUE_MESSAGE = "You are number {position} in line. Expected wait: {wait}."
LINE_MOVES = frozenset(
    {
        "conversation.accepted",
        "conversation.abandoned",
        "conversation.missed",
        "conversation.overflowed",
        "conversation.transferred",
    }
)


def webhook_secret(secret_key: str, public_token: str) -> str:
    """The ``secret_token`` given to ``setWebhook``: derived, so nothing more is stored."""
    return hmac.new(
        secret_key.encode(), f"omni.telegram.webhook:{public_token}".encode(), hashlib.sha256
    ).hexdigest()


def make_bot(token: str, api_base_url: str) -> Bot:
    """An aiogram ``Bot`` on its own aiohttp session, against the configured Bot API server."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base_url))
    return Bot(token, session=session)


@dataclass
class BotRuntime:
    """One bot of this node: its aiogram ``Bot``, outbound sender and (polling) poller."""

    inbox_id: int
    public_token: str
    mode: str
    token: str
    bot: Bot
    sender: BotSender
    poller: asyncio.Task[None] | None = None
    webhook_error: str | None = None
    polls: int = 0
    """Successful ``getUpdates`` calls (tests wait on it)."""
    poll_errors: int = 0
    failing_update: tuple[int, int] = (0, 0)
    """(update_id, failures) of an update that could not be stored, to skip a poison one."""
    lease: Lease | None = None
    """Polling: ``telegram:poll:<bot id>``; only its holder (one node of several) polls."""


CALL_ME = ("/callme", "/call_me")
"""Commands a waiting customer sends to be called back, keeping their place in line; an
optional number follows (``/callme +7 916 123-45-67``), else the contact's phone (a shared
contact card joins it)."""


def asks_call_me(body: str) -> bool:
    words = body.strip().split(maxsplit=1)
    return bool(words) and words[0].lower().split("@")[0] in CALL_ME


async def _call_me(session: Any, conv: m.Conversation, body: str) -> None:
    """The same conversation becomes a callback (``omni.domain.place``); a refusal (no
    number, not waiting, no voice line) is told to the customer, and the message stays stored."""
    words = body.strip().split(maxsplit=1)
    number = words[1] if len(words) > 1 else None
    try:
        async with session.begin_nested():
            await place.check_request_callback(session, conv.id, number=number, via="telegram")
    except DomainError as exc:
        lang = str((conv.variables or {}).get("lang") or "en")
        await automated.do_send_automated(session, conv.id, exc.localized(lang))


class TelegramChannel:
    """The Telegram adapter (``kind = "telegram"``); one instance serves every bot."""

    kind: ClassVar[str] = KIND

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.telegram
        self.dp = Dispatcher()
        self.dp.include_router(handlers.build_router())
        self.bots: dict[int, BotRuntime] = {}
        self._lock = asyncio.Lock()
        self._reconciler: asyncio.Task[None] | None = None
        self._announced: dict[int, tuple[int, float]] = {}

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.reconcile()
        self._reconciler = asyncio.create_task(self._reconcile_forever(), name="telegram-reconcile")

    async def stop(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
            self._reconciler = None
        for inbox_id in list(self.bots):
            await self._drop(inbox_id)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconcile_seconds)
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("telegram: re-reading the bot list failed")

    async def reconcile(self) -> None:
        """Bring this node's bots in line with the database (added, disabled, token or mode
        changed elsewhere)."""
        async with self.services.db.transaction() as session:
            rows = await inboxes.channel_inboxes(session, KIND, active_only=True)
        wanted = {row.id: row for row in rows}
        for inbox_id in list(self.bots):
            if inbox_id not in wanted:
                await self._drop(inbox_id)
        for row in wanted.values():
            try:
                await self.activate(row)
            except Exception:
                log.exception("telegram: bot of inbox %s could not be started", row.id)

    async def reconcile_one(self, inbox_id: int) -> None:
        """Bring one bot in line with the database now (changed or deleted by an admin here)."""
        async with self.services.db.transaction() as session:
            row = await inboxes.active_inbox(session, inbox_id, KIND)
        await self.follow(inbox_id, row)

    async def follow(self, inbox_id: int, inbox: m.Inbox | None) -> None:
        """Run the bot as ``inbox`` says (``None`` or inactive: stop it) on this node."""
        if inbox is None or not inbox.active:
            await self._drop(inbox_id)
        else:
            await self.activate(inbox)

    async def activate(self, inbox: m.Inbox) -> BotRuntime | None:
        """Start (or restart after a change) the bot of ``inbox`` on this node."""
        if not inbox.secret_encrypted:
            return None
        token = crypto.decrypt(self.services.settings.effective_secret_key(), inbox.secret_encrypted)
        mode = str((inbox.config or {}).get("mode", "webhook"))
        async with self._lock:
            current = self.bots.get(inbox.id)
            if current is not None and current.token == token and current.mode == mode:
                return current
            if current is not None:
                await self._drop(inbox.id)
            bot = make_bot(token, self.settings.api_base_url)
            sender = BotSender(
                self._report,
                rate=self.settings.messages_per_second,
                per_chat_interval=self.settings.per_chat_interval_seconds,
                attempts=self.settings.send_attempts,
                backoff=self.settings.retry_backoff_seconds,
                name=f"inbox-{inbox.id}",
            )
            runtime = BotRuntime(inbox.id, inbox.public_token, mode, token, bot, sender)
            sender.start()
            self.bots[inbox.id] = runtime
            if mode == "polling":
                await self._start_polling(runtime, (inbox.config or {}).get("bot_id") or f"inbox-{inbox.id}")
            else:
                try:
                    await self.register_webhook(runtime)
                except TelegramAPIError as exc:
                    runtime.webhook_error = exc.message
                    log.warning("telegram: setWebhook for inbox %s failed: %s", inbox.id, exc)
            return runtime

    async def _start_polling(self, runtime: BotRuntime, bot_id: object) -> None:
        """Telegram serves one ``getUpdates`` per bot (a second gets 409): the node holding the
        bot's lease polls, the others stand by and take over within seconds when it dies. The
        new poller starts from Telegram's own cursor (no ``offset``: the updates not yet
        confirmed); those the old holder stored but had not confirmed are ingested again and
        dropped as duplicates (the message's ``external_id``), so none is lost or doubled."""
        leases = self.services.leases
        if leases is None:
            self._start_poller(runtime)
            return

        async def acquired() -> None:
            self._start_poller(runtime)

        async def lost() -> None:
            await self._stop_poller(runtime)

        runtime.lease = leases.lease(f"telegram:poll:{bot_id}", on_acquired=acquired, on_lost=lost)
        await runtime.lease.start()

    def _start_poller(self, runtime: BotRuntime) -> None:
        if runtime.poller is None or runtime.poller.done():
            runtime.poller = asyncio.create_task(
                self._poll(runtime), name=f"telegram-poll-{runtime.inbox_id}"
            )

    @staticmethod
    async def _stop_poller(runtime: BotRuntime) -> None:
        poller, runtime.poller = runtime.poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _drop(self, inbox_id: int) -> None:
        runtime = self.bots.pop(inbox_id, None)
        if runtime is None:
            return
        if runtime.lease is not None:
            await runtime.lease.stop()  # stops the poller (``lost``), then frees the lease
            runtime.lease = None
        await self._stop_poller(runtime)
        await runtime.sender.stop()
        await runtime.bot.session.close()

    def webhook_url(self, public_token: str) -> str:
        base = (self.settings.webhook_base_url or self.services.settings.public_base_url).rstrip("/")
        return f"{base}{WEBHOOK_PATH}/{public_token}"

    async def register_webhook(self, runtime: BotRuntime) -> None:
        await runtime.bot.set_webhook(
            self.webhook_url(runtime.public_token),
            secret_token=webhook_secret(self.services.settings.effective_secret_key(), runtime.public_token),
            allowed_updates=ALLOWED_UPDATES,
        )

    async def runtime(self, inbox_id: int) -> BotRuntime | None:
        """This node's runtime of a bot, started on demand (a bot added on another node)."""
        found = self.bots.get(inbox_id)
        if found is not None:
            return found
        async with self.services.db.transaction() as session:
            inbox = await inboxes.active_inbox(session, inbox_id, KIND)
        return await self.activate(inbox) if inbox is not None else None

    async def runtime_by_token(self, public_token: str) -> BotRuntime | None:
        for runtime in self.bots.values():
            if runtime.public_token == public_token:
                return runtime
        async with self.services.db.transaction() as session:
            inbox = await inboxes.public_inbox(session, public_token, KIND)
        return await self.activate(inbox) if inbox is not None else None

    # --- inbound ------------------------------------------------------------------------

    async def feed(self, runtime: BotRuntime, update: Update | dict[str, Any]) -> None:
        """One update (webhook body or polled) through the dispatcher; returns once stored."""
        if not isinstance(update, Update):
            update = Update.model_validate(update, context={"bot": runtime.bot})
        await self.dp.feed_update(runtime.bot, update, channel=self, inbox_id=runtime.inbox_id)

    async def ingest(self, bot: Bot, inbox_id: int, update: Update) -> None:
        """Store what the customer sent (idempotently), then answer a button press."""
        item = update_to_inbound(update, inbox_id)
        if item is None:
            return
        if item.kind == "rating":
            await self._rating(item)
        elif item.kind == "edit":
            async with self.services.db.transaction() as session:
                await conversations.do_edit_inbound(
                    session, inbox_id, str(item.message.external_id), item.message.body
                )
        else:
            await self._store(bot, item)
        if item.callback_query_id:
            text = "Thank you!" if item.kind == "rating" else None
            try:
                await bot.answer_callback_query(item.callback_query_id, text=text)
            except TelegramAPIError as exc:  # too old a query: the press is stored anyway
                log.info("telegram: answerCallbackQuery failed: %s", exc)

    async def _store(self, bot: Bot, item: TelegramInbound) -> None:
        msg = item.message
        if not item.media and not item.shared_phone and commands.asks_transcript(msg.body):
            key = str(msg.external_id or "")
            await commands.send_transcript(self.services, KIND, msg.inbox_id, msg.identity_value, key)
            return
        if (item.media or item.shared_phone) and msg.external_id:
            # Only media (a re-delivered update must not be downloaded again) and a shared phone
            # (joined before the message is stored) are worth a transaction of their own. Text
            # goes straight to ``do_ingest_inbound``, which dedupes it by ``external_id`` in the
            # storing transaction (one transaction per update, not two).
            async with self.services.db.transaction() as session:
                seen = await customer_view.inbound_stored(session, msg.inbox_id, str(msg.external_id))
            if seen:
                return  # a re-delivered update: stored once, nothing downloaded again
        downloads = [(ref, await self._download(bot, ref)) for ref in item.media]
        for attempt in range(1, 4):
            try:
                await self._store_once(item, downloads)
                return
            except IntegrityError:
                # A concurrent first message of the same new customer created the contact (or
                # the same update won the race): the next attempt finds what it committed.
                if attempt == 3:
                    raise

    async def _store_once(self, item: TelegramInbound, downloads: list[tuple[MediaRef, bytes | str]]) -> None:
        msg = dataclasses.replace(item.message)
        settings = self.services.settings
        async with self.services.db.transaction() as session:
            if item.shared_phone:
                await self._join_phone(session, item)
            stored: list[m.StoredFile] = []
            notes: list[str] = []
            for ref, data in downloads:
                if isinstance(data, str):
                    notes.append(f"[{ref.name}: {data}]")
                    continue
                try:
                    stored.append(
                        await files.do_store_upload(
                            session,
                            data_dir=settings.data_dir,
                            inbox_id=msg.inbox_id,
                            owner=f"telegram:{msg.identity_value}",
                            name=ref.name,
                            content_type=ref.content_type,
                            data=data,
                            max_bytes=self.settings.max_file_bytes,
                            allowed=[ref.content_type],
                        )
                    )
                except InvalidInput as exc:
                    notes.append(f"[{ref.name}: {exc.message}]")
            if notes:
                msg.body = "\n".join(p for p in (msg.body, *notes) if p)
            msg.attachments = [files.descriptor(f) for f in stored] + list(msg.attachments)
            # A reply to a campaign message starting a new conversation is linked to it too.
            # Asked only then: a join that a message to an open conversation need not pay for.
            msg.starting = functools.partial(
                broadcast.reply_link, inbox_id=msg.inbox_id, identity_value=msg.identity_value
            )
            result = await conversations.do_ingest_inbound(session, msg)
            if not result.duplicate:
                files.do_link_uploads(stored, result.conversation.id)
                if asks_call_me(msg.body):
                    await _call_me(session, result.conversation, msg.body)

    async def _download(self, bot: Bot, ref: MediaRef) -> bytes | str:
        """The file's bytes, or why it was not fetched (shown in the message body)."""
        if ref.size is not None and ref.size > self.settings.max_file_bytes:
            return f"file of {files.human_size(ref.size)} is over the limit, not downloaded"
        buffer = io.BytesIO()
        try:
            await bot.download(ref.file_id, destination=buffer, timeout=60)
        except (TelegramNetworkError, TelegramServerError):
            raise  # not stored, not acknowledged: Telegram delivers the update again
        except TelegramAPIError as exc:
            log.warning("telegram: download of %s failed: %s", ref.file_id, exc)
            return f"could not be downloaded: {exc.message}"
        return buffer.getvalue()

    async def _join_phone(self, session: Any, item: TelegramInbound) -> None:
        """The customer shared their own number: the Telegram identity joins the contact that
        has this phone (their calls, widget chats), or the number is added to theirs."""
        try:
            phone = normalise_phone(str(item.shared_phone))
        except InvalidInput:
            return
        msg = item.message
        await identities.do_join_phone(session, KIND, msg.identity_value, phone, name=msg.contact_name)

    async def _rating(self, item: TelegramInbound) -> None:
        if item.rating is None:
            return
        async with self.services.db.transaction() as session:
            conv_id = await identities.latest_conversation_id(
                session, KIND, item.message.identity_value, item.message.inbox_id
            )
            if conv_id is not None:
                # On the inbox's scale (its number of labels), as the widget records it.
                config = await inboxes.inbox_config(session, item.message.inbox_id)
                csat = config.get("csat")
                scale = len((csat.get("labels") if isinstance(csat, dict) else None) or range(5))
                with contextlib.suppress(InvalidInput):
                    await conversations.do_record_rating(session, conv_id, item.rating, scale=scale)

    async def _poll(self, runtime: BotRuntime) -> None:
        """Long polling for one bot until cancelled; every failure restarts it after a delay
        doubling up to ``poll_backoff_max_seconds``. An update is confirmed to Telegram (the
        next ``offset``) only after it is stored."""
        delay = self.settings.poll_backoff_seconds
        offset: int | None = None
        webhook_removed = False
        bot = runtime.bot
        while True:
            try:
                if not webhook_removed:
                    await bot.delete_webhook(drop_pending_updates=False)
                    webhook_removed = True
                updates = await bot.get_updates(
                    offset=offset,
                    timeout=self.settings.poll_timeout_seconds,
                    allowed_updates=ALLOWED_UPDATES,
                    request_timeout=self.settings.poll_timeout_seconds + 10,
                )
                runtime.polls += 1
                delay = self.settings.poll_backoff_seconds
                for update in updates:
                    try:
                        await self.feed(runtime, update)
                    except Exception:
                        if self._poison(runtime, update.update_id):
                            log.exception(
                                "telegram: skipping update %s after repeated failures", update.update_id
                            )
                        else:
                            raise
                    offset = update.update_id + 1
            except asyncio.CancelledError:
                raise
            except TelegramUnauthorizedError:
                runtime.poll_errors += 1
                log.error("telegram: inbox %s bot token refused; polling paused", runtime.inbox_id)
                await asyncio.sleep(self.settings.poll_backoff_max_seconds)
            except Exception as exc:
                runtime.poll_errors += 1
                log.warning(
                    "telegram: poller of inbox %s failed (%s); again in %.1fs", runtime.inbox_id, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.poll_backoff_max_seconds)

    @staticmethod
    def _poison(runtime: BotRuntime, update_id: int) -> bool:
        seen, failures = runtime.failing_update
        failures = failures + 1 if seen == update_id else 1
        runtime.failing_update = (update_id, failures)
        return failures >= 5

    # --- outbound -----------------------------------------------------------------------

    async def send(self, msg: OutboundMessage) -> DeliveryReceipt:
        """Queue the message in its bot's sender; the outcome is recorded there."""
        async with self.services.db.transaction() as session:
            conv = await customer_view.channel_conversation(session, msg.conversation_id)
            if conv is None or conv.inbox_id is None:
                return DeliveryReceipt("failed", error="the conversation has no Telegram bot")
            chat_id = (conv.variables or {}).get("telegram_chat_id")
            if chat_id is None:
                chat_id = await identities.contact_identity(session, conv.contact_id, KIND)
            rows = await customer_view.attached_files(session, file_attachments(msg.attachments))
            inbox_id = conv.inbox_id
        runtime = await self.runtime(inbox_id)
        if runtime is None:
            return DeliveryReceipt("failed", error="this Telegram bot is disabled or removed")
        if chat_id is None:
            return DeliveryReceipt("failed", error="no Telegram chat for this contact")
        calls = self._calls(runtime.bot, int(chat_id), msg, rows)
        if not calls:
            return DeliveryReceipt("failed", error="nothing to send")
        runtime.sender.submit(Job(msg.message_id, int(chat_id), calls))
        return DeliveryReceipt("pending")

    @staticmethod
    def _calls(bot: Bot, chat_id: int, msg: OutboundMessage, stored: list[m.StoredFile]) -> list[Call]:
        markup = inline_keyboard(msg.attachments)
        text = msg.body if msg.body.strip() else ("Please choose:" if markup else "")
        chunks = split_text(text) if text else []
        calls: list[Call] = []
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            calls.append(
                functools.partial(bot.send_message, chat_id, chunk, reply_markup=markup if last else None)
            )
        for row in stored:
            upload = FSInputFile(row.path, filename=row.name)
            method = bot.send_photo if row.content_type in IMAGE_TYPES else bot.send_document
            calls.append(functools.partial(method, chat_id, upload))
        return calls

    async def _report(self, message_id: int, state: str, error: str) -> None:
        async with self.services.db.transaction() as session:
            await conversations.do_mark_delivery(session, message_id, state, error)
            await broadcast.do_broadcast_delivered(session, message_id, state, error)

    # --- campaigns ----------------------------------------------------------------------

    async def place(self, order: AttemptOrder) -> None:
        """``PlacesAttempts`` for broadcast campaigns: the rendered message is stored in the
        contact's conversation (unreachable targets are closed there and then, with the
        cause) and, after commit, sent by the bot's paced sender like any bot message; the
        sender's mark closes the attempt (``_report``). A bot that can't run on this node now
        (disabled, token refused) raises ``ChannelNotReady``: the engine puts the target back."""
        if order.inbox_id is not None and await self.runtime(order.inbox_id) is None:
            raise ChannelNotReady(f"the Telegram bot of inbox {order.inbox_id} is not running")
        async with self.services.db.transaction() as session:
            await broadcast.do_place_broadcast(
                session, order.attempt_id, text=order.text, variables=order.variables
            )

    # --- events -------------------------------------------------------------------------

    async def on_events(self, events: Sequence[DomainEvent]) -> None:
        """Post-commit relay sink: queue position, closing message, satisfaction question."""
        moved_queues: set[int] = set()
        for event in events:
            data = event.payload
            if event.type in LINE_MOVES and event.queue_id is not None:
                moved_queues.add(event.queue_id)
            if data.get("channel") != KIND or event.conversation_id is None:
                continue
            try:
                if event.type == "conversation.queued":
                    moved_queues.add(int(event.queue_id or 0))
                    await self._announce_position(event.conversation_id, first=True)
                elif self._ends(event.type, data):
                    await self._say_goodbye(event.conversation_id, int(data.get("inbox_id") or 0))
            except DomainError as exc:
                log.warning("telegram: event %s not acted on: %s", event.id, exc.message)
        for queue_id in moved_queues - {0}:
            await self._announce_line(queue_id)

    @staticmethod
    def _ends(event_type: str, data: dict[str, Any]) -> bool:
        """The customer-facing end: wrap-up, or a close that skipped wrap-up; not when the
        customer left."""
        if data.get("closed_by") == "customer":
            return False
        return event_type == "conversation.wrap_up" or (
            event_type == "conversation.closed" and not data.get("wrap_up_at")
        )

    async def _inbox_config(self, inbox_id: int) -> dict[str, Any]:
        async with self.services.db.transaction() as session:
            return await inboxes.inbox_config(session, inbox_id)

    async def _announce_position(self, conv_id: int, *, first: bool) -> None:
        async with self.services.db.transaction() as session:
            conv = await customer_view.channel_conversation(session, conv_id)
            if conv is None or conv.inbox_id is None:
                return
            config = await inboxes.inbox_config(session, conv.inbox_id)
            template = str(config.get("queue_message", DEFAULT_QUEUE_MESSAGE))
            if not template:
                return
            info = await wait_info(session, conv)
            if info.position < 1 or not self._should_announce(conv_id, info.position, first=first):
                return
            await automated.do_send_automated(
                session, conv_id, queue_text(template, info.position, info.estimated_wait_seconds)
            )

    def _should_announce(self, conv_id: int, position: int, *, first: bool) -> bool:
        """On entering the line; afterwards only when the position has at least halved since
        the last message, and never twice within ``queue_update_min_seconds``."""
        now = time.monotonic()
        last = self._announced.get(conv_id)
        if not first and last is not None:
            last_position, at = last
            if position > last_position // 2 or now - at < self.settings.queue_update_min_seconds:
                return False
        if len(self._announced) > 10000:
            self._announced.clear()
        self._announced[conv_id] = (position, now)
        return True

    async def _announce_line(self, queue_id: int) -> None:
        async with self.services.db.transaction() as session:
            infos = await line_wait_infos(session, queue_id, channel=KIND)
        for conv_id, info in infos.items():
            last = self._announced.get(conv_id)
            if last is not None and info.position <= last[0] // 2:
                await self._announce_position(conv_id, first=False)

    async def _say_goodbye(self, conv_id: int, inbox_id: int) -> None:
        self._announced.pop(conv_id, None)
        config = await self._inbox_config(inbox_id)
        closing = str(config.get("closing_message") or "")
        csat = config.get("csat") if isinstance(config.get("csat"), dict) else None
        async with self.services.db.transaction() as session:
            if closing:
                await automated.do_send_automated(session, conv_id, closing)
            if csat and csat.get("question"):
                labels = csat.get("labels") or ["1", "2", "3", "4", "5"]
                buttons = [
                    {"id": f"{CSAT_PREFIX}{i}", "label": str(label)} for i, label in enumerate(labels, 1)
                ]
                await automated.do_send_automated(session, conv_id, str(csat["question"]), buttons=buttons)


def setup(services: Services, sio: object = None) -> ChannelSetup:
    """Telegram's entry point (``omni.channels.SetupChannel``): the adapter that runs every bot,
    the webhook and bot-management routes, and the sink that tells customers their place in
    line and says goodbye. No Socket.IO: Telegram talks to customers through the Bot API."""
    from channels.telegram.http import CONTROLLERS  # imports this module: load it once we exist

    channel = TelegramChannel(services)
    return ChannelSetup(adapter=channel, routes=CONTROLLERS, post_commit_sinks=[channel.on_events])
