"""The contract between the core and channel adapters (widget, Telegram, voice, ...).

The core never imports a channel. Adapters register themselves here; inbound traffic enters
through ``omni.domain.conversations.ingest_inbound``; outbound operator messages reach the
adapter whose ``kind`` matches the conversation's channel through ``OutboundDispatcher``,
a sink of the outbox relay, so a reply is sent only after it is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from omni.db import Database
from omni.domain.conversations import mark_delivery
from omni.domain.events import DomainEvent

log = logging.getLogger(__name__)


class ChannelNotReady(Exception):
    """Temporary: the channel can't send now; the message stays ``pending`` for a resend."""


class ChannelAuthFailed(Exception):
    """Permanent until a person fixes the configuration (bad bot token, AMI password)."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    message_id: int
    conversation_id: int
    inbox_id: int | None
    channel: str
    body: str
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    state: str
    """sent | delivered | read | failed, or ``pending``: accepted for delivery later (a paced
    sender, Telegram); the adapter then records the outcome itself with ``mark_delivery``."""
    external_id: str | None = None
    error: str = ""


class ChannelAdapter(Protocol):
    kind: ClassVar[str]

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, msg: OutboundMessage) -> DeliveryReceipt: ...


@runtime_checkable
class SupportsTyping(Protocol):
    """Channels that can show the customer "operator is typing" (the widget; not Telegram)."""

    async def show_typing(self, conversation_id: int, typing: bool) -> None: ...


class AdapterRegistry:
    """Adapters by channel kind; the composition root fills it, the lifespan starts them."""

    def __init__(self) -> None:
        self._adapters: dict[str, ChannelAdapter] = {}

    def register(self, adapter: ChannelAdapter) -> None:
        if adapter.kind in self._adapters:
            raise ValueError(f"a '{adapter.kind}' adapter is already registered")
        self._adapters[adapter.kind] = adapter

    def get(self, kind: str) -> ChannelAdapter | None:
        return self._adapters.get(kind)

    async def typing(self, kind: str, conversation_id: int, typing: bool) -> None:
        adapter: object = self._adapters.get(kind)
        if isinstance(adapter, SupportsTyping):
            await adapter.show_typing(conversation_id, typing)

    def all(self) -> list[ChannelAdapter]:
        return list(self._adapters.values())

    async def start(self) -> None:
        for adapter in self._adapters.values():
            await adapter.start()

    async def stop(self) -> None:
        for adapter in reversed(list(self._adapters.values())):
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping the %s adapter failed", adapter.kind)


@dataclass
class OutboundDispatcher:
    """Post-commit relay sink: committed operator replies go to their channel; the receipt is
    recorded. A node dying between the relay's commit and the send leaves the message
    ``pending`` (visible to the operator), not lost silently."""

    db: Database
    registry: AdapterRegistry

    async def __call__(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            if event.type != "message.created" or event.payload.get("direction") != "out":
                continue
            adapter = self.registry.get(str(event.payload.get("channel")))
            if adapter is None:
                continue  # e.g. the "api" channel: the CRM reads replies from webhooks
            msg = OutboundMessage(
                message_id=int(event.payload["id"]),
                conversation_id=int(event.payload["conversation_id"]),
                inbox_id=None,
                channel=adapter.kind,
                body=str(event.payload.get("body", "")),
                attachments=list(event.payload.get("attachments") or []),
            )
            try:
                receipt = await adapter.send(msg)
            except ChannelNotReady as exc:
                log.warning("%s channel not ready for message %s: %s", adapter.kind, msg.message_id, exc)
                continue
            except ChannelAuthFailed as exc:
                receipt = DeliveryReceipt("failed", error=f"channel configuration: {exc}")
            if receipt.state == "pending":
                continue  # queued in the adapter's own sender, which marks it when done
            async with self.db.transaction() as session:
                await mark_delivery(session, msg.message_id, receipt.state, receipt.error)
