"""Per-role grants: finer permissions than the four roles, changed by admins.

The contract for every other module: the grant names below and ``check(session, who, NAME)``
(refuses with 403) or ``allowed(session, who, NAME)`` (a bool), and for grants whose rows have
an owner ``grant_scope(session, who, NAME)`` (``own`` / ``group`` / ``all``, ``None`` when not
held). Admins always hold every grant at ``all`` (an admin cannot lock the admins out). With no
row in ``role_grants`` each role behaves exactly as before grants existed.

Narrowing: a grant in a role's ``DEFAULTS`` entry can be turned off, and for the ``SCOPED``
grants its scope narrowed (a supervisor's reports to their own conversations). Widening: the
``WIDEN`` table lists what a role may be given beyond its defaults and at which scopes only
(an operator's reports and exports limited to their own conversations) — never past the role's
ceiling (an operator never reaches the supervisor socket, a supervisor stays in their groups).

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
from omni.domain import audit, events
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
QA_GRADE = "qa.grade"
"""Grade conversations with scorecards (``omni.domain.qa``), within the role's scope: a
supervisor the conversations of their groups' queues, an admin every one."""
QA_SCORECARDS = "qa.scorecards"
"""Build and change the quality scorecards."""

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
    QA_GRADE: frozenset({A, S}),
    QA_SCORECARDS: frozenset({A, S}),
}
"""Every grant and the roles that hold it by default: the behaviour of the four fixed roles."""

GRANTS: tuple[str, ...] = tuple(DEFAULTS)

OWN, GROUP, ALL = "own", "group", "all"
"""Scopes, narrowest first: the caller's own conversations, their groups' (a supervisor's scope
rules, ``omni.domain.auth.visible_queue_ids``), everything."""
SCOPES: tuple[str, ...] = (OWN, GROUP, ALL)

NATURAL: dict[m.Role, str] = {A: ALL, AU: ALL, S: GROUP, OP: OWN}
"""The scope a role reads at by default (and at most)."""

SCOPED: frozenset[str] = frozenset({PAGE_REPORTS, REPORT_EXPORT})
"""Grants whose rows have an owner, so a scope narrower than the role's own makes sense; the
report modules honour it through ``omni.domain.reports.filters.resolve_scope``."""

NARROW_SCOPES: dict[m.Role, tuple[str, ...]] = {S: (OWN, GROUP), AU: (ALL,), OP: (OWN,)}
"""The scopes an admin may choose for a role's ``SCOPED`` default grants (auditors have no
conversations or groups of their own, so they read everything or nothing)."""

WIDEN: dict[str, dict[m.Role, tuple[str, ...]]] = {
    PAGE_REPORTS: {OP: (OWN,)},
    REPORT_EXPORT: {OP: (OWN,)},
}
"""Grants an admin may give a role beyond its defaults, and the scopes it may have then."""

SPY_GRANTS: dict[str, str] = {"listen": CALL_LISTEN, "whisper": CALL_WHISPER, "barge": CALL_BARGE}
"""The grant each ChanSpy mode of the supervisor's call controls needs."""

SPY_SCOPES: dict[m.Role, tuple[str, ...]] = {S: (GROUP, ALL)}
"""The scopes an admin may choose for a role's spy grants (``SPY_GRANTS``): ``all`` = every
call the supervisor sees (the calls of their queues; the default, as before scopes), ``group``
= only the calls answered by operators who are members of the groups they supervise
(:func:`check_spy`)."""
SPY_DEFAULT: dict[m.Role, str] = {S: ALL}

ROLES: tuple[m.Role, ...] = (S, OP, AU)
"""The roles an admin edits (admins hold every grant)."""


def grant_label(name: str, lang: str) -> str:
    return Label("grant", name).show(lang)


def _default(role: m.Role, name: str) -> bool:
    return role in DEFAULTS[name]


def scopes_for(role: m.Role, name: str) -> tuple[str, ...]:
    """The scopes an admin may choose for ``name`` held by ``role`` (empty: not scoped)."""
    if role in WIDEN.get(name, {}):
        return WIDEN[name][role]
    if name in SPY_GRANTS.values() and _default(role, name):
        return SPY_SCOPES.get(role, ())
    if name in SCOPED and _default(role, name):
        return NARROW_SCOPES.get(role, ())
    return ()


