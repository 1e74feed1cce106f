"""Contacts: one customer across channels, found by any of their identities.

The second half is contacts administration (search, create, edit), which checks role and
scope itself like the rest of ``omni.domain.admin`` (where its names are re-exported).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as pn_timezone
from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    ADMIN,
    OPERATOR,
    SUPERVISOR,
    Checker,
    _apply,
    _audit,
    _boolean,
    _clean,
    _deny_auditor,
    _email,
    _flush,
    _iso,
    _mapping,
    _new,
    _optional,
    _strings,
    _text,
    clamp_limit,
)
from omni.domain.auth import Principal, access_contact, check_role, contact_scope_filter
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied

IDENTITY_KINDS = ("phone", "email", "telegram", "widget", "external")
NAME_MAX = 256
"""The contact name column's length (``m.Contact.name``)."""


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


def do_apply_phone(contact: m.Contact, phone: str) -> None:
    contact.phone = normalise_phone(phone)
    contact.region, contact.timezone = phone_region_and_timezone(contact.phone)


def identity_value(kind: str, value: str) -> str:
    """``value`` as identities of ``kind`` are stored (a phone number in E.164), or a clear
    error for an unknown kind or an empty or impossible value."""
    if kind not in IDENTITY_KINDS:
        raise InvalidInput("unknown identity kind '{kind}'", kind=kind, field="identity_kind")
    if not value:
        raise InvalidInput("identity value is empty", field="identity_value")
    return normalise_phone(value) if kind == "phone" else value


def learn_name(contact: m.Contact, name: str) -> None:
    """A contact known only by an identity takes the name the channel first tells."""
    if name and not contact.name:
        contact.name = name[:NAME_MAX]


async def do_resolve_contact(
    session: AsyncSession,
    kind: str,
    value: str,
    *,
    name: str = "",
    phone: str | None = None,
    email: str | None = None,
) -> m.Contact:
    """The contact owning identity ``kind:value``, created on first contact."""
    value = identity_value(kind, value)
    # The identity and its contact in one round trip (every inbound message comes here).
    contact = await session.scalar(
        select(m.Contact)
        .join(m.ContactIdentity, m.ContactIdentity.contact_id == m.Contact.id)
        .where(m.ContactIdentity.kind == kind, m.ContactIdentity.value == value)
    )
    # A name is what the channel says the customer is called (a caller-ID name, a Telegram
    # profile): clipped to the column, never a reason to lose the call or the message.
    name = name[:NAME_MAX]
    if contact is not None:
        learn_name(contact, name)
        return contact
    return await do_create_contact(session, kind, value, name=name, phone=phone, email=email)


async def do_create_contact(
    session: AsyncSession,
    kind: str,
    value: str,
    *,
    name: str = "",
    phone: str | None = None,
    email: str | None = None,
) -> m.Contact:
    """A new contact with the identity ``kind:value`` (``value`` as ``identity_value`` gives
    it), for a caller that looked the identity up itself and found nobody."""
    name = name[:NAME_MAX]
    contact = m.Contact(name=name, email=email, custom_fields={}, tags=[], blacklisted=False)
    if kind == "phone":
        phone = value
    if phone:
        do_apply_phone(contact, phone)
    session.add(contact)
    await session.flush()
    session.add(m.ContactIdentity(contact_id=contact.id, kind=kind, value=value))
    await session.flush()
    return contact


async def do_merge_contacts(session: AsyncSession, keep: m.Contact, drop: m.Contact) -> m.Contact:
    """Join ``drop``'s identities and history into ``keep`` (e.g. a shared phone number)."""
    if keep.id == drop.id:
        return keep
    # Campaign targets too: their contact_id has no foreign key (0025_import13) to null it.
    for model in (m.ContactIdentity, m.Conversation, m.Callback, m.CampaignTarget):
        await session.execute(update(model).where(model.contact_id == drop.id).values(contact_id=keep.id))
    keep.custom_fields = {**(drop.custom_fields or {}), **(keep.custom_fields or {})}
    keep.tags = sorted(set(keep.tags or []) | set(drop.tags or []))
    keep.name = keep.name or drop.name
    keep.email = keep.email or drop.email
    if not keep.phone and drop.phone:  # the number would otherwise be lost with ``drop``
        keep.phone, keep.region, keep.timezone = drop.phone, drop.region, drop.timezone
    keep.blacklisted = keep.blacklisted or drop.blacklisted
    await session.delete(drop)
    await session.flush()
    return keep


# --- contacts -----------------------------------------------------------------------------

_CONTACT_FIELDS: dict[str, Checker] = {
    "name": _text(256, allow_empty=True),
    "phone": _optional(_text(64)),
    "email": _optional(_email),
    "custom_fields": _mapping,
    "tags": _strings(64),
}
_CONTACT_UPDATE_FIELDS = {**_CONTACT_FIELDS, "blacklisted": _boolean}


