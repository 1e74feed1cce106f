"""Per-role grants: finer permissions than the four roles, changed by admins.

The contract for every other module: the grant names below and ``check(session, who, NAME)``
(refuses with 403) or ``allowed(session, who, NAME)`` (a bool). A grant narrows what a role's
pages and scope already permit — it never widens a role past its scope rules (a supervisor
stays limited to their groups, an operator never reaches the supervisor socket) — so a grant
can be turned on or off only for the roles in its ``DEFAULTS`` entry, and admins always hold
every grant (an admin cannot lock the admins out). With no row in ``role_grants`` each role
behaves exactly as before grants existed.

Personal data: ``PII_VIEW`` shows phones and e-mails unmasked (``omni.domain.masking``);
without it a role sees them masked and, with ``PII_REVEAL``, may reveal one contact's data
on demand — every reveal is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit
from omni.domain.auth import Principal, check_role
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.i18n import Label

PAGE_SUPERVISOR = "page.supervisor"
"""The live monitoring page and socket."""
PAGE_REPORTS = "page.reports"
"""The reports pages and their REST reads."""
PAGE_BUILDER = "page.builder"
"""The bot scenario list and builder."""
CALL_LISTEN = "call.listen"
CALL_WHISPER = "call.whisper"
CALL_BARGE = "call.barge"
CHAT_WHISPER = "chat.whisper"
"""A supervisor's private note to the operator of a chat."""
CHAT_TAKE_OVER = "chat.take_over"
REPORT_EXPORT = "report.export"
"""Report exports (CSV/XLSX) and scheduled report mails."""
CAMPAIGN_MANAGE = "campaign.manage"
"""Start, pause, finish campaigns and import their lists (admins also create and edit them)."""
SCENARIO_MANAGE = "scenario.manage"
"""Create, edit, publish and delete bot scenarios."""
PII_VIEW = "pii.view"
"""See phone numbers and e-mail addresses unmasked."""
PII_REVEAL = "pii.reveal"
"""Reveal one contact's masked phone and e-mail on demand (audited)."""

A, S, OP, AU = m.Role.ADMIN, m.Role.SUPERVISOR, m.Role.OPERATOR, m.Role.AUDITOR

DEFAULTS: dict[str, frozenset[m.Role]] = {
    PAGE_SUPERVISOR: frozenset({A, S}),
    PAGE_REPORTS: frozenset({A, S, AU}),
    PAGE_BUILDER: frozenset({A, S, AU}),
    CALL_LISTEN: frozenset({A, S}),
    CALL_WHISPER: frozenset({A, S}),
    CALL_BARGE: frozenset({A, S}),
    CHAT_WHISPER: frozenset({A, S}),
    CHAT_TAKE_OVER: frozenset({A, S}),
    REPORT_EXPORT: frozenset({A, S, AU}),
    CAMPAIGN_MANAGE: frozenset({A, S}),
    SCENARIO_MANAGE: frozenset({A, S}),
    PII_VIEW: frozenset({A, S, OP, AU}),
    PII_REVEAL: frozenset({A, S, OP, AU}),
}
"""Every grant and the roles that hold it by default: the behaviour of the four fixed roles."""

GRANTS: tuple[str, ...] = tuple(DEFAULTS)

SPY_GRANTS: dict[str, str] = {"listen": CALL_LISTEN, "whisper": CALL_WHISPER, "barge": CALL_BARGE}
"""The grant each ChanSpy mode of the supervisor's call controls needs."""

ROLES: tuple[m.Role, ...] = (S, OP, AU)
"""The roles an admin edits (admins hold every grant)."""


def grant_label(name: str, lang: str) -> str:
    return Label("grant", name).show(lang)


async def _overrides(session: AsyncSession, role: m.Role) -> dict[str, bool]:
    rows = await session.scalars(select(m.RoleGrant).where(m.RoleGrant.role == role.value))
    return {r.grant: r.allowed for r in rows}


def _default(role: m.Role, name: str) -> bool:
    return role in DEFAULTS[name]


async def role_grants(session: AsyncSession, role: m.Role) -> frozenset[str]:
    """Every grant the role holds now (defaults, then the admin's changes)."""
    if role == A:
        return frozenset(GRANTS)
    changed = await _overrides(session, role)
    return frozenset(g for g in GRANTS if _default(role, g) and changed.get(g, True))


