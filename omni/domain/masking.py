"""Field masking: phones and e-mails as a role without ``grants.PII_VIEW`` sees them.

``mask_phone("+79161234512")`` → ``"+7 916 ***-**-12"``: the country and area code stay (the
operator still sees where the customer calls from) and the last two digits (enough to tell two
numbers of one customer apart), the rest is starred. ``mask_email("ivan.petrov@mail.ru")`` →
``"i***@m***.ru"``. Masking happens at the edge, when a row is shaped for a reader (pages,
REST, exports, chosen webhooks); the database keeps the full values, so searching by the full
phone still finds the contact.

``Masker`` carries the caller's decision so sync shaping code (rows of a report, a card dict)
doesn't need the session: ``await masker_for(session, who)`` once, then ``masker.phone(x)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import grants
from omni.domain.auth import Principal

_DIGITS = re.compile(r"\d")
PHONE_KEYS = frozenset({"phone", "contact_phone", "caller_number", "number", "callee_number", "phones"})
EMAIL_KEYS = frozenset({"email", "contact_email"})
"""Payload keys whose values are masked (``mask_payload``)."""


def _star_tail(digits: str, keep: int) -> str:
    """``"1234512"`` → ``"***-**-12"`` (the Russian grouping 3-2-2 of the subscriber number)."""
    shown = digits[-keep:] if keep else ""
    hidden = "*" * (len(digits) - len(shown))
    body = hidden + shown
    if len(body) == 7:
        return f"{body[:3]}-{body[3:5]}-{body[5:]}"
    return body


def mask_phone(value: str | None) -> str | None:
    """A phone number with only its country/area code and last two digits shown.

    International numbers keep ``+CC AREA``; anything unparsable (an extension, a SIP name)
    keeps its last two characters only, so nothing longer than two digits leaks either way.
    """
    if not value:
        return value
    text = value.strip()
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else "RU")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        national = str(parsed.national_number)
        area_len = phonenumbers.length_of_geographical_area_code(parsed) or (
            phonenumbers.length_of_national_destination_code(parsed)
        )
        area_len = min(area_len or 3, max(0, len(national) - 4))
        area, rest = national[:area_len], national[area_len:]
        return f"+{parsed.country_code} {area} {_star_tail(rest, 2)}".replace("  ", " ")
    digits = _DIGITS.findall(text)
    if len(text) <= 2:
        return "*" * len(text)
    return "*" * (len(text) - 2) + text[-2:] if digits else "*" * len(text)


def mask_email(value: str | None) -> str | None:
    """``ivan.petrov@mail.ru`` → ``i***@m***.ru``: first letters and the top-level domain."""
    if not value:
        return value
    local, sep, domain = value.partition("@")
    if not sep:
        return (local[:1] + "***") if local else local
    host, dot, tld = domain.rpartition(".")
    if not dot:
        host, tld = domain, ""
    masked_host = (host[:1] + "***") if host else "***"
    return f"{local[:1]}***@{masked_host}{'.' + tld if tld else ''}"


def mask_payload(value: Any) -> Any:
    """A JSON document with every phone and e-mail field masked (webhooks, event payloads)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in PHONE_KEYS and isinstance(item, str):
                out[key] = mask_phone(item)
            elif key in PHONE_KEYS and isinstance(item, list):
                out[key] = [mask_phone(x) if isinstance(x, str) else x for x in item]
            elif key in EMAIL_KEYS and isinstance(item, str):
                out[key] = mask_email(item)
            elif key == "identities" and isinstance(item, list):
                out[key] = [mask_identity(i) if isinstance(i, Mapping) else i for i in item]
            else:
                out[key] = mask_payload(item)
        return out
    if isinstance(value, list):
        return [mask_payload(v) for v in value]
    return value


def mask_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """A contact identity (``{"kind", "value"}``) with a phone or e-mail value masked."""
    out = dict(identity)
    if out.get("kind") == "phone":
        out["value"] = mask_phone(out.get("value"))
    elif out.get("kind") == "email":
        out["value"] = mask_email(out.get("value"))
    return out


@dataclass(frozen=True, slots=True)
class Masker:
    """One reader's masking decision, applied by sync shaping code."""

    masked: bool

    def phone(self, value: str | None) -> str | None:
        return mask_phone(value) if self.masked else value

    def email(self, value: str | None) -> str | None:
        return mask_email(value) if self.masked else value

    def payload(self, value: Any) -> Any:
        return mask_payload(value) if self.masked else value


UNMASKED = Masker(False)


async def masker_for(session: AsyncSession, who: Principal) -> Masker:
    """Masked unless the caller's role holds ``grants.PII_VIEW``."""
    return Masker(not await grants.allowed(session, who, grants.PII_VIEW))


async def check_reveal_contact(session: AsyncSession, who: Principal, contact_id: int) -> dict[str, Any]:
    """One contact's phone, e-mail and identities in full, for a reader who holds
    ``grants.PII_REVEAL`` (or sees them anyway) and may see the contact; always audited, so a
    security officer can tell who looked at whose data."""
    from omni.domain import audit
    from omni.domain.auth import access_contact

    if not await grants.allowed(session, who, grants.PII_VIEW):
        await grants.check(session, who, grants.PII_REVEAL)
    contact = await access_contact(session, who, contact_id)
    identities = await session.scalars(
        select(m.ContactIdentity)
        .where(m.ContactIdentity.contact_id == contact.id)
        .order_by(m.ContactIdentity.id)
    )
    audit.record(session, who, "contact.reveal", object_type="contact", object_id=contact.id)
    return {
        "id": contact.id,
        "phone": contact.phone,
        "email": contact.email,
        "identities": [{"id": i.id, "kind": i.kind, "value": i.value} for i in identities],
    }


async def masked_card(session: AsyncSession, who: Principal, card: dict[str, Any]) -> dict[str, Any]:
    """The operator's customer card (``workspace.card_dict``) as this reader may see it: phone,
    e-mail and phone/e-mail card fields masked without ``PII_VIEW``; ``contact.masked`` and
    ``contact.can_reveal`` tell the window whether to offer the reveal button."""
    contact = dict(card["contact"])
    if await grants.allowed(session, who, grants.PII_VIEW):
        contact.update(masked=False, can_reveal=False)
        return {**card, "contact": contact}
    contact.update(
        phone=mask_phone(contact.get("phone")),
        email=mask_email(contact.get("email")),
        masked=True,
        can_reveal=await grants.allowed(session, who, grants.PII_REVEAL),
    )
    fields = []
    for f in card.get("fields", []):
        value = f.get("value")
        if f.get("kind") == "phone" and isinstance(value, str):
            f = {**f, "value": mask_phone(value), "editable": False}
        elif f.get("kind") == "email" and isinstance(value, str):
            f = {**f, "value": mask_email(value), "editable": False}
        fields.append(f)
    return {**card, "contact": contact, "fields": fields}