def contact_dict(c: m.Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "region": c.region,
        "timezone": c.timezone,
        "custom_fields": dict(c.custom_fields or {}),
        "tags": list(c.tags or []),
        "blacklisted": c.blacklisted,
        "created_at": _iso(c.created_at),
    }


async def contact_detail(session: AsyncSession, c: m.Contact) -> dict[str, Any]:
    body = contact_dict(c)
    identities = await session.scalars(
        select(m.ContactIdentity).where(m.ContactIdentity.contact_id == c.id).order_by(m.ContactIdentity.id)
    )
    body["identities"] = [{"id": i.id, "kind": i.kind, "value": i.value} for i in identities]
    return body


async def search_contacts(
    session: AsyncSession, who: Principal, q: str = "", *, limit: int, blacklisted: bool | None = None
) -> list[m.Contact]:
    _deny_auditor(who)
    stmt = (
        select(m.Contact)
        .where(*await contact_scope_filter(session, who))
        .order_by(m.Contact.id.desc())
        .limit(clamp_limit(limit))
    )
    q = q.strip()
    if q:
        stmt = stmt.where(contact_search_condition(q))
    if blacklisted is not None:
        stmt = stmt.where(m.Contact.blacklisted.is_(blacklisted))
    return list(await session.scalars(stmt))


def contact_search_condition(q: str) -> ColumnElement[bool]:
    """Name, phone, e-mail or any channel identity (a Telegram chat, a widget visitor) containing
    ``q``; a phone typed any way (``8 916 …``) also finds its E.164 form exactly."""
    conds = [
        m.Contact.name.icontains(q, autoescape=True),
        m.Contact.phone.icontains(q, autoescape=True),
        m.Contact.email.icontains(q, autoescape=True),
        m.Contact.id.in_(
            select(m.ContactIdentity.contact_id).where(m.ContactIdentity.value.icontains(q, autoescape=True))
        ),
    ]
    with contextlib.suppress(InvalidInput):  # not a phone number: text match only
        phone = normalise_phone(q)
        conds.append(m.Contact.phone == phone)
        conds.append(
            m.Contact.id.in_(
                select(m.ContactIdentity.contact_id).where(
                    m.ContactIdentity.kind == "phone", m.ContactIdentity.value == phone
                )
            )
        )
    return or_(*conds)


async def access_admin_contact(session: AsyncSession, who: Principal, contact_id: int) -> m.Contact:
    _deny_auditor(who)
    return await access_contact(session, who, contact_id)


async def _claim_identity(
    session: AsyncSession, contact: m.Contact, kind: str, old: str | None, new: str | None
) -> None:
    """Keep the contact findable by its phone/email when a customer writes or calls in."""
    if old == new:
        return
    if old is not None:
        await session.execute(
            delete(m.ContactIdentity).where(
                m.ContactIdentity.contact_id == contact.id,
                m.ContactIdentity.kind == kind,
                m.ContactIdentity.value == old,
            )
        )
    if new is None:
        return
    owner = await session.scalar(
        select(m.ContactIdentity.contact_id).where(
            m.ContactIdentity.kind == kind, m.ContactIdentity.value == new
        )
    )
    if owner is None:
        session.add(m.ContactIdentity(contact_id=contact.id, kind=kind, value=new))
    elif owner != contact.id:
        raise Conflict("{field} {new} already belongs to contact {owner}", new=new, owner=owner, field=kind)


async def _apply_contact(session: AsyncSession, contact: m.Contact, clean: dict[str, Any]) -> None:
    old_phone, old_email = contact.phone, contact.email
    if "phone" in clean:
        phone = clean.pop("phone")
        if phone is None:
            contact.phone = contact.region = contact.timezone = None
        else:
            do_apply_phone(contact, phone)
    _apply(contact, clean)
    await _flush(session)
    await _claim_identity(session, contact, "phone", old_phone, contact.phone)
    await _claim_identity(session, contact, "email", old_email, contact.email)


