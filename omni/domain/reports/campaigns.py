"""Outbound campaign reports (issue 13): per campaign, over the period's attempts.

* ``campaign_outcomes`` — one row per campaign: attempts by outcome, attempts that reached the
  network, answered, contact rate, attempts still open;
* ``campaign_results`` — one row per campaign × result code: targets given that code by an
  operator in the period (``campaign.target_result`` events, so a target recoded later counts
  under each code it was given);
* ``campaign_operators`` — one row per campaign × operator: attempts reserved for the operator,
  answered, contact rate, skipped previews;
* ``campaign_contacts`` — agentless campaigns: one row per contact whose result changed in the
  period (``campaign_targets.result``: confirmed, the last digits, the node the scenario ended
  on, the voice reply's link), the per-contact export of a notification campaign.

An attempt belongs to the period it was opened in (``created_at``, the indexed column). The
figures are the live view's (``omni.domain.outbound.stats``): skips and refusals are not
attempts; contact rate = answered / attempts. A campaign is in scope through its queue.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.outbound import DialMode, Outcome
from omni.domain.outbound.stats import NOT_ATTEMPTS, contact_rate
from omni.domain.reports import registry
from omni.domain.reports.filters import Scope
from omni.domain.reports.table import Cell, Chart, Column, Kind, ReportTable

__all__ = ["campaign_contacts", "campaign_operators", "campaign_outcomes", "campaign_results"]

OUTCOMES = tuple(Outcome)
FILTERS = ("period", "queue", "group", "operator")

OUTCOME_COLUMNS = tuple(Column(o.value, Kind.COUNT, o.value.replace("_", " ").capitalize()) for o in OUTCOMES)


def _campaign_where(scope: Scope) -> list[ColumnElement[bool]]:
    c = m.Campaign
    if scope.queue_ids is None:
        return []
    return [c.queue_id.in_(scope.queue_ids) if scope.queue_ids else false()]


def _attempt_where(scope: Scope, *, by_operator: bool) -> list[ColumnElement[bool]]:
    a = m.CampaignAttempt
    where: list[ColumnElement[bool]] = [
        a.created_at >= scope.period.start,
        a.created_at < scope.period.end,
        *_campaign_where(scope),
    ]
    f = scope.filter
    if (by_operator or f.user_ids or f.group_ids) and scope.user_ids is not None:
        where.append(a.operator_id.in_(scope.user_ids) if scope.user_ids else false())
    return where


async def campaign_outcomes(session: AsyncSession, scope: Scope) -> ReportTable:
    columns = [
        Column("campaign", Kind.LABEL, "Campaign"),
        Column("attempts", Kind.COUNT, "Attempts"),
        Column("answered_total", Kind.COUNT, "Answered"),
        Column("contact_rate", Kind.PERCENT, "Contact rate"),
        *OUTCOME_COLUMNS,
        Column("in_progress", Kind.COUNT, "In progress"),
    ]
    table = ReportTable(
        "campaign_outcomes",
        columns,
        chart=Chart("stacked", "campaign", tuple(o.value for o in OUTCOMES if o not in NOT_ATTEMPTS)),
        notes=["rpt.note.campaign_contact_rate"],
    )
    if scope.empty:
        return table
    a, c = m.CampaignAttempt, m.Campaign
    counts: dict[tuple[int, str], dict[str | None, int]] = defaultdict(dict)
    for cid, name, outcome, n in (
        await session.execute(
            select(c.id, c.name, a.outcome, func.count())
            .join(c, c.id == a.campaign_id)
            .where(*_attempt_where(scope, by_operator=False))
            .group_by(c.id, c.name, a.outcome)
        )
    ).all():
        counts[(cid, name)][outcome] = n
    by_outcome: dict[str, int] = defaultdict(int)
    all_attempts = all_answered = all_open = 0
    for (_, name), by in sorted(counts.items(), key=lambda kv: kv[0][1]):
        attempts = sum(n for o, n in by.items() if o is not None and o not in NOT_ATTEMPTS)
        answered = by.get(Outcome.ANSWERED, 0)
        table.rows.append(
            [
                name,
                attempts,
                answered,
                contact_rate(answered, attempts),
                *(by.get(o, 0) for o in OUTCOMES),
                by.get(None, 0),
            ]
        )
        all_attempts += attempts
        all_answered += answered
        all_open += by.get(None, 0)
        for o in OUTCOMES:
            by_outcome[o] += by.get(o, 0)
    if table.rows:
        table.totals = [
            None,
            all_attempts,
            all_answered,
            contact_rate(all_answered, all_attempts),
            *(by_outcome[o] for o in OUTCOMES),
            all_open,
        ]
    return table


async def campaign_results(session: AsyncSession, scope: Scope) -> ReportTable:
    columns = [
        Column("campaign", Kind.LABEL, "Campaign"),
        Column("result_code", Kind.LABEL, "Result code"),
        Column("action", Kind.TEXT, "Action", labels="rpt.result_action"),
        Column("targets", Kind.COUNT, "Targets"),
    ]
    table = ReportTable("campaign_results", columns, chart=Chart("bar", "result_code", ("targets",)))
    if scope.empty:
        return table
    e = m.Event
    events = await session.scalars(
        select(e).where(
            e.type == "campaign.target_result",
            e.created_at >= scope.period.start,
            e.created_at < scope.period.end,
        )
    )
    counts: dict[tuple[int, int | None, str], int] = defaultdict(int)
    users = scope.user_ids if (scope.filter.user_ids or scope.filter.group_ids) else None
    for event in events:
        p: dict[str, Any] = event.payload
        if users is not None and p.get("user_id") not in users:
            continue
        counts[(int(p["campaign_id"]), p.get("result_code_id"), str(p.get("action") or ""))] += 1
    if not counts:
        return table
    names = dict(
        (
            await session.execute(
                select(m.Campaign.id, m.Campaign.name).where(
                    m.Campaign.id.in_({k[0] for k in counts}), *_campaign_where(scope)
                )
            )
        ).all()
    )
    code_ids = {k[1] for k in counts if k[1] is not None}
    codes = dict(
        (
            await session.execute(
                select(m.ResultCode.id, m.ResultCode.name).where(m.ResultCode.id.in_(code_ids))
            )
        ).all()
    )
    rows: list[list[Cell]] = []
    total = 0
    for (cid, code_id, action), n in counts.items():
        if cid in names:
            rows.append([names[cid], codes.get(code_id, "") if code_id is not None else "", action, n])
            total += n
    table.rows = sorted(rows, key=lambda r: (str(r[0]), str(r[1])))
    if table.rows:
        table.totals = [None, None, None, total]
    return table


async def campaign_operators(session: AsyncSession, scope: Scope) -> ReportTable:
    columns = [
        Column("campaign", Kind.LABEL, "Campaign"),
        Column("operator", Kind.LABEL, "Operator"),
        Column("attempts", Kind.COUNT, "Attempts"),
        Column("answered_total", Kind.COUNT, "Answered"),
        Column("contact_rate", Kind.PERCENT, "Contact rate"),
        Column("skipped", Kind.COUNT, "Skipped"),
    ]
    table = ReportTable("campaign_operators", columns, notes=["rpt.note.campaign_contact_rate"])
    if scope.empty:
        return table
    a, c, u = m.CampaignAttempt, m.Campaign, m.User
    counts: dict[tuple[str, str], dict[str | None, int]] = defaultdict(dict)
    for cname, display, username, outcome, n in (
        await session.execute(
            select(c.name, u.display_name, u.username, a.outcome, func.count())
            .join(c, c.id == a.campaign_id)
            .join(u, u.id == a.operator_id)
            .where(*_attempt_where(scope, by_operator=True))
            .group_by(c.name, u.id, u.display_name, u.username, a.outcome)
        )
    ).all():
        counts[(cname, display or username)][outcome] = n
    for (cname, operator), by in sorted(counts.items()):
        attempts = sum(n for o, n in by.items() if o is not None and o not in NOT_ATTEMPTS)
        answered = by.get(Outcome.ANSWERED, 0)
        table.rows.append(
            [
                cname,
                operator,
                attempts,
                answered,
                contact_rate(answered, attempts),
                by.get(Outcome.SKIPPED, 0),
            ]
        )
    return table


async def campaign_contacts(session: AsyncSession, scope: Scope) -> ReportTable:
    columns = [
        Column("campaign", Kind.LABEL, "Campaign"),
        Column("contact", Kind.TEXT, "Contact"),
        Column("number", Kind.TEXT, "Number"),
        Column("target_state", Kind.TEXT, "State", labels="rpt.target_state"),
        Column("confirmed", Kind.TEXT, "Confirmed", labels="rpt.confirmed"),
        Column("digits", Kind.TEXT, "Digits"),
        Column("node", Kind.TEXT, "Node"),
        Column("attempts", Kind.COUNT, "Attempts"),
        Column("recording", Kind.TEXT, "Recording"),
        Column("updated_at", Kind.DATETIME, "Updated"),
    ]
    table = ReportTable("campaign_contacts", columns)
    if scope.empty:
        return table
    c, t = m.Campaign, m.CampaignTarget
    rows = await session.execute(
        select(c.name, t.name, t.phone, t.state, t.attempts, t.result, t.updated_at)
        .join(c, c.id == t.campaign_id)
        .where(
            c.dial_mode == DialMode.AGENTLESS,
            t.updated_at >= scope.period.start,
            t.updated_at < scope.period.end,
            *_campaign_where(scope),
        )
        .order_by(c.name, t.id)
    )
    for cname, name, phone, state, attempts, result, updated in rows.all():
        if not result:
            continue
        recording = result.get("recording_file_id")
        table.rows.append(
            [
                cname,
                name,
                str(result.get("phone") or phone),
                state,
                "yes" if result.get("confirmed") else "no",
                str(result.get("digits") or ""),
                str(result.get("node") or ""),
                attempts,
                f"/api/v1/files/{recording}" if recording else "",
                updated,
            ]
        )
    return table


registry.register(registry.ReportSpec("campaign_outcomes", campaign_outcomes, filters=FILTERS, order=110))
registry.register(registry.ReportSpec("campaign_results", campaign_results, filters=FILTERS, order=111))
registry.register(registry.ReportSpec("campaign_operators", campaign_operators, filters=FILTERS, order=112))
registry.register(
    registry.ReportSpec("campaign_contacts", campaign_contacts, filters=("period", "queue"), order=113)
)
