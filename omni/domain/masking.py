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


def _mask_number(parsed: phonenumbers.PhoneNumber) -> str:
    national = str(parsed.national_number)
    area_len = phonenumbers.length_of_geographical_area_code(parsed) or (
        phonenumbers.length_of_national_destination_code(parsed)
    )
    area_len = min(area_len or 3, max(0, len(national) - 4))
    area, rest = national[:area_len], national[area_len:]
    return f"+{parsed.country_code} {area} {_star_tail(rest, 2)}".replace("  ", " ")


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
        return _mask_number(parsed)
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


TEXT_REGION = "RU"
"""The region a phone written without ``+`` in free text is read in (``+``-numbers of any
country are found whatever it is)."""
_EMAIL_IN_TEXT = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_PHONEISH = re.compile(r"\d(?:[\s().-]*\d){6}")
"""Seven digits in a row (give or take separators): the cheap test before the phone matcher."""


def mask_text(value: str, region: str | None = None) -> str:
    """Free text (a customer's message, a bot variable) with every phone number and e-mail
    address in it masked as ``mask_phone``/``mask_email`` do, the rest untouched. Phones are
    found by ``phonenumbers.PhoneNumberMatcher`` in ``region`` (leniency VALID: a number
    that the numbering plan allows, so sums, dates and call ids stay as written)."""
    if not value:
        return value
    if "@" in value:
        value = _EMAIL_IN_TEXT.sub(lambda hit: mask_email(hit.group(0)) or "", value)
    if not _PHONEISH.search(value):
        return value
    matcher = phonenumbers.PhoneNumberMatcher(
        value, region or TEXT_REGION, leniency=phonenumbers.Leniency.VALID
    )
    pieces: list[str] = []
    last = 0
    for hit in matcher:
        pieces.append(value[last : hit.start])
        pieces.append(_mask_number(hit.number))
        last = hit.end
    if not pieces:
        return value
    pieces.append(value[last:])
    return "".join(pieces)


TEXT_KEYS = ("body", "previous_body")
"""Message keys masked as text, in messages the customer wrote (``direction == "in"``)."""


def _masked_message(value: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: mask_payload(v) for k, v in value.items()}
    changed = False
    for key in TEXT_KEYS:
        item = value.get(key)
        if isinstance(item, str):
            out[key] = mask_text(item)
            changed = changed or out[key] != item
    if changed:
        out["masked"] = True  # the console offers "reveal" on it
    return out


def mask_payload(value: Any) -> Any:
    """A JSON document as a reader without ``PII_VIEW`` sees it (webhooks, event payloads,
    pages, REST): every phone and e-mail field masked, and the phones and e-mails inside the
    text of customers' messages and inside conversation ``variables`` (what bots collected)."""
    if isinstance(value, Mapping):
        if value.get("direction") == "in" and isinstance(value.get("body"), str):
            return _masked_message(value)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "variables" and isinstance(item, Mapping):
                out[key] = {
                    k: mask_text(v) if isinstance(v, str) else mask_payload(v) for k, v in item.items()
                }
            elif key in PHONE_KEYS and isinstance(item, str):
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

    def body(self, msg: m.Message) -> str:
        """A stored message's text as this reader sees it (only customers' text is masked)."""
        return mask_text(msg.body) if self.masked and msg.direction == "in" else msg.body


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


async def check_reveal_message(session: AsyncSession, who: Principal, message_id: int) -> dict[str, Any]:
    """One message in full (the phones and e-mails a customer wrote in it), for a reader who
    holds ``grants.PII_REVEAL`` (or sees them anyway) and may see its conversation; always
    audited as ``message.reveal``."""
    from omni.domain import audit
    from omni.domain.auth import access_conversation
    from omni.domain.errors import NotFound
    from omni.domain.serialize import message_dict

    if not await grants.allowed(session, who, grants.PII_VIEW):
        await grants.check(session, who, grants.PII_REVEAL)
    msg = await session.get(m.Message, message_id)
    if msg is None:
        raise NotFound("message {message_id} not found", message_id=message_id)
    await access_conversation(session, who, msg.conversation_id)
    audit.record(
        session,
        who,
        "message.reveal",
        object_type="message",
        object_id=msg.id,
        data={"conversation_id": msg.conversation_id},
    )
    return message_dict(msg)


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