async def check_create_contact(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Contact:
    check_role(who, ADMIN, SUPERVISOR, OPERATOR)
    clean = _clean(data, _CONTACT_FIELDS)
    if not (clean.get("name") or clean.get("phone") or clean.get("email")):
        raise InvalidInput("give the contact a name, phone or email", field="name")
    contact = _new(m.Contact)
    session.add(contact)
    await _apply_contact(session, contact, clean)
    await _flush(session)
    _audit(session, who, "contact.create", "contact", contact.id, data)
    _changed(session, "contact", contact.id, "created")
    return contact


async def check_update_contact(
    session: AsyncSession, who: Principal, contact_id: int, data: Mapping[str, Any]
) -> m.Contact:
    check_role(who, ADMIN, SUPERVISOR, OPERATOR)
    contact = await access_contact(session, who, contact_id, for_update=True)
    clean = _clean(data, _CONTACT_UPDATE_FIELDS)
    if clean.get("blacklisted") is False and contact.blacklisted and who.role == OPERATOR:
        # The same rule as the operator window's blacklist action.
        raise PermissionDenied("only supervisors take a contact off the blacklist")
    await _apply_contact(session, contact, clean)
    await _flush(session)
    _audit(session, who, "contact.update", "contact", contact.id, data)
    _changed(session, "contact", contact.id, "updated")
    return contact


# --- the contacts workspace: merge, blacklist -----------------------------------------------

BLACKLIST_REASON_MAX = 256


async def check_merge_contacts(
    session: AsyncSession, who: Principal, keep_id: int, drop_id: int
) -> m.Contact:
    """Merge contact ``drop_id`` into ``keep_id`` (the survivor): conversations, identities,
    callbacks, campaign targets, tags and card fields (``custom_fields``, the survivor's value
    wins on a clash) move over and ``drop_id`` is deleted. What ``drop_id`` held is kept whole in
    the audit record, so a value lost to a clash can still be read there.

    Admins and supervisors, over contacts they both may see; an erased contact is not merged
    (its history would come back under a name)."""
    check_role(who, ADMIN, SUPERVISOR)
    if keep_id == drop_id:
        raise InvalidInput("a contact cannot be merged into itself", field="other_id")
    keep = await access_contact(session, who, keep_id)  # 404 for the path's own contact
    try:
        await access_contact(session, who, drop_id)
    except NotFound as exc:  # a field of the request, not the resource asked for
        raise InvalidInput("contact {contact_id} not found", contact_id=drop_id, field="other_id") from exc
    # Locked in id order, so two people merging the same pair both ways can't deadlock.
    locked = {
        c.id: c
        for c in await session.scalars(
            select(m.Contact)
            .where(m.Contact.id.in_(sorted((keep_id, drop_id))))
            .order_by(m.Contact.id)
            .with_for_update()
        )
    }
    if len(locked) != 2:  # the other one was merged away or erased meanwhile
        raise Conflict("the change clashes with a concurrent one; reload and try again")
    keep, drop = locked[keep_id], locked[drop_id]
    for contact, field in ((keep, "id"), (drop, "other_id")):
        if contact.erased_at is not None:
            raise InvalidInput(
                "contact {contact_id} was erased and cannot be merged", contact_id=contact.id, field=field
            )
    merged = await contact_detail(session, drop)
    moved = await session.scalar(
        select(func.count()).select_from(m.Conversation).where(m.Conversation.contact_id == drop.id)
    )
    await do_merge_contacts(session, keep, drop)
    _audit(
        session,
        who,
        "contact.merge",
        "contact",
        keep.id,
        {"merged": merged, "conversations": int(moved or 0)},
    )
    _changed(session, "contact", keep.id, "updated")
    _changed(session, "contact", drop_id, "deleted")
    return keep


async def check_set_contact_blacklisted(
    session: AsyncSession, who: Principal, contact_id: int, *, blacklisted: bool, reason: str = ""
) -> m.Contact:
    """Put a contact on the blacklist (their messages are stored and closed unrouted, their
    calls hung up) or take them off, with a reason kept in the audit log. The rule is the
    operator window's (``omni.domain.workspace.check_set_blacklisted``): operators may only add."""
    check_role(who, ADMIN, SUPERVISOR, OPERATOR)
    reason = reason.strip()
    if len(reason) > BLACKLIST_REASON_MAX or "\x00" in reason:
        raise InvalidInput(
            "the reason is at most {limit} characters", field="reason", limit=BLACKLIST_REASON_MAX
        )
    if not blacklisted and who.role == OPERATOR:
        raise PermissionDenied("only supervisors take a contact off the blacklist")
    contact = await access_contact(session, who, contact_id, for_update=True)
    contact.blacklisted = blacklisted
    _audit(
        session,
        who,
        "contact.blacklist" if blacklisted else "contact.unblacklist",
        "contact",
        contact.id,
        {"reason": reason},
    )
    _changed(session, "contact", contact.id, "updated")
    return contact


async def blacklist_reason(session: AsyncSession, contact_id: int) -> str:
    """Why the contact was last put on the blacklist (from the audit log; empty when unsaid)."""
    row = await session.scalar(
        select(m.AuditLog)
        .where(
            m.AuditLog.object_type == "contact",
            m.AuditLog.object_id == str(contact_id),
            m.AuditLog.action == "contact.blacklist",
        )
        .order_by(m.AuditLog.id.desc())
        .limit(1)
    )
    if row is None:
        return ""
    return str((row.input or {}).get("reason") or "")
