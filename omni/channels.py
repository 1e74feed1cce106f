"""The contract between the core and channel adapters (widget, Telegram, voice, ...).

The core never imports a channel. Each channel package exposes one entry point,
``setup(services, sio) -> ChannelSetup | None`` (``SetupChannel``); the composition root calls
every registered one and plugs what it returns in (adapter, routes, sinks, namespaces), so a
channel is added by writing its package and naming its ``setup`` once. Inbound traffic enters
through ``omni.domain.conversations.do_ingest_inbound``; outbound operator messages reach the
adapter whose ``kind`` matches the conversation's channel through ``OutboundDispatcher``,
a sink of the outbox relay, so a reply is sent only after it is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from omni.db import Database
from omni.domain.conversations import do_mark_deliveries
from omni.domain.events import DomainEvent, Sink
from omni.i18n import _l

if TYPE_CHECKING:
    from omni.services import Services

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
    client_id: str | None = None
    created_at: str | None = None
    """ISO time the message was stored (so an adapter needn't read it back)."""
    event_seq: int | None = None
    """The ``message.created`` event this send delivers (``None`` outside the outbox relay):
    a socket channel tags its push with it (``omni.realtime.live``)."""


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    state: str
    """sent | delivered | read | failed, or ``pending``: accepted for delivery later (a paced
    sender, Telegram); the adapter then records the outcome itself with ``do_mark_delivery``."""
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


@runtime_checkable
class SupportsPrefetch(Protocol):
    """Channels that read something per conversation before sending (the widget: its visitors'
    rooms) and can read it for a whole relay batch in one query."""

    async def prefetch(self, conversation_ids: Sequence[int]) -> None: ...


ATTENDED_NEEDS_OPERATOR = _l(
    "an attended transfer needs an operator to consult first; a queue or an IVR has no one to "
    "talk to, so transfer there blind"
)
"""Why ``CallControl.transfer(attended=True)`` is refused without ``to_user_id``."""


@runtime_checkable
class CallControl(Protocol):
    """Telephony actions on a call, implemented by the voice adapter (``channels/voice``).

    Transports check who may do what (``access_conversation``, supervisor scope) and update
    the core first where the core has a say (hold, transfer, end); these methods then make
    the PBX do it. They raise ``ChannelNotReady`` while the PBX link is down and
    ``omni.domain.errors`` (``Conflict``, ``InvalidInput``) for calls in the wrong state and
    for actions the PBX refuses (``Conflict`` naming what failed and why); transports call them
    inside the transaction that changed the core, so a refusal leaves the core unchanged.
    """

    async def hold(self, conversation_id: int, on: bool) -> None: ...
    async def hangup(self, conversation_id: int) -> None: ...
    async def transfer(
        self,
        conversation_id: int,
        *,
        to_extension: str | None = None,
        to_user_id: int | None = None,
        to_queue_id: int | None = None,
        to_scenario: str | None = None,
        attended: bool = False,
        by_user_id: int | None = None,
    ) -> None:
        """``to_scenario``: the caller goes to the IVR running that published scenario (the
        transport hands the conversation to it first). Attended only to an operator."""
        ...

    async def originate(self, user_id: int, number: str, queue_id: int) -> int:
        """Click-to-call: ring the operator first, then the customer with the queue's caller
        id; returns the new conversation's id."""
        ...

    async def spy(self, supervisor_user_id: int, conversation_id: int, mode: str) -> None:
        """``mode``: ``listen`` | ``whisper`` | ``barge`` (ChanSpy from the supervisor's phone)."""
        ...

    async def force_end(self, conversation_id: int, by_user_id: int | None = None) -> None:
        """A supervisor ends the call: the core and the PBX together (the PBX's refusal leaves
        the core unchanged); a call the PBX no longer has is ended in the core alone."""
        ...


@dataclass(frozen=True, slots=True)
class AttemptOrder:
    """One campaign attempt the engine (``omni.domain.outbound``) hands to a channel after the
    transaction that opened it commits."""

    attempt_id: int
    campaign_id: int
    target_id: int
    channel: str
    dial_mode: str
    phone: str
    """E.164 number to call, or whose Telegram chat to message."""
    caller_id: str
    inbox_id: int | None
    queue_id: int
    operator_id: int | None
    """The operator reserved for it (preview, progressive); ``None``: agentless / broadcast."""
    ring_seconds: int = 30
    text: str = ""
    """Broadcast: the message with the target's variables filled in."""
    variables: dict[str, Any] = field(default_factory=dict)
    """The target's name and card fields (for the adapter's channel variables)."""


@runtime_checkable
class PlacesAttempts(Protocol):
    """A channel that can place campaign attempts (voice: AMI ``Originate``; Telegram: a
    message). ``place`` returns once the channel accepted the order; the outcome arrives
    later through ``omni.domain.outbound.lifecycle.do_close_attempt`` in the adapter's own
    transaction (an answered call first becomes a conversation via ``omni.domain.outgoing``).
    It raises ``ChannelNotReady`` when the link is down: the engine closes the attempt as
    ``refused`` (no attempt used up) with the target pending again, never losing it."""

    async def place(self, order: AttemptOrder) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelSetup:
    """Everything a channel plugs into the app, returned by its ``setup`` entry point.

    The composition root (``omni.app.create_app``) registers ``adapter`` (whose ``start`` /
    ``stop`` are the channel's lifecycle: the services run them with the app), mounts
    ``routes``, appends ``post_commit_sinks`` to the outbox relay in order, registers
    ``namespaces`` on the Socket.IO server and hands ``replay_sinks`` / ``sync_namespaces`` to
    the node's live fan-out (what it must deliver again after a Redis hole). Routes and
    namespaces are typed loosely because the core imports no transport: they are Litestar
    route handlers and ``socketio.AsyncNamespace`` instances.
    """

    adapter: ChannelAdapter
    routes: Sequence[Any] = ()
    post_commit_sinks: Sequence[Sink] = ()
    namespaces: Sequence[Any] = ()
    replay_sinks: Sequence[Sink] = ()
    sync_namespaces: Sequence[str] = ()


class SetupChannel(Protocol):
    """A channel package's entry point: ``channels.<name>.setup``.

    It builds its adapter and everything around it from the services and the Socket.IO server
    (``socketio.AsyncServer``, untyped here for the same reason as above), without registering
    anything itself. ``None`` means the channel is off in these settings (voice without
    ``OMNI_VOICE_ENABLED``).
    """

    def __call__(self, services: Services, sio: Any, /) -> ChannelSetup | None: ...


AvailabilityListener = Callable[[str, bool], None]
"""Called with (channel kind, available) whenever an adapter reports a change."""


class AdapterRegistry:
    """Adapters by channel kind; the composition root fills it, the lifespan starts them.

    It is also where adapters say whether their channel can reach customers right now
    (``set_available``): a telephony link that is down can ring no phone, so the router keeps
    that channel's conversations waiting in line (``unavailable``) instead of offering them,
    and is nudged (``listeners``) as soon as the channel is back. The core learns only a kind
    and a reason, never what the channel is.
    """

    def __init__(self) -> None:
        self._adapters: dict[str, ChannelAdapter] = {}
        self._unavailable: dict[str, str] = {}
        self.listeners: list[AvailabilityListener] = []

    def set_available(self, kind: str, available: bool, reason: str = "") -> None:
        """An adapter reports whether its channel can deliver offers now (``reason``: why not)."""
        was = kind not in self._unavailable
        if available:
            self._unavailable.pop(kind, None)
        else:
            self._unavailable[kind] = reason or "not available"
        if was != available:
            log.info("%s channel %s", kind, "available again" if available else f"unavailable: {reason}")
            for listener in list(self.listeners):
                try:
                    listener(kind, available)
                except Exception:
                    log.exception("availability listener failed for the %s channel", kind)

    def unavailable(self) -> dict[str, str]:
        """Channel kinds that can't take offers now, with the reason (a copy)."""
        return dict(self._unavailable)

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
    ``pending`` (visible to the operator), not lost silently.

    Conversations are sent concurrently (bounded), each conversation's messages in order, and
    the batch's delivery marks are written in one transaction: the relay must not spend a
    database round trip per reply while other events wait behind it.
    """

    db: Database
    registry: AdapterRegistry
    concurrency: int = 16

    async def __call__(self, events: Sequence[DomainEvent]) -> None:
        by_conversation: dict[int, list[tuple[ChannelAdapter, OutboundMessage]]] = {}
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
                client_id=event.payload.get("client_id"),
                created_at=event.payload.get("created_at"),
                event_seq=event.id,
            )
            by_conversation.setdefault(msg.conversation_id, []).append((adapter, msg))
        if not by_conversation:
            return
        await self._prefetch(by_conversation)
        gate = asyncio.Semaphore(self.concurrency)
        marks: list[tuple[int, DeliveryReceipt]] = []

        async def send_in_order(items: list[tuple[ChannelAdapter, OutboundMessage]]) -> None:
            for adapter, msg in items:
                async with gate:
                    receipt = await self._send(adapter, msg)
                if receipt is not None and receipt.state != "pending":
                    marks.append((msg.message_id, receipt))

        await asyncio.gather(*(send_in_order(items) for items in by_conversation.values()))
        if marks:
            async with self.db.transaction() as session:
                await do_mark_deliveries(session, [(i, r.state, r.error) for i, r in marks])

    async def _prefetch(
        self, by_conversation: dict[int, list[tuple[ChannelAdapter, OutboundMessage]]]
    ) -> None:
        """One read per channel for the batch: 1,000 first replies at once (a shift's start)
        were 1,000 look-ups of the widget's rooms, one transaction each, which the relay waited
        for before the next event (bench/README.md, "rooms15"). A failure here only costs the
        sends their own look-ups."""
        per_adapter: dict[str, tuple[SupportsPrefetch, list[int]]] = {}
        for conv_id, items in by_conversation.items():
            adapter: object = items[0][0]
            if isinstance(adapter, SupportsPrefetch):
                per_adapter.setdefault(items[0][0].kind, (adapter, []))[1].append(conv_id)
        for adapter, ids in per_adapter.values():
            try:
                await adapter.prefetch(ids)
            except Exception:
                log.exception("could not read ahead for %d conversations", len(ids))

    async def _send(self, adapter: ChannelAdapter, msg: OutboundMessage) -> DeliveryReceipt | None:
        try:
            return await adapter.send(msg)
        except ChannelNotReady as exc:
            log.warning("%s channel not ready for message %s: %s", adapter.kind, msg.message_id, exc)
            return None
        except ChannelAuthFailed as exc:
            return DeliveryReceipt("failed", error=f"channel configuration: {exc}")
        except Exception as exc:
            log.exception("%s channel failed to send message %s", adapter.kind, msg.message_id)
            return DeliveryReceipt("failed", error=f"{type(exc).__name__}: {exc}"[:300])
