"""The contacts as a report: the contacts workspace's search (``omni.domain.contacts``) as rows,
so the exports machinery (``omni.domain.reports.exports``: a background job, progress, CSV or
XLSX, the owner's download, the audit trail) exports them without a second implementation.

Scope is the contacts' own rule (``omni.domain.auth.contact_scope_filter``): a supervisor gets
the contacts of conversations they may see; auditors none (personal data is not theirs to read).
Only the search (``q``) applies; the period is not a filter of contacts. Newest first, paginated
on the page and streamed by exports, so 100,000 contacts are never held in memory at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.auth import contact_scope_filter
from omni.domain.contacts import contact_search_condition
from omni.domain.masking import Masker, masker_for
from omni.domain.reports.filters import Scope
from omni.domain.reports.registry import ReportSpec, register
from omni.domain.reports.table import Cell, Column, Kind, ReportTable

KEY = "contacts"
STREAM_BATCH = 1000

COLUMNS = (
    Column("contact_id", Kind.COUNT, "Contact id"),
    Column("contact_name", Kind.TEXT, "Name"),
    Column("contact_phone", Kind.TEXT, "Phone"),
    Column("email", Kind.TEXT, "E-mail"),
    Column("identities", Kind.TEXT, "Identities"),
    Column("tags", Kind.TEXT, "Tags"),
    Column("blacklisted", Kind.TEXT, "Blacklisted"),
    Column("created", Kind.DATETIME, "Created"),
)


async def _where(session: AsyncSession, scope: Scope) -> list[ColumnElement[bool]]:
    where = list(await contact_scope_filter(session, scope.who))
    q = scope.filter.q
    if q:
        where.append(contact_search_condition(q))
    return where


def _query(where: list[ColumnElement[bool]]) -> Select[Any]:
    query: Select[Any] = select(m.Contact).where(*where).order_by(m.Contact.id.desc())
    return query


async def _identities(session: AsyncSession, ids: list[int], masker: Masker) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        rows = await session.execute(
            select(m.ContactIdentity.contact_id, m.ContactIdentity.kind, m.ContactIdentity.value)
            .where(m.ContactIdentity.contact_id.in_(ids))
            .order_by(m.ContactIdentity.id)
        )
        for contact_id, kind, value in rows.all():
            shown = (
                masker.phone(value) if kind == "phone" else masker.email(value) if kind == "email" else value
            )
            found[contact_id].append(f"{kind}:{shown}")
    return found


def _row(c: m.Contact, identities: list[str], scope: Scope, masker: Masker) -> list[Cell]:
    return [
        c.id,
        c.name or None,
        masker.phone(c.phone),
        masker.email(c.email),
        ", ".join(identities),
        ", ".join(str(t) for t in c.tags or []),
        c.blacklisted,
        c.created_at.astimezone(scope.config.tz) if c.created_at.tzinfo else c.created_at,
    ]


async def _rows(session: AsyncSession, contacts: list[m.Contact], scope: Scope) -> list[list[Cell]]:
    """A reader without ``pii.view`` gets phones and e-mails masked, in identities too."""
    masker = await masker_for(session, scope.who)
    identities = await _identities(session, [c.id for c in contacts], masker)
    return [_row(c, identities[c.id], scope, masker) for c in contacts]


async def run(session: AsyncSession, scope: Scope) -> ReportTable:
    """One page (``offset`` / ``limit``) and how many contacts match in all (``total_rows``)."""
    table = ReportTable(KEY, COLUMNS)
    where = await _where(session, scope)
    total = await session.scalar(select(func.count(m.Contact.id)).where(*where))
    table.total_rows = int(total or 0)
    f = scope.filter
    if f.limit > 0 and f.offset < table.total_rows:
        page = list(await session.scalars(_query(where).offset(f.offset).limit(f.limit)))
        table.rows = await _rows(session, page, scope)
    return table


async def stream(session: AsyncSession, scope: Scope) -> AsyncIterator[list[Cell]]:
    """Every matching contact, newest first, a batch of rows (and their identities) at a time."""
    where = await _where(session, scope)
    result = await session.stream_scalars(_query(where).execution_options(yield_per=STREAM_BATCH))
    async for batch in result.partitions(STREAM_BATCH):
        for row in await _rows(session, list(batch), scope):
            yield row


SPEC = register(
    ReportSpec(
        KEY,
        run,
        filters=("q",),
        paginated=True,
        order=110,
        stream=stream,
        roles=(m.Role.ADMIN.value, m.Role.SUPERVISOR.value),  # auditors: no personal data
    )
)
