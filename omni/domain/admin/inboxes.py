"""Inboxes: channel instances, their routing queue, config and widget secret."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni import crypto
from omni.db import models as m
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    _OPTIONAL_ID,
    ADMIN,
    SUPERVISOR,
    Checker,
    _apply,
    _audit,
    _boolean,
    _clean,
    _ensure_unique,
    _flush,
    _get,
    _mapping,
    _masked,
    _new,
    _referenced,
    _text,
    clamp_limit,
)
from omni.domain.auth import (
    Principal,
    check_role,
)
from omni.domain.errors import Conflict, InvalidInput
from omni.i18n import _l

# --- inboxes ------------------------------------------------------------------------------

_INBOX_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "channel": _text(32, no_spaces=True),
    "queue_id": _OPTIONAL_ID,
    "config": _mapping,
    "active": _boolean,
}


def inbox_dict(i: m.Inbox, *, show_secrets: bool) -> dict[str, Any]:
    """Never the encrypted secret; tokens inside ``config`` only for admins."""
    config = dict(i.config or {})
    return {
        "id": i.id,
        "name": i.name,
        "channel": i.channel,
        "queue_id": i.queue_id,
        "public_token": i.public_token,
        "config": config if show_secrets else _masked(config),
        "active": i.active,
    }


async def check_rotate_inbox_secret(
    session: AsyncSession, who: Principal, inbox_id: int, secret_key: str
) -> str:
    """A new widget identity secret (the HMAC key sites sign user ids with), stored encrypted
    and returned once; the previous one stops working at once.

    Other channels keep their own credentials in the same column (a Telegram bot token), which a
    rotation would destroy, so they are refused."""
    check_role(who, ADMIN)
    inbox = await _get(session, m.Inbox, inbox_id, "inbox")
    if inbox.channel != "widget":
        raise InvalidInput(
            "only web chat inboxes have an identity secret; '{name}' is a {channel} "
            "inbox whose stored credentials a rotation would destroy",
            name=inbox.name,
            channel=inbox.channel,
            field="channel",
        )
    secret = secrets.token_urlsafe(32)
    inbox.secret_encrypted = crypto.encrypt(secret_key, secret)
    _audit(session, who, "inbox.rotate_secret", "inbox", inbox.id, {})
    _changed(session, "inbox", inbox.id, "updated")
    return secret


async def list_inboxes(session: AsyncSession, who: Principal, *, limit: int) -> list[m.Inbox]:
    check_role(who, ADMIN, SUPERVISOR)
    return list(await session.scalars(select(m.Inbox).order_by(m.Inbox.id).limit(clamp_limit(limit))))


async def access_inbox(session: AsyncSession, who: Principal, inbox_id: int) -> m.Inbox:
    check_role(who, ADMIN, SUPERVISOR)
    return await _get(session, m.Inbox, inbox_id, "inbox")


async def _check_inbox(session: AsyncSession, clean: Mapping[str, Any], own_id: int | None) -> None:
    if "name" in clean:
        await _ensure_unique(
            session,
            m.Inbox.name,
            m.Inbox.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("an inbox named '{value}' already exists"),
        )
    if "queue_id" in clean:
        await _referenced(session, m.Queue, clean["queue_id"], "queue_id", "queue")


_NUMBER = re.compile(r"\+?[0-9]{2,20}")
VOICE_NUMBER_KEYS = ("did", "caller_id")
"""A voice inbox's numbers: ``did`` (the number callers dial; ``DID: <number>`` of
``OmniEnqueue`` finds the inbox, whose queue takes the call) and ``caller_id`` (what the
customer sees when the queue calls out)."""


async def _check_voice_numbers(
    session: AsyncSession, channel: str, config: Mapping[str, Any], own_id: int | None
) -> dict[str, Any]:
    """Numbers are digits with an optional ``+``; one DID reaches one voice inbox only."""
    if channel != "voice":
        return dict(config)
    out = dict(config)
    for key in VOICE_NUMBER_KEYS:
        value = out.get(key)
        if value in (None, ""):
            out.pop(key, None)
            continue
        text = str(value).strip().replace(" ", "").replace("-", "") if isinstance(value, str | int) else None
        if text is None or isinstance(value, bool) or not _NUMBER.fullmatch(text):
            raise InvalidInput(
                "{field} must be a phone number: digits with an optional +, like +74951234567",
                field=f"config.{key}",
            )
        out[key] = text
    did = out.get("did")
    if did:
        others = await session.scalars(
            select(m.Inbox).where(m.Inbox.channel == "voice", m.Inbox.id != (own_id or 0))
        )
        for other in others:
            if str((other.config or {}).get("did", "")) == did:
                raise InvalidInput(
                    "number {did} already reaches voice inbox '{name}'",
                    did=did,
                    name=other.name,
                    field="config.did",
                )
    return out


async def check_create_inbox(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Inbox:
    check_role(who, ADMIN)
    clean = _clean(data, _INBOX_FIELDS, ("name", "channel"))
    await _check_inbox(session, clean, None)
    if "config" in clean:
        clean["config"] = await _check_voice_numbers(session, clean["channel"], clean["config"], None)
    inbox = _new(m.Inbox)
    _apply(inbox, clean)
    inbox.public_token = secrets.token_urlsafe(24)
    session.add(inbox)
    await _flush(session)
    _audit(session, who, "inbox.create", "inbox", inbox.id, data)
    _changed(session, "inbox", inbox.id, "created")
    return inbox


async def check_update_inbox(
    session: AsyncSession, who: Principal, inbox_id: int, data: Mapping[str, Any]
) -> m.Inbox:
    check_role(who, ADMIN)
    inbox = await _get(session, m.Inbox, inbox_id, "inbox")
    clean = _clean(data, _INBOX_FIELDS)
    await _check_inbox(session, clean, inbox.id)
    if "config" in clean:
        channel = clean.get("channel", inbox.channel)
        clean["config"] = await _check_voice_numbers(session, channel, clean["config"], inbox.id)
    _apply(inbox, clean)
    await _flush(session)
    _audit(session, who, "inbox.update", "inbox", inbox.id, data)
    _changed(session, "inbox", inbox.id, "updated")
    return inbox


async def check_delete_inbox(session: AsyncSession, who: Principal, inbox_id: int) -> None:
    """Its conversations stay, detached from the deleted channel instance."""
    check_role(who, ADMIN)
    inbox = await _get(session, m.Inbox, inbox_id, "inbox")
    campaigns = list(
        await session.scalars(
            select(m.Campaign.name).where(m.Campaign.inbox_id == inbox.id, m.Campaign.state != "finished")
        )
    )
    if campaigns:
        raise Conflict(
            "campaigns place contacts from inbox '{name}': {campaigns}; pick another inbox for them first",
            name=inbox.name,
            campaigns=", ".join(campaigns),
        )
    await session.delete(inbox)
    await _flush(session)
    _audit(session, who, "inbox.delete", "inbox", inbox_id, {"name": inbox.name})
    _changed(session, "inbox", inbox_id, "deleted")
