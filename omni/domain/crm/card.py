"""Screen-pop: the customer's card from the CRM, fetched when a conversation is offered.

The URL is the admin's template filled with the contact's phone, e-mail and identity
(URL-encoded); the request is a GET signed like our webhooks (``X-Omni-Timestamp``,
``X-Omni-Signature: sha256=HMAC(secret, "<timestamp>.<url>")``) with the admin's timeout. A card
is cached by its URL for ``fetch_cache_seconds`` in the database (every node shares it, and
the push on close sends it). A CRM that is slow, down or answers garbage gives a quiet note
(``status`` ``unavailable``) instead of a card: it never blocks or fails the offer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.domain.auth import Principal, access_conversation
from omni.domain.crm.config import CACHE_SECONDS, PLACEHOLDERS, get_settings
from omni.domain.events import DomainEvent
from omni.domain.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

log = logging.getLogger(__name__)

MAX_FIELDS = 30
MAX_VALUE = 500
MAX_BODY = 256 * 1024
KEEP_SECONDS = CACHE_SECONDS[1]
"""Older cached cards are deleted whenever a card is stored."""


async def template_values(session: AsyncSession, conv: m.Conversation) -> dict[str, str]:
    """What the placeholders stand for: the contact's phone and e-mail, and the identity of
    the conversation's channel (a Telegram id, a caller number...), else its first one."""
    contact = await session.get(m.Contact, conv.contact_id)
    identities = list(
        await session.scalars(
            select(m.ContactIdentity)
            .where(m.ContactIdentity.contact_id == conv.contact_id)
            .order_by(m.ContactIdentity.id)
        )
    )
    own = next((i for i in identities if i.kind == conv.channel), identities[0] if identities else None)
    return {
        "phone": (contact.phone if contact else None) or "",
        "email": (contact.email if contact else None) or "",
        "identity": own.value if own else "",
        "identity_kind": own.kind if own else "",
        "contact_id": str(conv.contact_id),
        "conversation_id": str(conv.id),
        "channel": conv.channel,
    }


def render_url(template: str, values: dict[str, str]) -> str:
    return template.format(**{k: quote(values.get(k, ""), safe="") for k in PLACEHOLDERS})


def signed_headers(secret: str, url: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Accept": "application/json",
        "User-Agent": "Omni-CRM/1",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, url.encode()),
    }


def _scalar(value: Any) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return text[:MAX_VALUE]


def normalise(data: Any) -> dict[str, Any] | None:
    """The CRM's JSON object as a card: ``title``, ``url`` and ``fields`` (a list of
    ``{"label", "value"}`` or a flat object); None when it is not a JSON object."""
    if not isinstance(data, dict):
        return None
    raw = data.get("fields", {k: v for k, v in data.items() if k not in ("title", "url")})
    fields: list[dict[str, str]] = []
    if isinstance(raw, list):
        fields = [
            {"label": _scalar(item["label"]), "value": _scalar(item.get("value"))}
            for item in raw
            if isinstance(item, dict) and "label" in item
        ]
    elif isinstance(raw, dict):
        fields = [
            {"label": _scalar(k), "value": _scalar(v)}
            for k, v in raw.items()
            if not isinstance(v, dict | list)
        ]
    url = _scalar(data.get("url"))
    return {
        "title": _scalar(data.get("title")),
        "url": url if url.startswith(("http://", "https://")) else "",
        "fields": fields[:MAX_FIELDS],
    }


async def fetch(
    url: str, secret: str, timeout_ms: int, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """One signed GET; the card, or raises ``CardUnavailable`` naming what went wrong."""
    headers = signed_headers(secret, url)
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=timeout_ms / 1000) as own:
                resp = await own.get(url, headers=headers)
        else:
            resp = await client.get(url, headers=headers, timeout=timeout_ms / 1000)
    except httpx.TimeoutException:
        raise CardUnavailable(f"no answer within {timeout_ms} ms") from None
    except httpx.HTTPError as exc:
        raise CardUnavailable(f"{type(exc).__name__}: {exc}"[:200]) from None
    if resp.status_code == 404:
        return {"title": "", "url": "", "fields": []}  # the CRM does not know this customer
    if not 200 <= resp.status_code < 300:
        raise CardUnavailable(f"HTTP {resp.status_code}")
    if len(resp.content) > MAX_BODY:
        raise CardUnavailable("answer too large")
    try:
        card = normalise(resp.json())
    except ValueError:
        card = None
    if card is None:
        raise CardUnavailable("answer is not a JSON object")
    return card


