"""CRM webhooks: subscriptions, signed at-least-once delivery with backoff, do_replay_delivery.

Deliveries are rows created in the relay's transaction, one per (subscription, event), so a
CRM that is down keeps its queue of deliveries until it is back. Whatever runs the HTTP call
(a Celery task, the sweeper) goes through ``do_deliver()``, which locks the row first.

The last part is webhook administration (subscriptions, their deliveries, do_replay_delivery), which
checks role itself like the rest of ``omni.domain.admin`` (where its names are re-exported).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    ADMIN,
    DELIVERY_STATES,
    MIN_WEBHOOK_SECRET,
    Checker,
    _apply,
    _audit,
    _boolean,
    _choice,
    _clean,
    _ensure_unique,
    _flush,
    _get,
    _id_list,
    _iso,
    _mapping,
    _new,
    _referenced,
    _strings,
    _text,
    clamp_limit,
)
from omni.domain.auth import Principal, check_role
from omni.domain.errors import InvalidInput, NotFound
from omni.domain.events import DomainEvent, probed
from omni.domain.masking import mask_payload
from omni.i18n import _l
from omni.settings import WebhookSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Omni-Signature"
TIMESTAMP_HEADER = "X-Omni-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + HMAC-SHA256 over ``"{timestamp}.{body}"`` (the timestamp stops replays)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: int = 300) -> bool:
    """What a CRM runs on receipt (documented in docs/webhooks.md)."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False  # the header comes from the network: garbage fails the check, not the CRM
    if abs(time.time() - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def check_subscription(url: str, event_types: list[str], filter_: dict[str, Any]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("webhook URL must be an absolute http(s) URL", field="url")
    for et in event_types:
        if not et or " " in et:
            raise InvalidInput("bad event type '{et}'", et=et, field="event_types")
    unknown = set(filter_) - {"queue_ids", "channels"}
    if unknown:
        raise InvalidInput("unknown filter keys: {keys}", keys=", ".join(sorted(unknown)), field="filter")


def matches(sub: m.WebhookSubscription, event: DomainEvent) -> bool:
    """Event type (exact or ``prefix.*``) and filter (queues, channels) both have to match."""
    if sub.event_types:
        ok = any(
            et == event.type or (et.endswith(".*") and event.type.startswith(et[:-1])) or et == "*"
            for et in sub.event_types
        )
        if not ok:
            return False
    flt = sub.filter or {}
    if flt.get("queue_ids") and event.queue_id not in flt["queue_ids"]:
        return False
    channel = event.payload.get("channel")
    return not (flt.get("channels") and channel not in flt["channels"])


def fanout_sink(enqueue: Callable[[list[int]], None]) -> Callable[[AsyncSession, Sequence[DomainEvent]], Any]:
    """Relay tx-sink: one delivery row per matching subscription, enqueued after commit.

    Probed (:func:`~omni.domain.events.probed`): with no active subscription the relay skips
    it without a statement; a subscription created on any node is in the snapshot of the next
    batch read after its commit."""

    async def sink(session: AsyncSession, events: Sequence[DomainEvent]) -> Callable[[], None] | None:
        subs = (
            await session.scalars(select(m.WebhookSubscription).where(m.WebhookSubscription.active.is_(True)))
        ).all()
        if not subs:
            return None
        rows: list[m.WebhookDelivery] = []
        now = datetime.now(UTC)
        for event in events:
            for sub in subs:
                if matches(sub, event):
                    row = m.WebhookDelivery(
                        subscription_id=sub.id,
                        event_id=event.id,
                        state="pending",
                        attempts=0,
                        next_attempt_at=now,
                        last_error="",
                        created_at=now,
                    )
                    session.add(row)
                    rows.append(row)
        if not rows:
            return None
        await session.flush()
        ids = [r.id for r in rows]
        return lambda: enqueue(ids)

    return probed(sink, exists().where(m.WebhookSubscription.active.is_(True)))


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    retry_in: float | None
    """Seconds until the next attempt, or None when nothing more is to be done."""


def backoff(attempts: int, cfg: WebhookSettings) -> float:
    return float(min(cfg.backoff_max_seconds, cfg.backoff_base_seconds * (2 ** max(0, attempts - 1))))


async def do_deliver(
    db: Database,
    delivery_id: int,
    cfg: WebhookSettings,
    client: httpx.AsyncClient | None = None,
    *,
    base_url: str = "",
) -> Outcome:
    """Try one delivery now, if it is pending and due; record the result.

    A subscription of a CRM kind (``omni.domain.crm``) builds and sends its own requests;
    ``base_url`` (the install's public URL) makes the links it sends absolute."""
    async with db.transaction() as session:
        row = await session.scalar(
            select(m.WebhookDelivery)
            .where(m.WebhookDelivery.id == delivery_id)
            .with_for_update(skip_locked=True)
        )
        now = datetime.now(UTC)
        if row is None or row.state != "pending":
            return Outcome(row is not None and row.state == "succeeded", None)
        if row.next_attempt_at > now + timedelta(seconds=0.05):
            return Outcome(False, (row.next_attempt_at - now).total_seconds())
        sub = await session.get(m.WebhookSubscription, row.subscription_id)
        event = await session.get(m.Event, row.event_id)
        if sub is None or event is None or not sub.active:
            row.state = "failed"
            row.last_error = "subscription inactive or event gone"
            return Outcome(False, None)
        if sub.kind != "generic":
            from omni.domain import crm  # crm builds on this module: imported when first needed

            row.attempts += 1
            crm_status, crm_error = await crm.send(
                session, sub, DomainEvent.from_row(event), row.id, cfg, client, base_url
            )
            return _record(row, sub.url, crm_status, crm_error, cfg)
        wire = DomainEvent.from_row(event).to_wire()
        if await session.get(m.MaskedWebhook, sub.id) is not None:  # the admin's choice (grants)
            wire = mask_payload(wire)
        body = json.dumps(
            {
                "delivery_id": row.id,
                "subscription_id": sub.id,
                "event": wire,
            },
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Omni-Webhooks/1",
            "X-Omni-Event": event.type,
            "X-Omni-Delivery": str(row.id),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(sub.secret, timestamp, body),
        }
        row.attempts += 1
        error = ""
        status: int | None = None
        try:
            if client is None:
                async with httpx.AsyncClient(timeout=cfg.timeout_seconds) as own:
                    resp = await own.post(sub.url, content=body, headers=headers)
            else:
                resp = await client.post(sub.url, content=body, headers=headers)
            status = resp.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {resp.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        row.last_status_code = status
        if not error:
            row.state = "succeeded"
            row.delivered_at = datetime.now(UTC)
            row.last_error = ""
            return Outcome(True, None)
        row.last_error = error
        if row.attempts >= cfg.max_attempts:
            row.state = "failed"
            log.warning("webhook delivery %s to %s failed for good: %s", row.id, sub.url, error)
            return Outcome(False, None)
        delay = backoff(row.attempts, cfg)
        row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
        log.info("webhook delivery %s to %s failed (%s); retry in %.1fs", row.id, sub.url, error, delay)
        return Outcome(False, delay)


def _record(
    row: m.WebhookDelivery, url: str, status: int | None, error: str, cfg: WebhookSettings
) -> Outcome:
    """The bookkeeping of one attempt of a CRM kind (the generic path does the same inline)."""
    row.last_status_code = status
    if not error:
        row.state = "succeeded"
        row.delivered_at = datetime.now(UTC)
        row.last_error = ""
        return Outcome(True, None)
    row.last_error = error[:500]
    if row.attempts >= cfg.max_attempts:
        row.state = "failed"
        log.warning("CRM delivery %s to %s failed for good: %s", row.id, url, error)
        return Outcome(False, None)
    delay = backoff(row.attempts, cfg)
    row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
    log.info("CRM delivery %s failed (%s); retry in %.1fs", row.id, error, delay)
    return Outcome(False, delay)


async def stale_due(db: Database, *, slack_seconds: float = 30.0, limit: int = 500) -> list[int]:
    """Pending deliveries overdue by more than ``slack``: their queued task was lost.

    Their due time moves to now, so a sweep re-enqueues each one at most once per ``slack``
    even while the worker is down (no pile of duplicate tasks).
    """
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=slack_seconds)
    async with db.transaction() as session:
        ids = list(
            await session.scalars(
                select(m.WebhookDelivery.id)
                .where(m.WebhookDelivery.state == "pending", m.WebhookDelivery.next_attempt_at <= cutoff)
                .order_by(m.WebhookDelivery.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            await session.execute(
                update(m.WebhookDelivery).where(m.WebhookDelivery.id.in_(ids)).values(next_attempt_at=now)
            )
        return ids


async def do_replay_delivery(session: AsyncSession, delivery_id: int) -> m.WebhookDelivery:
    """Send a delivery again (after a failure, or because the CRM lost it)."""
    row = await session.scalar(
        select(m.WebhookDelivery).where(m.WebhookDelivery.id == delivery_id).with_for_update()
    )
    if row is None:
        raise NotFound("webhook delivery {delivery_id} not found", delivery_id=delivery_id)
    row.state = "pending"
    row.attempts = 0
    row.next_attempt_at = datetime.now(UTC)
    row.last_error = ""
    return row


def delivery_dict(d: m.WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "subscription_id": d.subscription_id,
        "event_id": d.event_id,
        "state": d.state,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.isoformat(),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": d.created_at.isoformat(),
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
    }


# --- webhooks -----------------------------------------------------------------------------


def _filter(field: str, value: Any) -> dict[str, Any]:
    flt = _mapping(field, value)
    out: dict[str, Any] = {}
    for key, item in flt.items():
        if key == "queue_ids":
            out[key] = _id_list(f"{field}.queue_ids", item)
        elif key == "channels":
            out[key] = _strings(32)(f"{field}.channels", item)
        else:
            out[key] = item  # check_subscription names unknown keys
    return out


_WEBHOOK_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "url": _text(2048),
    "secret": _text(128, strip=False),
    "event_types": _strings(64),
    "filter": _filter,
    "active": _boolean,
}


def webhook_dict(w: m.WebhookSubscription) -> dict[str, Any]:
    """Without the secret: it is shown once, when the subscription is created."""
    return {
        "id": w.id,
        "name": w.name,
        "url": w.url,
        "event_types": list(w.event_types or []),
        "filter": dict(w.filter or {}),
        "active": w.active,
        "created_at": _iso(w.created_at),
    }


async def _check_webhook(
    session: AsyncSession,
    clean: Mapping[str, Any],
    hook: m.WebhookSubscription,
    own_id: int | None,
) -> None:
    if "secret" in clean and len(clean["secret"]) < MIN_WEBHOOK_SECRET:
        raise InvalidInput(
            "secret must be at least {min_webhook_secret} characters (or leave it out and one is generated)",
            min_webhook_secret=MIN_WEBHOOK_SECRET,
            field="secret",
        )
    check_subscription(
        clean.get("url", hook.url),
        clean.get("event_types", hook.event_types or []),
        clean.get("filter", hook.filter or {}),
    )
    for i, qid in enumerate(clean.get("filter", {}).get("queue_ids", [])):
        await _referenced(session, m.Queue, qid, f"filter.queue_ids[{i}]", "queue")
    if "name" in clean:
        await _ensure_unique(
            session,
            m.WebhookSubscription.name,
            m.WebhookSubscription.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a webhook named '{value}' already exists"),
        )


async def list_webhooks(session: AsyncSession, who: Principal, *, limit: int) -> list[m.WebhookSubscription]:
    check_role(who, ADMIN)
    return list(
        await session.scalars(
            select(m.WebhookSubscription).order_by(m.WebhookSubscription.id).limit(clamp_limit(limit))
        )
    )


async def check_create_webhook(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> tuple[m.WebhookSubscription, str]:
    """Returns the subscription and its secret, which the caller shows this once."""
    check_role(who, ADMIN)
    clean = _clean(data, _WEBHOOK_FIELDS, ("name", "url"))
    hook = _new(m.WebhookSubscription)
    await _check_webhook(session, clean, hook, None)
    clean.setdefault("secret", secrets.token_urlsafe(32))
    _apply(hook, clean)
    session.add(hook)
    await _flush(session)
    _audit(session, who, "webhook.create", "webhook", hook.id, data)
    _changed(session, "webhook", hook.id, "created")
    return hook, hook.secret


async def check_update_webhook(
    session: AsyncSession, who: Principal, webhook_id: int, data: Mapping[str, Any]
) -> m.WebhookSubscription:
    check_role(who, ADMIN)
    hook = await _get(session, m.WebhookSubscription, webhook_id, "webhook")
    clean = _clean(data, _WEBHOOK_FIELDS)
    await _check_webhook(session, clean, hook, hook.id)
    _apply(hook, clean)
    await _flush(session)
    _audit(session, who, "webhook.update", "webhook", hook.id, data)
    _changed(session, "webhook", hook.id, "updated")
    return hook


async def check_delete_webhook(session: AsyncSession, who: Principal, webhook_id: int) -> None:
    """Its deliveries go with it; pending ones are simply not sent."""
    check_role(who, ADMIN)
    hook = await _get(session, m.WebhookSubscription, webhook_id, "webhook")
    await session.delete(hook)
    await _flush(session)
    _audit(session, who, "webhook.delete", "webhook", webhook_id, {"name": hook.name})
    _changed(session, "webhook", webhook_id, "deleted")


async def list_deliveries(
    session: AsyncSession, who: Principal, webhook_id: int, *, state: str | None, limit: int
) -> list[m.WebhookDelivery]:
    check_role(who, ADMIN)
    await _get(session, m.WebhookSubscription, webhook_id, "webhook")
    stmt = (
        select(m.WebhookDelivery)
        .where(m.WebhookDelivery.subscription_id == webhook_id)
        .order_by(m.WebhookDelivery.id.desc())
        .limit(clamp_limit(limit))
    )
    if state is not None:
        stmt = stmt.where(m.WebhookDelivery.state == _choice(DELIVERY_STATES)("state", state))
    return list(await session.scalars(stmt))


async def check_replay_delivery(session: AsyncSession, who: Principal, delivery_id: int) -> m.WebhookDelivery:
    """Marks the delivery pending again; the caller enqueues it once this commits."""
    check_role(who, ADMIN)
    row = await do_replay_delivery(session, delivery_id)
    _audit(session, who, "webhook_delivery.replay", "webhook_delivery", row.id, {})
    return row


# --- delivery log and test send (admin pages and REST) ------------------------------------

TEST_EVENT_TYPE = "webhook.test"
"""The event type of a test send; a receiver can tell it from real traffic by this alone."""
LOG_PAGE = 50


def delivery_detail_dict(d: m.WebhookDelivery, event: m.Event | None) -> dict[str, Any]:
    """A delivery with the event it carries, as the receiver got it (the payload view)."""
    return {
        **delivery_dict(d),
        "event_type": event.type if event is not None else None,
        "event": DomainEvent.from_row(event).to_wire() if event is not None else None,
    }


async def list_delivery_log(
    session: AsyncSession,
    who: Principal,
    *,
    webhook_id: int | None = None,
    state: str | None = None,
    event_type: str | None = None,
    before_id: int | None = None,
    limit: int = LOG_PAGE,
) -> list[tuple[m.WebhookDelivery, m.Event | None]]:
    """Newest first across one or every subscription, with the events (their type and payload);
    ``before_id`` pages back; ``event_type`` may end in ``.*`` for a prefix."""
    check_role(who, ADMIN)
    if webhook_id is not None:
        await _get(session, m.WebhookSubscription, webhook_id, "webhook")
    stmt = (
        select(m.WebhookDelivery, m.Event)
        .outerjoin(m.Event, m.Event.id == m.WebhookDelivery.event_id)
        .order_by(m.WebhookDelivery.id.desc())
        .limit(clamp_limit(limit))
    )
    if webhook_id is not None:
        stmt = stmt.where(m.WebhookDelivery.subscription_id == webhook_id)
    if state:
        stmt = stmt.where(m.WebhookDelivery.state == _choice(DELIVERY_STATES)("state", state))
    if event_type:
        if event_type.endswith(".*"):
            stmt = stmt.where(m.Event.type.startswith(event_type[:-1], autoescape=True))
        else:
            stmt = stmt.where(m.Event.type == event_type)
    if before_id is not None:
        stmt = stmt.where(m.WebhookDelivery.id < before_id)
    return [(d, e) for d, e in (await session.execute(stmt)).all()]


async def access_delivery(
    session: AsyncSession, who: Principal, delivery_id: int
) -> tuple[m.WebhookDelivery, m.Event | None]:
    check_role(who, ADMIN)
    row = await session.get(m.WebhookDelivery, delivery_id)
    if row is None:
        raise NotFound("webhook delivery {delivery_id} not found", delivery_id=delivery_id)
    return row, await session.get(m.Event, row.event_id)
