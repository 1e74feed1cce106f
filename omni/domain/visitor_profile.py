"""What a site tells Omni about its visitor through the widget's JavaScript API
(``Omni.setUser`` / ``Omni.setCustomAttributes``, docs/widget.md).

The browser is not trusted: every value is checked and bounded here, and a refusal changes
nothing (the whole call is refused, never half applied), so a broken or hostile page can't
leave a corrupted card behind. Custom attributes land in the contact's card fields
(``custom_fields``) the operator already sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.checks import _email, _optional, _text
from omni.domain.contacts import NAME_MAX, do_apply_phone, do_resolve_contact, normalise_phone
from omni.domain.errors import InvalidInput

MAX_ATTRIBUTES = 50
"""Attributes one contact may carry from the site (the card stays readable)."""
MAX_ATTRIBUTE_VALUE = 1000
"""Characters of one string value."""
MAX_ATTRIBUTES_BYTES = 16 * 1024
"""The JSON size of all site attributes of a contact together."""
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
"""Letters, digits, ``_ . -``, at most 64: a key that reads as a card field label."""

_USER_FIELDS = {
    "name": _text(NAME_MAX, allow_empty=True),
    "email": _optional(_email),
    "phone": _optional(_text(64)),
}


def clean_user(data: Mapping[str, Any]) -> dict[str, Any]:
    """``setUser``'s fields, checked: unknown keys are refused by name."""
    unknown = sorted(set(data) - set(_USER_FIELDS))
    if unknown:
        raise InvalidInput("unknown field '{name}'", field=unknown[0], name=unknown[0])
    return {key: _USER_FIELDS[key](key, value) for key, value in data.items()}


def clean_attributes(data: Mapping[str, Any]) -> dict[str, str | int | float | bool | None]:
    """``setCustomAttributes``' values: scalars only; ``null`` removes an attribute."""
    out: dict[str, str | int | float | bool | None] = {}
    for key, value in data.items():
        if not ATTRIBUTE_KEY.match(key):
            raise InvalidInput(
                "attribute name '{name}' must be 1-64 letters, digits, '_', '.' or '-'",
                field="attributes",
                name=str(key)[:80],
            )
        if isinstance(value, str):
            if len(value) > MAX_ATTRIBUTE_VALUE or "\x00" in value:
                raise InvalidInput(
                    "attribute '{name}' must be at most {max_len} characters of text",
                    field="attributes",
                    name=key,
                    max_len=MAX_ATTRIBUTE_VALUE,
                )
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if abs(value) > 2**53:
                raise InvalidInput("attribute '{name}' is too large a number", field="attributes", name=key)
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise InvalidInput("attribute '{name}' is not a number", field="attributes", name=key)
        else:
            raise InvalidInput(
                "attribute '{name}' must be text, a number, true/false or null", field="attributes", name=key
            )
        out[key] = value
    return out


async def do_set_visitor_user(
    session: AsyncSession, identity_kind: str, identity: str, user: Mapping[str, Any]
) -> m.Contact:
    """Name, e-mail and phone of the visitor's contact (created if the visitor hasn't written
    yet, so the card is filled when the first message arrives). ``None``/empty clears e-mail
    and phone; an empty name leaves the name alone."""
    clean = clean_user(user)
    if clean.get("phone"):
        normalise_phone(clean["phone"])  # refused before anything changes
    contact = await do_resolve_contact(session, identity_kind, identity)
    if clean.get("name"):
        contact.name = clean["name"]
    if "email" in clean:
        contact.email = clean["email"]
    if "phone" in clean:
        if clean["phone"]:
            do_apply_phone(contact, clean["phone"])
        else:
            contact.phone = contact.region = contact.timezone = None
    await session.flush()
    return contact


async def do_set_visitor_attributes(
    session: AsyncSession, identity_kind: str, identity: str, attributes: Mapping[str, Any]
) -> m.Contact:
    """Merge site attributes into the contact's card fields; refused whole past the limits."""
    clean = clean_attributes(attributes)
    contact = await do_resolve_contact(session, identity_kind, identity)
    merged: dict[str, Any] = dict(contact.custom_fields or {})
    for key, value in clean.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_ATTRIBUTES:
        raise InvalidInput(
            "a contact may have at most {max} attributes", field="attributes", max=MAX_ATTRIBUTES
        )
    if len(json.dumps(merged, ensure_ascii=False).encode()) > MAX_ATTRIBUTES_BYTES:
        raise InvalidInput(
            "the attributes must be at most {max} bytes together",
            field="attributes",
            max=MAX_ATTRIBUTES_BYTES,
        )
    contact.custom_fields = merged
    await session.flush()
    return contact
