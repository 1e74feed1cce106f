"""The CRM settings admins edit (``/admin/crm/1``, ``GET/PUT /api/v1/admin/crm``).

One row in the database so every node and the Celery worker agree. Saving the push URL or the
Bitrix24 URL keeps one managed webhook subscription per target (kinds ``crm_push`` and
``bitrix24``, event ``conversation.closed``), so pushes get the webhook machinery's retries,
delivery log and replay without a second sender. Clearing a URL deletes its subscription.
"""

from __future__ import annotations

import secrets
import string
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, PermissionDenied

ROW_ID = 1
PLACEHOLDERS = ("phone", "email", "identity", "identity_kind", "contact_id", "conversation_id", "channel")
"""What a card URL template may contain (each value URL-encoded)."""
ENTITIES = ("lead", "deal")
MIN_SECRET = 16
TIMEOUT_MS = (100, 10_000)
CACHE_SECONDS = (0, 86_400)
PUSH_KIND = "crm_push"
BITRIX_KIND = "bitrix24"
PUSH_EVENT = "conversation.closed"
SECRET_KEYS = ("fetch_secret", "push_secret")


async def get_settings(session: AsyncSession) -> m.CrmSettings:
    """The row, or unsaved defaults (nothing configured) before an admin first saves."""
    row = await session.get(m.CrmSettings, ROW_ID)
    if row is not None:
        return row
    return m.CrmSettings(
        id=ROW_ID,
        fetch_url="",
        fetch_secret="",
        fetch_timeout_ms=2000,
        fetch_cache_seconds=300,
        push_url="",
        push_secret="",
        bitrix_url="",
        bitrix_entity="lead",
        bitrix_user_id=1,
    )


def settings_dict(row: m.CrmSettings) -> dict[str, Any]:
    """Without the secrets: only whether each is set."""
    return {
        "fetch_url": row.fetch_url,
        "fetch_secret_set": bool(row.fetch_secret),
        "fetch_timeout_ms": row.fetch_timeout_ms,
        "fetch_cache_seconds": row.fetch_cache_seconds,
        "push_url": row.push_url,
        "push_secret_set": bool(row.push_secret),
        "push_subscription_id": row.push_subscription_id,
        "bitrix_url": mask_bitrix_url(row.bitrix_url),
        "bitrix_entity": row.bitrix_entity,
        "bitrix_user_id": row.bitrix_user_id,
        "bitrix_subscription_id": row.bitrix_subscription_id,
    }


def mask_bitrix_url(url: str) -> str:
    """The incoming-webhook URL carries its token (``/rest/<user>/<token>/``): pages and REST
    show it hidden, and saving the hidden form back keeps the stored one."""
    parts = url.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-1]:
        parts[-1] = "***"
        return "/".join(parts) + "/"
    return url


def _http_url(field: str, value: str) -> None:
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 bracket
        ok = False
    if not ok:
        raise InvalidInput("{field} must be an absolute http(s) URL", field=field)


