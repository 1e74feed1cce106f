"""Contacts: one customer across channels, found by any of their identities."""

from __future__ import annotations

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as pn_timezone
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.errors import InvalidInput

IDENTITY_KINDS = ("phone", "email", "telegram", "widget", "external")


def normalise_phone(raw: str, default_region: str = "RU") -> str:
    """E.164 form of a phone number, or a clear error."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput("'{raw}' is not a phone number", raw=raw, field="phone") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidInput("'{raw}' is not a possible phone number", raw=raw, field="phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_region_and_timezone(e164: str) -> tuple[str | None, str | None]:
    """Region name and time zone of a number, so operators see the customer's local time."""
    parsed = phonenumbers.parse(e164, None)
    region = geocoder.description_for_number(parsed, "en") or None
    zones = [z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    return region, (zones[0] if zones else None)


def apply_phone(contact: m.Contact, phone: str) -> None:
    contact.phone = normalise_phone(phone)
    contact.region, contact.timezone = phone_region_and_timezone(contact.phone)


async def resolve_contact(
    session: AsyncSession,
    kind: str,
    value: str,
    *,
    name: str = "",
    phone: str | None = None,
    email: str | None = None,
) -> m.Contact:
    """The contact owning identity ``kind:value``, created on first contact."""
    if kind not in IDENTITY_KINDS:
        raise InvalidInput("unknown identity kind '{kind}'", kind=kind, field="identity_kind")
    if not value:
        raise InvalidInput("identity value is empty", field="identity_value")
    if kind == "phone":
        value = normalise_phone(value)
    identity = await session.scalar(
        select(m.ContactIdentity).where(m.ContactIdentity.kind == kind, m.ContactIdentity.value == value)
    )
    if identity is not None:
        contact = await session.get(m.Contact, identity.contact_id)
        assert contact is not None
        if name and not contact.name:
            contact.name = name
        return contact
    contact = m.Contact(name=name, email=email, custom_fields={}, tags=[], blacklisted=False)
    if kind == "phone":
        phone = value
    if phone:
        apply_phone(contact, phone)
    session.add(contact)
    await session.flush()
    session.add(m.ContactIdentity(contact_id=contact.id, kind=kind, value=value))
    await session.flush()
    return contact


async def merge_contacts(session: AsyncSession, keep: m.Contact, drop: m.Contact) -> m.Contact:
    """Join ``drop``'s identities and history into ``keep`` (e.g. a shared phone number)."""
    if keep.id == drop.id:
        return keep
    for model in (m.ContactIdentity, m.Conversation, m.Callback):
        await session.execute(update(model).where(model.contact_id == drop.id).values(contact_id=keep.id))
    keep.custom_fields = {**(drop.custom_fields or {}), **(keep.custom_fields or {})}
    keep.tags = sorted(set(keep.tags or []) | set(drop.tags or []))
    keep.name = keep.name or drop.name
    keep.email = keep.email or drop.email
    keep.blacklisted = keep.blacklisted or drop.blacklisted
    await session.delete(drop)
    await session.flush()
    return keep