def can_hold(role: m.Role, name: str) -> bool:
    """Whether an admin may turn ``name`` on for ``role`` (a default, or a listed widening)."""
    return role == A or _default(role, name) or role in WIDEN.get(name, {})


def _held(role: m.Role, name: str, row: m.RoleGrant | None) -> bool:
    if row is None:
        return _default(role, name)
    return row.allowed and can_hold(role, name)


def _scope(role: m.Role, name: str, row: m.RoleGrant | None) -> str:
    choices = scopes_for(role, name)
    if row is not None and row.scope in choices:
        return row.scope
    if name in SPY_GRANTS.values() and SPY_DEFAULT.get(role) in choices:
        return SPY_DEFAULT[role]
    if NATURAL[role] in choices or not choices:
        return NATURAL[role]
    return choices[-1]  # the widest the admin may give


async def role_grants(session: AsyncSession, role: m.Role) -> frozenset[str]:
    """Every grant the role holds now (defaults, then the admin's changes)."""
    return frozenset((await role_scopes(session, role)).keys())


async def role_scopes(session: AsyncSession, role: m.Role) -> dict[str, str]:
    """Every grant the role holds now, with the scope it holds it at."""
    if role == A:
        return dict.fromkeys(GRANTS, ALL)
    rows = {
        r.grant: r for r in await session.scalars(select(m.RoleGrant).where(m.RoleGrant.role == role.value))
    }
    return {g: _scope(role, g, rows.get(g)) for g in GRANTS if _held(role, g, rows.get(g))}


async def grant_scope(session: AsyncSession, who: Principal, name: str) -> str | None:
    """The scope the caller's role holds ``name`` at (``own`` / ``group`` / ``all``), or
    ``None`` when it does not hold it; every check of a ``SCOPED`` grant reads its rows here."""
    if name not in DEFAULTS:
        raise KeyError(name)
    if who.role == A:
        return ALL
    row = await session.get(m.RoleGrant, (who.role.value, name))
    if not _held(who.role, name, row):
        return None
    return _scope(who.role, name, row)


async def allowed(session: AsyncSession, who: Principal, name: str) -> bool:
    """Whether the caller's role holds grant ``name`` (unknown names are a programming error)."""
    return await grant_scope(session, who, name) is not None


async def check(session: AsyncSession, who: Principal, name: str) -> None:
    """Refuse (403) unless the caller's role holds grant ``name``."""
    if not await allowed(session, who, name):
        raise PermissionDenied("your role has no permission to {permission}", permission=Label("grant", name))


async def supervised_user_ids(session: AsyncSession, who: Principal) -> set[int]:
    """Members of the groups the caller supervises (``supervisor_scopes.group_id``)."""
    groups = select(m.SupervisorScope.group_id).where(
        m.SupervisorScope.supervisor_id == who.id, m.SupervisorScope.group_id.is_not(None)
    )
    return set(await session.scalars(select(m.GroupMember.user_id).where(m.GroupMember.group_id.in_(groups))))


async def check_spy(session: AsyncSession, who: Principal, conv: m.Conversation, mode: str) -> None:
    """Refuse (403) listening, whispering or barging into ``conv`` (a call the caller already
    may see, ``omni.domain.auth.access_conversation``) unless the role holds the mode's grant,
    and, held at ``group`` scope, unless the call's operator is in one of the caller's groups."""
    name = SPY_GRANTS.get(mode, CALL_BARGE)
    scope = await grant_scope(session, who, name)
    if scope is None:
        raise PermissionDenied("your role has no permission to {permission}", permission=Label("grant", name))
    if scope == ALL or who.role == A:
        return
    operator = conv.assigned_user_id
    if operator is None or operator not in await supervised_user_ids(session, who):
        raise PermissionDenied(
            "your role may {permission} only of operators in your groups",
            permission=Label("grant", name),
        )