class CardUnavailable(Exception):
    """The CRM gave no usable card (logged, shown to the operator as a quiet note)."""


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


async def card_for(
    db: Database, who: Principal | None, conversation_id: int, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """The card for a conversation the caller may open (``who=None``: Omni itself, the
    prefetch on offer): ``{"status": "off" | "ok" | "unavailable", "card": {...} | None,
    "cached": bool}``.

    The HTTP call runs outside any transaction: a slow CRM must not hold a database connection.
    """
    async with db.transaction() as session:
        if who is None:
            found = await session.get(m.Conversation, conversation_id)
            if found is None:
                return {"status": "off", "card": None, "cached": False}
            conv = found
        else:
            conv = await access_conversation(session, who, conversation_id)
        cfg = await get_settings(session)
        if not cfg.fetch_url:
            return {"status": "off", "card": None, "cached": False}
        url = render_url(cfg.fetch_url, await template_values(session, conv))
        cached = await session.get(m.CrmCard, _digest(url))
        fresh_after = datetime.now(UTC) - timedelta(seconds=cfg.fetch_cache_seconds)
        if cached is not None and cached.fetched_at >= fresh_after and cfg.fetch_cache_seconds > 0:
            cached.conversation_id = conv.id
            return {"status": "ok", "card": dict(cached.data), "cached": True}
        secret, timeout_ms = cfg.fetch_secret, cfg.fetch_timeout_ms
    try:
        card = await fetch(url, secret, timeout_ms, client)
    except CardUnavailable as exc:
        log.warning("CRM card for conversation %s unavailable: %s", conversation_id, exc)
        return {"status": "unavailable", "card": None, "cached": False}
    try:
        async with db.transaction() as session:
            row = await session.get(m.CrmCard, _digest(url), with_for_update=True)
            if row is None:
                row = m.CrmCard(url_digest=_digest(url))
                session.add(row)
            row.data = card
            row.fetched_at = datetime.now(UTC)
            row.conversation_id = conversation_id
            # Cards are the CRM's personal data: none is kept past the longest cache allowed.
            await session.execute(
                delete(m.CrmCard).where(
                    m.CrmCard.fetched_at < row.fetched_at - timedelta(seconds=KEEP_SECONDS)
                )
            )
    except IntegrityError:
        pass  # another node cached the same card at the same moment: theirs is as good
    return {"status": "ok", "card": card, "cached": False}


async def last_card(session: AsyncSession, conversation_id: int) -> dict[str, Any] | None:
    """The card last fetched for this conversation (what a push sends), if any."""
    row = await session.scalar(
        select(m.CrmCard)
        .where(m.CrmCard.conversation_id == conversation_id)
        .order_by(m.CrmCard.fetched_at.desc())
        .limit(1)
    )
    return dict(row.data) if row is not None else None


@dataclass
class OfferPrefetch:
    """Post-commit relay sink: each ``conversation.offered`` starts the card fetch at once, so
    the card is cached when the operator's window asks and a push on close carries it even if
    no window asked. The fetches run as tasks (at most ``concurrency`` at a time): the relay's
    other post-commit sinks (channel sends) never wait for a CRM."""

    db: Database
    concurrency: int = 8
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _slots: asyncio.Semaphore | None = None

    async def __call__(self, events: Sequence[DomainEvent]) -> None:
        offered = {e.conversation_id for e in events if e.type == "conversation.offered"}
        for conversation_id in sorted(c for c in offered if c):
            task = asyncio.create_task(self._fetch(conversation_id))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _fetch(self, conversation_id: int) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            try:
                await card_for(self.db, None, conversation_id)
            except Exception:  # a prefetch is a courtesy: log it, the window asks again
                log.exception("CRM card prefetch for conversation %s failed", conversation_id)
