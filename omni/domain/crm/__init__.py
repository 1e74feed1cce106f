"""The CRM integration: screen-pop card fetch on offer, result push on close, Bitrix24.

* ``config``: the settings admins edit and the managed webhook subscriptions behind pushes.
* ``card``: the signed, cached, time-limited card fetch shown in the operator's card.
* ``push``: what a closed conversation sends (``facts``) and the generic signed push.
* ``bitrix``: the Bitrix24 incoming-webhook REST connector.

Pushes are webhook deliveries: ``omni.domain.webhooks.do_deliver`` calls :func:`send` for a
subscription whose ``kind`` is a CRM format, and keeps retries, the log and replay.
"""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.crm import bitrix
from omni.domain.crm.card import CardUnavailable, OfferPrefetch, card_for, last_card, normalise, render_url
from omni.domain.crm.config import (
    BITRIX_KIND,
    PLACEHOLDERS,
    PUSH_KIND,
    ROW_ID,
    check_update_settings,
    get_settings,
    mask_bitrix_url,
    settings_dict,
)
from omni.domain.crm.push import facts, push_result
from omni.domain.events import DomainEvent
from omni.settings import WebhookSettings

__all__ = [
    "BITRIX_KIND",
    "PLACEHOLDERS",
    "PUSH_KIND",
    "ROW_ID",
    "CardUnavailable",
    "OfferPrefetch",
    "card_for",
    "check_update_settings",
    "facts",
    "get_settings",
    "last_card",
    "mask_bitrix_url",
    "normalise",
    "render_url",
    "send",
    "settings_dict",
]


async def send(
    session: AsyncSession,
    sub: m.WebhookSubscription,
    event: DomainEvent,
    delivery_id: int,
    cfg: WebhookSettings,
    client: httpx.AsyncClient | None,
    base_url: str,
) -> tuple[int | None, str]:
    """One attempt of a CRM delivery: ``(last HTTP status, error)``; an empty error is success."""
    if sub.kind == PUSH_KIND:
        return await push_result(session, sub, event, delivery_id, cfg, client, base_url)
    if sub.kind == BITRIX_KIND:
        return await bitrix.push(session, sub, event, cfg, client, base_url)
    return None, f"unknown subscription kind {sub.kind!r}"