async def spy_rights(session: AsyncSession, who: Principal) -> dict[str, Any]:
    """What the monitoring page offers: each ChanSpy mode's scope (``None``: not held) and,
    for ``group`` scopes, the operators whose calls may be joined."""
    modes = {mode: await grant_scope(session, who, name) for mode, name in SPY_GRANTS.items()}
    members = await supervised_user_ids(session, who) if GROUP in modes.values() else set()
    return {"modes": modes, "group_user_ids": sorted(members)}


# --- administration ------------------------------------------------------------------------


async def grant_matrix(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    """Each editable role with each grant: whether it holds it and whether it may be changed."""
    check_role(who, A)
    out: list[dict[str, Any]] = []
    for role in ROLES:
        held = await role_scopes(session, role)
        out.append(
            {
                "role": role.value,
                "grants": {g: g in held for g in GRANTS},
                "editable": [g for g in GRANTS if can_hold(role, g)],
                "scopes": {g: held[g] for g in GRANTS if g in held and scopes_for(role, g)},
                "scope_choices": {g: list(scopes_for(role, g)) for g in GRANTS if scopes_for(role, g)},
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
    session: AsyncSession,
    who: Principal,
    role_name: str,
    changes: Mapping[str, object],
    scopes: Mapping[str, object] | None = None,
) -> frozenset[str]:
    """Turn grants on or off for one role, and choose the scope of its scoped ones (audited);
    a grant or scope the role cannot hold is refused with the grant as ``field``. Back at the
    default (held or not, at the role's natural scope) the row goes: defaults stay defaults."""
    check_role(who, A)
    role = _role(role_name)
    problems: list[InvalidInput] = []
    clean: dict[str, bool] = {}
    scope_of: dict[str, str] = {}
    for name, value in (scopes or {}).items():
        if name not in DEFAULTS:
            problems.append(
                InvalidInput("unknown permission '{permission}'", permission=name[:64], field=name[:64])
            )
        elif not scopes_for(role, name):
            problems.append(
                InvalidInput(
                    "'{permission}' has no scope to choose for the role {role}",
                    permission=Label("grant", name),
                    role=Label("role", role.value),
                    field=name,
                )
            )
        elif value not in scopes_for(role, name):
            problems.append(
                InvalidInput(
                    "the role {role} can hold '{permission}' only for: {scopes}",
                    role=Label("role", role.value),
                    permission=Label("grant", name),
                    scopes=", ".join(scopes_for(role, name)),
                    field=name,
                )
            )
        else:
            scope_of[name] = str(value)
    for name, value in changes.items():
        if name not in DEFAULTS:
            problems.append(
                InvalidInput("unknown permission '{permission}'", permission=name[:64], field=name[:64])
            )
        elif not isinstance(value, bool):
            problems.append(InvalidInput("'{field}' must be true or false", field=name))
        elif value and not can_hold(role, name):
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
    if not clean and not scope_of:
        raise InvalidInput("name at least one permission to change", field="grants")
    now = datetime.now(UTC)
    before = await role_scopes(session, role)
    for name in sorted(set(clean) | set(scope_of)):
        value = clean.get(name, name in before)
        scope = scope_of.get(name) or before.get(name) or _scope(role, name, None)
        await session.execute(
            delete(m.RoleGrant).where(m.RoleGrant.role == role.value, m.RoleGrant.grant == name)
        )
        natural = _scope(role, name, None)
        if value != _default(role, name) or (value and scopes_for(role, name) and scope != natural):
            session.add(
                m.RoleGrant(
                    role=role.value,
                    grant=name,
                    allowed=value,
                    scope=scope if value and scopes_for(role, name) else None,
                    updated_at=now,
                )
            )
    await session.flush()
    data: dict[str, Any] = dict(clean)
    if scope_of:
        data["scopes"] = dict(scope_of)
    audit.record(session, who, "grants.update", object_type="role", object_id=role.value, data=data)
    held = await role_grants(session, role)
    # Live sockets of the role follow (masked or plain event rooms: omni.realtime.pii).
    events.emit(session, "grants.changed", {"role": role.value, "grants": sorted(held)})
    return held


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
