"""Retention of personal data: per-kind policies purged on schedule, and one contact erased on
request (personal-data laws such as 152-FZ and GDPR).

What goes and what stays is chosen so reports keep their figures:

* **messages** — the text and attachment list of messages older than the policy, in closed
  conversations, are blanked (and the same text in the event log); the message rows stay with
  their direction, author and time, which is what first-response and reply times are made of.
* **attachments** — uploaded files of conversations older than the policy are deleted from disk
  and their rows removed (a link to one answers 404).
* **recordings** — call recordings older than the policy are deleted and the call forgets the
  path; the call row (ring and talk time, result) stays.
* **audit** — audit log rows older than the policy are deleted.

A kind with no policy (``None``) is kept forever: nothing is purged until an admin decides.
Erasing a contact blanks all of the above for that contact's conversations whatever their age,
removes its identities (a later message from the same person starts a new contact), blanks the
contact's card and its campaign targets, and keeps the rows. Both are audited without the data
they removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, delete, func, literal, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import Database
from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import Principal
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied

log = logging.getLogger(__name__)

ROW_ID = 1
KINDS = ("messages", "attachments", "recordings", "audit")
"""The kinds of data a policy covers, in the order the admin page lists them."""
MIN_DAYS = 1
MAX_DAYS = 36_500
BATCH = 500
"""Rows purged per transaction: a pass never holds long locks on the hot tables."""
PURGE_SECONDS = 3_600.0
"""How often a pass runs (Celery beat in distributed mode, a loop in embedded mode)."""

PERSONAL_KEYS = frozenset(
    {"body", "text", "name", "display_name", "first_name", "last_name", "username", "phone", "email",
     "caller_number", "caller_id", "attachments", "variables", "fields", "custom_fields", "value"}
)  # fmt: skip
"""Keys whose values are personal in event payloads (message text, the customer's name and
numbers); erasure blanks them wherever they appear in an event of the contact's conversations."""


@dataclass(frozen=True, slots=True)
class Policies:
    messages_days: int | None = None
    attachments_days: int | None = None
    recordings_days: int | None = None
    audit_days: int | None = None

    def days(self, kind: str) -> int | None:
        value: int | None = getattr(self, f"{kind}_days")
        return value


@dataclass(frozen=True, slots=True)
class Roots:
    """Directories whose files retention may delete; a stored path outside them is never
    touched (a bad row must not delete another file of the host)."""

    uploads: Path
    recordings: tuple[Path, ...]

    @classmethod
    def of(cls, settings: Any) -> Roots:
        voice = settings.voice
        return cls(
            uploads=Path(settings.data_dir) / "uploads",
            recordings=(Path(voice.recordings_dir), Path(voice.replies_dir)),
        )

    def all(self) -> tuple[Path, ...]:
        return (self.uploads, *self.recordings)


async def get_policies(session: AsyncSession) -> tuple[Policies, m.RetentionSettings | None]:
    row = await session.get(m.RetentionSettings, ROW_ID)
    if row is None:
        return Policies(), None
    return (
        Policies(row.messages_days, row.attachments_days, row.recordings_days, row.audit_days),
        row,
    )


def policies_dict(policies: Policies, row: m.RetentionSettings | None) -> dict[str, Any]:
    return {
        **{f"{k}_days": policies.days(k) for k in KINDS},
        "last_run_at": row.last_run_at.isoformat() if row and row.last_run_at else None,
        "last_counts": dict(row.last_counts or {}) if row else {},
    }