def check_template(value: str) -> None:
    """Only known placeholders, balanced braces, and an http(s) URL once filled in."""
    try:
        names = [name for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
        specs = [(spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
    except ValueError:
        raise InvalidInput("{field} has unbalanced braces", field="fetch_url") from None
    for name in names:
        if name not in PLACEHOLDERS:
            raise InvalidInput(
                "unknown placeholder '{name}' (known: {known})",
                field="fetch_url",
                name=name,
                known=", ".join(PLACEHOLDERS),
            )
    if any(spec or conv for spec, conv in specs):
        raise InvalidInput("{field}: placeholders take no format or conversion", field="fetch_url")
    _http_url("fetch_url", value.format(**dict.fromkeys(PLACEHOLDERS, "1")))


def _text(field: str, value: Any, max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput("{field} must be a string", field=field)
    text = value.strip()
    if len(text) > max_len:
        raise InvalidInput("{field} must be at most {max_len} characters", field=field, max_len=max_len)
    return text


def _int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("{field} must be a whole number", field=field)
    if not low <= value <= high:
        raise InvalidInput("{field} must be between {min} and {max}", field=field, min=low, max=high)
    return value


def _secret(field: str, value: Any) -> str:
    text = _text(field, value, 128)
    if text and len(text) < MIN_SECRET:
        raise InvalidInput("{field} must be at least {min} characters", field=field, min=MIN_SECRET)
    return text


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    problems: list[InvalidInput] = []
    for key, value in values.items():
        try:
            if key in ("fetch_url", "push_url", "bitrix_url"):
                url = _text(key, value, 2048)
                if url and key == "fetch_url":
                    check_template(url)
                elif url:
                    _http_url(key, url)
                if url and key == "bitrix_url" and not url.endswith("/"):
                    url += "/"
                clean[key] = url
            elif key in SECRET_KEYS:
                clean[key] = _secret(key, value)
            elif key == "fetch_timeout_ms":
                clean[key] = _int(key, value, *TIMEOUT_MS)
            elif key == "fetch_cache_seconds":
                clean[key] = _int(key, value, *CACHE_SECONDS)
            elif key == "bitrix_user_id":
                clean[key] = _int(key, value, 1, 2**31 - 1)
            elif key == "bitrix_entity":
                if value not in ENTITIES:
                    raise InvalidInput(
                        "{field} must be one of: {options}", field=key, options=", ".join(ENTITIES)
                    )
                clean[key] = value
            else:
                raise InvalidInput("unknown field '{field}'", field=key)
        except InvalidInput as exc:
            problems.append(exc)
    if problems:
        first = problems[0]
        raise InvalidInput(
            first.template, field=first.field, errors=problems if len(problems) > 1 else (), **first.params
        )
    return clean


async def _sync_subscription(
    session: AsyncSession, sub_id: int | None, *, kind: str, name: str, url: str, secret: str
) -> int | None:
    """Create, update or delete the managed subscription behind one push target."""
    sub = await session.get(m.WebhookSubscription, sub_id) if sub_id is not None else None
    if not url:
        if sub is not None:
            await session.delete(sub)
        return None
    if sub is None:
        sub = m.WebhookSubscription(name=name, filter={}, active=True, kind=kind)
        session.add(sub)
    sub.url = url
    sub.secret = secret or sub.secret or secrets.token_urlsafe(32)
    sub.event_types = [PUSH_EVENT]
    sub.kind = kind
    sub.active = True
    await session.flush()
    return sub.id


async def check_update_settings(
    session: AsyncSession, who: Principal, values: dict[str, Any]
) -> m.CrmSettings:
    """Admins change what they send; a secret left empty keeps the stored one; audited
    (without the secrets)."""
    if not who.is_admin:
        raise PermissionDenied("only an admin changes the CRM settings")
    clean = _clean(values)
    for key in SECRET_KEYS:
        if key in clean and not clean[key]:
            del clean[key]  # an empty secret field in the form means "keep it"
    row = await session.get(m.CrmSettings, ROW_ID, with_for_update=True)
    if row is None:
        row = await get_settings(session)
        session.add(row)
    if row.bitrix_url and clean.get("bitrix_url") == mask_bitrix_url(row.bitrix_url):
        del clean["bitrix_url"]
    changes = {k: v for k, v in clean.items() if getattr(row, k) != v}
    for key, value in changes.items():
        setattr(row, key, value)
    for url_key, secret_key in (("fetch_url", "fetch_secret"), ("push_url", "push_secret")):
        if getattr(row, url_key) and not getattr(row, secret_key):
            raise InvalidInput("{field} is required with {url}", field=secret_key, url=url_key)
    row.push_subscription_id = await _sync_subscription(
        session,
        row.push_subscription_id,
        kind=PUSH_KIND,
        name="crm: push",
        url=row.push_url,
        secret=row.push_secret,
    )
    row.bitrix_subscription_id = await _sync_subscription(
        session,
        row.bitrix_subscription_id,
        kind=BITRIX_KIND,
        name="crm: bitrix24",
        url=row.bitrix_url,
        secret="",
    )
    if changes:
        audit.record(
            session,
            who,
            "crm.update",
            object_type="crm",
            object_id=ROW_ID,
            data={
                k: ("***" if k in SECRET_KEYS else mask_bitrix_url(v) if k == "bitrix_url" else v)
                for k, v in changes.items()
            },
        )
    await session.flush()
    return row