async def allowed(session: AsyncSession, who: Principal, name: str) -> bool:
    """Whether the caller's role holds grant ``name`` (unknown names are a programming error)."""
    if name not in DEFAULTS:
        raise KeyError(name)
    if who.role == A:
        return True
    if not _default(who.role, name):
        return False
    row = await session.get(m.RoleGrant, (who.role.value, name))
    return row is None or row.allowed


async def check(session: AsyncSession, who: Principal, name: str) -> None:
    """Refuse (403) unless the caller's role holds grant ``name``."""
    if not await allowed(session, who, name):
        raise PermissionDenied("your role has no permission to {permission}", permission=Label("grant", name))


# --- administration ------------------------------------------------------------------------


async def grant_matrix(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    """Each editable role with each grant: whether it holds it and whether it may be changed."""
    check_role(who, A)
    out: list[dict[str, Any]] = []
    for role in ROLES:
        held = await role_grants(session, role)
        out.append(
            {
                "role": role.value,
                "grants": {g: g in held for g in GRANTS},
                "editable": [g for g in GRANTS if _default(role, g)],
            }
        )
    return out


def _role(value: object) -> m.Role:
    try:
        role = m.Role(str(value))
    except ValueError:
        raise InvalidInput("unknown role '{role}'", role=str(value)[:32], field="role") from None
    if role == A:
        raise InvalidInput("administrators hold every permission", field="role")
    return role


async def check_set_role_grants(
    session: AsyncSession, who: Principal, role_name: str, changes: Mapping[str, object]
) -> frozenset[str]:
    """Turn grants on or off for one role (audited); a grant the role cannot hold is refused
    with the grant as ``field``. Back at the default, the row goes: defaults stay defaults."""
    check_role(who, A)
    role = _role(role_name)
    problems: list[InvalidInput] = []
    clean: dict[str, bool] = {}
    for name, value in changes.items():
        if name not in DEFAULTS:
            problems.append(
                InvalidInput("unknown permission '{permission}'", permission=name[:64], field=name[:64])
            )
        elif not isinstance(value, bool):
            problems.append(InvalidInput("'{field}' must be true or false", field=name))
        elif value and not _default(role, name):
            problems.append(
                InvalidInput(
                    "the role {role} cannot hold '{permission}': its pages and scope do not allow it",
                    role=Label("role", role.value),
                    permission=Label("grant", name),
                    field=name,
                )
            )
        else:
            clean[name] = value
    if problems:
        if len(problems) == 1:
            raise problems[0]
        first = problems[0]
        raise InvalidInput(first.template, errors=problems, field=first.field, **first.params)
    if not clean:
        raise InvalidInput("name at least one permission to change", field="grants")
    now = datetime.now(UTC)
    for name, value in clean.items():
        await session.execute(
            delete(m.RoleGrant).where(m.RoleGrant.role == role.value, m.RoleGrant.grant == name)
        )
        if value != _default(role, name):
            session.add(m.RoleGrant(role=role.value, grant=name, allowed=value, updated_at=now))
    await session.flush()
    audit.record(session, who, "grants.update", object_type="role", object_id=role.value, data=dict(clean))
    return await role_grants(session, role)


async def masked_webhook_ids(session: AsyncSession) -> set[int]:
    """Webhook subscriptions whose payloads carry masked phones and e-mails."""
    return set(await session.scalars(select(m.MaskedWebhook.subscription_id)))


async def check_set_masked_webhooks(
    session: AsyncSession, who: Principal, subscription_ids: Iterable[int]
) -> set[int]:
    """The admin's choice of webhooks that get masked data (replaces the previous one), audited."""
    check_role(who, A)
    wanted = set(subscription_ids)
    if wanted:
        known = set(
            await session.scalars(
                select(m.WebhookSubscription.id).where(m.WebhookSubscription.id.in_(wanted))
            )
        )
        missing = sorted(wanted - known)
        if missing:
            raise NotFound(
                "webhook {webhook_id} not found", webhook_id=missing[0], field="masked_webhook_ids"
            )
    await session.execute(delete(m.MaskedWebhook))
    for sid in sorted(wanted):
        session.add(m.MaskedWebhook(subscription_id=sid))
    await session.flush()
    audit.record(session, who, "grants.masked_webhooks", object_type="webhooks", data={"ids": sorted(wanted)})
    return wanted