async def check_update_policies(session: AsyncSession, who: Principal, values: dict[str, Any]) -> Policies:
    """Admins set how many days each kind is kept (``None``: forever); audited."""
    if not who.is_admin:
        raise PermissionDenied("only an admin changes the retention policies")
    errors: list[InvalidInput] = []
    clean: dict[str, int | None] = {}
    for key, value in values.items():
        if key not in {f"{k}_days" for k in KINDS}:
            errors.append(InvalidInput("unknown field {name}", field=key, name=key))
            continue
        if value is None or value == "":
            clean[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_DAYS <= value <= MAX_DAYS:
            errors.append(
                InvalidInput("{field} must be between {min} and {max}", field=key, min=MIN_DAYS, max=MAX_DAYS)
            )
            continue
        clean[key] = value
    if errors:
        first = errors[0]
        raise InvalidInput(first.template, field=first.field, errors=errors, **first.params)
    row = await session.get(m.RetentionSettings, ROW_ID, with_for_update=True)
    if row is None:
        row = m.RetentionSettings(id=ROW_ID, last_counts={})
        session.add(row)
    changes = {k: v for k, v in clean.items() if getattr(row, k) != v}
    for key, value in changes.items():
        setattr(row, key, value)
    if changes:
        audit.record(
            session, who, "retention.update", object_type="retention", object_id=ROW_ID, data=changes
        )
    await session.flush()
    policies, _ = await get_policies(session)
    return policies


# --- files ----------------------------------------------------------------------------------


def _inside(path: Path, roots: Iterable[Path]) -> bool:
    try:
        resolved = path.resolve()
    except OSError:
        return False
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


def _unlink(paths: Sequence[str], roots: Iterable[Path]) -> tuple[list[str], list[str]]:
    """Delete the files; (gone, kept). A file already missing counts as gone; one outside the
    roots or that can't be deleted (a read-only share) is kept and logged with its path."""
    roots = tuple(roots)
    gone: list[str] = []
    kept: list[str] = []
    for stored in paths:
        path = Path(stored)
        if not _inside(path, roots):
            log.warning("retention: %s is outside %s; not deleted", stored, ", ".join(map(str, roots)))
            kept.append(stored)
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("retention: cannot delete %s (%s); it stays until the next pass", stored, exc)
            kept.append(stored)
            continue
        gone.append(stored)
    return gone, kept


# --- the scheduled pass ---------------------------------------------------------------------


def _blank_payload(payload: Any) -> Any:
    """The payload with the personal values blanked (same shape, so readers don't break)."""
    if isinstance(payload, dict):
        return {k: (_blank_value(v) if k in PERSONAL_KEYS else _blank_payload(v)) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_blank_payload(v) for v in payload]
    return payload


def _blank_value(value: Any) -> Any:
    if isinstance(value, str):
        return ""
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    return value


async def _scrub_events(session: AsyncSession, where: Any) -> int:
    rows = (await session.execute(select(m.Event.id, m.Event.payload).where(where))).all()
    changed = 0
    for event_id, payload in rows:
        blank = _blank_payload(payload)
        if blank != payload:
            await session.execute(update(m.Event).where(m.Event.id == event_id).values(payload=blank))
            changed += 1
    return changed


async def _purge_messages(db: Database, cutoff: datetime) -> int:
    closed = select(m.Conversation.id).where(m.Conversation.status.not_in(m.OPEN_STATUSES))
    total = 0
    while True:
        async with db.transaction() as session:
            ids = list(
                (
                    await session.scalars(
                        select(m.Message.id)
                        .where(
                            m.Message.created_at < cutoff,
                            m.Message.conversation_id.in_(closed),
                            (m.Message.body != "")
                            | (func.coalesce(func.json_array_length(m.Message.attachments), 0) > 0),
                        )
                        .order_by(m.Message.id)
                        .limit(BATCH)
                    )
                ).all()
            )
            if not ids:
                return total
            await session.execute(
                update(m.Message).where(m.Message.id.in_(ids)).values(body="", attachments=[])
            )
            await _scrub_events(
                session,
                (m.Event.type.in_(("message.created", "message.edited")))
                & (m.Event.payload["id"].as_integer().in_(ids)),
            )
            total += len(ids)


async def _purge_attachments(db: Database, cutoff: datetime, roots: Roots) -> int:
    total = 0
    skip: set[str] = set()
    while True:
        async with db.transaction() as session:
            rows = (
                await session.execute(
                    select(m.StoredFile.id, m.StoredFile.path)
                    .where(
                        m.StoredFile.created_at < cutoff,
                        m.StoredFile.conversation_id.is_not(None),
                        m.StoredFile.id.not_in(skip) if skip else true(),
                    )
                    .order_by(m.StoredFile.created_at, m.StoredFile.id)
                    .limit(BATCH)
                )
            ).all()
            if not rows:
                return total
            gone, kept = await asyncio.to_thread(_unlink, [r.path for r in rows], roots.all())
            gone_ids = [r.id for r in rows if r.path in gone]
            skip.update(r.id for r in rows if r.path in kept)
            if gone_ids:
                await session.execute(delete(m.StoredFile).where(m.StoredFile.id.in_(gone_ids)))
            total += len(gone_ids)


async def _purge_recordings(db: Database, cutoff: datetime, roots: Roots) -> int:
    total = 0
    skip: set[int] = set()
    while True:
        async with db.transaction() as session:
            rows = (
                await session.execute(
                    select(m.Call.id, m.Call.recording_path)
                    .where(
                        m.Call.recording_path != "",
                        func.coalesce(m.Call.ended_at, m.Call.created_at) < cutoff,
                        m.Call.id.not_in(skip) if skip else true(),
                    )
                    .order_by(m.Call.id)
                    .limit(BATCH)
                )
            ).all()
            if not rows:
                return total
            paths = [_recording_file(r.recording_path, roots) for r in rows]
            gone, kept = await asyncio.to_thread(_unlink, paths, roots.recordings)
            gone_ids = [r.id for r, p in zip(rows, paths, strict=True) if p in gone]
            skip.update(r.id for r, p in zip(rows, paths, strict=True) if p in kept)
            if gone_ids:
                await session.execute(update(m.Call).where(m.Call.id.in_(gone_ids)).values(recording_path=""))
            total += len(gone_ids)


def _recording_file(stored: str, roots: Roots) -> str:
    """``calls.recording_path`` is relative to the recordings directory (or absolute)."""
    return str(roots.recordings[0] / stored)


async def _purge_audit(db: Database, cutoff: datetime) -> int:
    total = 0
    while True:
        async with db.transaction() as session:
            ids = list(
                (
                    await session.scalars(
                        select(m.AuditLog.id)
                        .where(m.AuditLog.created_at < cutoff)
                        .order_by(m.AuditLog.id)
                        .limit(BATCH)
                    )
                ).all()
            )
            if not ids:
                return total
            await session.execute(delete(m.AuditLog).where(m.AuditLog.id.in_(ids)))
            total += len(ids)


async def purge(db: Database, settings: Any, now: datetime | None = None) -> dict[str, int]:
    """One pass over every kind that has a policy; what it removed, per kind. Safe on several
    nodes at once (each batch is its own transaction; a row purged twice is purged once)."""
    now = now or datetime.now(UTC)
    async with db.transaction() as session:
        policies, _ = await get_policies(session)
    roots = Roots.of(settings)
    counts: dict[str, int] = {}
    for kind in KINDS:
        days = policies.days(kind)
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        if kind == "messages":
            counts[kind] = await _purge_messages(db, cutoff)
        elif kind == "attachments":
            counts[kind] = await _purge_attachments(db, cutoff, roots)
        elif kind == "recordings":
            counts[kind] = await _purge_recordings(db, cutoff, roots)
        else:
            counts[kind] = await _purge_audit(db, cutoff)
    async with db.transaction() as session:
        row = await session.get(m.RetentionSettings, ROW_ID, with_for_update=True)
        if row is not None:
            row.last_run_at = now
            row.last_counts = counts
        if any(counts.values()):
            audit.record(
                session, None, "retention.purge", object_type="retention", object_id=ROW_ID, data=counts
            )
    if any(counts.values()):
        log.info("retention pass removed %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


async def run_loop(db: Database, settings: Any, every: float = PURGE_SECONDS) -> None:
    """Embedded mode's stand-in for Celery beat's ``omni.retention.purge``."""
    while True:
        try:
            await purge(db, settings)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention pass failed")
        await asyncio.sleep(every)


# --- erasing one contact --------------------------------------------------------------------


async def check_erase_contact(
    session: AsyncSession, who: Principal, contact_id: int, settings: Any, now: datetime | None = None
) -> dict[str, int]:
    """Erase a contact's personal data on request; what was removed, by kind. Refused while one
    of its conversations is still open (close it first: an operator may be talking to them)."""
    if not who.is_admin:
        raise PermissionDenied("only an admin erases a contact's personal data")
    now = now or datetime.now(UTC)
    contact = await session.get(m.Contact, contact_id, with_for_update=True)
    if contact is None:
        raise NotFound("no contact {contact_id}", contact_id=contact_id)
    conv_ids = list(
        (
            await session.scalars(select(m.Conversation.id).where(m.Conversation.contact_id == contact_id))
        ).all()
    )
    open_count = await session.scalar(
        select(func.count())
        .select_from(m.Conversation)
        .where(m.Conversation.contact_id == contact_id, m.Conversation.status.in_(m.OPEN_STATUSES))
    )
    if open_count:
        raise Conflict(
            "the contact has {count} open conversations; close them before erasing", count=open_count
        )
    roots = Roots.of(settings)
    counts = {"conversations": len(conv_ids), "messages": 0, "attachments": 0, "recordings": 0, "events": 0}
    if conv_ids:
        result = await session.execute(
            update(m.Message).where(m.Message.conversation_id.in_(conv_ids)).values(body="", attachments=[])
        )
        counts["messages"] = int(getattr(result, "rowcount", 0) or 0)
        files = (
            await session.execute(
                select(m.StoredFile.id, m.StoredFile.path).where(m.StoredFile.conversation_id.in_(conv_ids))
            )
        ).all()
        gone, kept = await asyncio.to_thread(_unlink, [f.path for f in files], roots.all())
        if kept:
            raise Conflict(
                "{count} files of the contact could not be deleted (see the log); "
                "the erasure was not finished, try again",
                count=len(kept),
            )
        if files:
            await session.execute(delete(m.StoredFile).where(m.StoredFile.id.in_([f.id for f in files])))
        counts["attachments"] = len(gone)
        calls = (
            await session.execute(
                select(m.Call.id, m.Call.recording_path).where(m.Call.conversation_id.in_(conv_ids))
            )
        ).all()
        recorded = [c for c in calls if c.recording_path]
        paths = [_recording_file(c.recording_path, roots) for c in recorded]
        gone_rec, kept_rec = await asyncio.to_thread(_unlink, paths, roots.recordings)
        if kept_rec:
            raise Conflict(
                "{count} recordings of the contact could not be deleted (see the log); "
                "the erasure was not finished, try again",
                count=len(kept_rec),
            )
        counts["recordings"] = len(gone_rec)
        if calls:
            await session.execute(
                update(m.Call)
                .where(m.Call.id.in_([c.id for c in calls]))
                .values(recording_path="", caller_number="", caller_channel="")
            )
        await session.execute(
            update(m.BotSession).where(m.BotSession.conversation_id.in_(conv_ids)).values(state={})
        )
        # The CRM's card of the customer, cached for the screen-pop (omni.domain.crm.card).
        await session.execute(delete(m.CrmCard).where(m.CrmCard.conversation_id.in_(conv_ids)))
        counts["events"] = await _scrub_events(session, m.Event.conversation_id.in_(conv_ids))
    await session.execute(delete(m.ContactIdentity).where(m.ContactIdentity.contact_id == contact_id))
    await session.execute(
        update(m.CampaignTarget)
        .where(m.CampaignTarget.contact_id == contact_id)
        .values(name="", phone=literal("erased-").concat(cast(m.CampaignTarget.id, String)), phones=[],
                fields={}, tags=[], result={}, next_due_at=None, state=m.TargetState.DONE.value)
    )  # fmt: skip
    contact.name = ""
    contact.email = None
    contact.phone = None
    contact.region = None
    contact.timezone = None
    contact.custom_fields = {}
    contact.tags = []
    contact.erased_at = now
    audit.record(session, who, "contact.erase", object_type="contact", object_id=contact_id, data=counts)
    await session.flush()
    return counts
