"""The bot funnel (issue 12, report 8): bot runs per scenario revision and channel, by outcome,
and where customers drop, node by node.

A **run** is one conversation on one scenario revision (its ``bot_steps``); it belongs to the
interval of its first step. Its outcome, decided from its steps (docs/reports.md, "Bot funnel"):

* **handed off** — a hand-off node queued it (``left:queued``), or the scenario ran out or failed
  and the runner queued the conversation (it was enqueued after the run began);
* **moved** — a ``goto_scenario`` node sent it to another scenario (that run counts there);
* **contained** — the bot ended it: a close node (``left:close``) or the last node's exit led
  nowhere and nobody was queued;
* **running** — the conversation is still with the bot on this revision;
* **dropped** — otherwise: the customer left (or timed out) mid-bot; the node it was last at is
  where it dropped.

Per node the rollup counts the run's steps exactly as the builder's statistics do
(``bots.service.fold_steps``) and adds the runs dropped there.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bots.service import fold_steps
from omni.db import models as m
from omni.domain.reports import registry, rollups
from omni.domain.reports.filters import Scope
from omni.domain.reports.period import floor_interval
from omni.domain.reports.rollups import Changes
from omni.domain.reports.scoped import chunks, conditions
from omni.domain.reports.table import Chart, Column, Kind, ReportTable, pct

OUTCOMES = ("handed_off", "contained", "dropped", "moved", "running")


def run_outcome(
    steps: list[tuple[str, str]],
    started: datetime,
    *,
    enqueued_at: datetime | None,
    still_running: bool,
) -> str:
    """One run's outcome from its ``(node, outcome)`` steps in order (see the module's rules)."""
    last = steps[-1][1] if steps else ""
    if any(outcome == "left:queued" for _, outcome in steps):
        return "handed_off"
    if last == "left:goto":
        return "moved"
    if last == "left:close":
        return "contained"
    if still_running:
        return "running"
    if enqueued_at is not None and enqueued_at >= started:
        return "handed_off"
    if last.startswith("left:"):
        return "contained"
    return "dropped"


class BotFunnelRollup:
    """``report_bot_intervals`` and ``report_bot_node_intervals`` from ``bot_steps``."""

    name = "bot_funnel"

    async def touched(self, session: AsyncSession, changes: Changes) -> set[datetime]:
        s = m.BotStep
        found: set[datetime] = set()
        for ids in chunks(changes.conversation_ids):
            rows = await session.scalars(
                select(func.min(s.created_at))
                .where(s.conversation_id.in_(ids))
                .group_by(s.conversation_id, s.revision_id)
            )
            found |= {floor_interval(at) for at in rows}
        return found

    async def rebuild(
        self, session: AsyncSession, start: datetime, end: datetime, *, in_database: bool | None = None
    ) -> None:
        """``in_database`` is ignored: these rows are few and built one way on every database."""
        runs_t, nodes_t = m.ReportBotInterval, m.ReportBotNodeInterval
        await session.execute(delete(runs_t).where(runs_t.bucket >= start, runs_t.bucket < end))
        await session.execute(delete(nodes_t).where(nodes_t.bucket >= start, nodes_t.bucket < end))
        s = m.BotStep
        # Runs with a step in the range (by the created_at index), then those that began in it.
        pairs = (
            await session.execute(
                select(s.conversation_id, s.revision_id)
                .where(s.created_at >= start, s.created_at < end, s.conversation_id.is_not(None))
                .distinct()
            )
        ).all()
        wanted = {(conv_id, rev_id) for conv_id, rev_id in pairs if conv_id is not None}
        steps: dict[tuple[int, int], list[tuple[str, str, str, datetime]]] = defaultdict(list)
        for ids in chunks(sorted({conv_id for conv_id, _ in wanted})):
            rows = await session.execute(
                select(s.conversation_id, s.revision_id, s.node, s.outcome, s.channel, s.created_at)
                .where(s.conversation_id.in_(ids))
                .order_by(s.id)
            )
            for conv_id, rev_id, node, outcome, channel, at in rows.all():
                if conv_id is not None and (conv_id, rev_id) in wanted:
                    steps[(conv_id, rev_id)].append((node, outcome, channel, at))
        runs = {k: v for k, v in steps.items() if start <= min(x[3] for x in v) < end}
        conv_ids = sorted({conv_id for conv_id, _ in runs})
        convs: dict[int, tuple[Any, ...]] = {}
        sessions: dict[int, tuple[int, str]] = {}
        for ids in chunks(conv_ids):
            c = m.Conversation
            for row in (
                await session.execute(
                    select(c.id, c.queue_id, c.inbox_id, c.status, c.enqueued_at, c.first_enqueued_at).where(
                        c.id.in_(ids)
                    )
                )
            ).all():
                convs[row[0]] = tuple(row[1:])
            b = m.BotSession
            for conv_id, rev_id, status in (
                await session.execute(
                    select(b.conversation_id, b.revision_id, b.status).where(b.conversation_id.in_(ids))
                )
            ).all():
                sessions[conv_id] = (rev_id, status)
        funnel: dict[tuple[Any, ...], dict[str, int]] = {}
        per_node: dict[tuple[Any, ...], dict[str, int]] = {}
        for (conv_id, rev_id), run in runs.items():
            queue_id, inbox_id, status, enqueued_at, first_enqueued_at = convs.get(
                conv_id, (0, 0, "", None, None)
            )
            began = min(x[3] for x in run)
            enqueued = max((t for t in (enqueued_at, first_enqueued_at) if t is not None), default=None)
            still = status == m.ConversationStatus.BOT and sessions.get(conv_id) == (rev_id, "running")
            outcome = run_outcome(
                [(n, o) for n, o, _, _ in run], began, enqueued_at=enqueued, still_running=still
            )
            key = (floor_interval(began), rev_id, run[0][2], queue_id or 0, inbox_id or 0)
            counts = funnel.setdefault(key, {"started": 0, **dict.fromkeys(OUTCOMES, 0)})
            counts["started"] += 1
            counts[outcome] += 1
            folded = fold_steps((node, o, 1) for node, o, _, _ in run)
            if outcome == "dropped":
                folded.setdefault(run[-1][0], {"entered": 0, "left": 0, "invalid": 0, "no_input": 0})
                folded[run[-1][0]]["dropped"] = 1
            for node, stats in folded.items():
                entry = per_node.setdefault(
                    (*key, node[:64]), {"entered": 0, "left": 0, "invalid": 0, "no_input": 0, "dropped": 0}
                )
                for field in entry:
                    entry[field] += int(stats.get(field, 0))
        names = ("bucket", "revision_id", "channel", "queue_id", "inbox_id")
        if funnel:
            await session.execute(
                insert(runs_t), [dict(zip(names, k, strict=True)) | v for k, v in funnel.items()]
            )
        if per_node:
            await session.execute(
                insert(nodes_t),
                [dict(zip((*names, "node"), k, strict=True)) | v for k, v in per_node.items()],
            )


rollups.register(BotFunnelRollup())


# --- reports --------------------------------------------------------------------------------


async def _revisions(session: AsyncSession, ids: set[int]) -> dict[int, tuple[str, int, dict[str, Any]]]:
    """Scenario name, revision number and document of each revision."""
    if not ids:
        return {}
    r, sc = m.ScenarioRevision, m.Scenario
    rows = await session.execute(
        select(r.id, sc.name, r.number, r.document).join(sc, sc.id == r.scenario_id).where(r.id.in_(ids))
    )
    return {rid: (name, number, doc or {}) for rid, name, number, doc in rows.all()}


FUNNEL_COLUMNS = (
    Column("scenario", Kind.LABEL, "Scenario"),
    Column("revision", Kind.COUNT, "Revision"),
    Column("channel", Kind.LABEL, "Channel", labels="enum.channel"),
    Column("bot_started", Kind.COUNT, "Started"),
    Column("bot_handed_off", Kind.COUNT, "Handed off"),
    Column("bot_handed_off_pct", Kind.PERCENT, "Handed off, %"),
    Column("bot_contained", Kind.COUNT, "Contained"),
    Column("bot_contained_pct", Kind.PERCENT, "Contained, %"),
    Column("bot_dropped", Kind.COUNT, "Dropped"),
    Column("bot_dropped_pct", Kind.PERCENT, "Dropped, %"),
    Column("bot_moved", Kind.COUNT, "Moved to another scenario"),
    Column("bot_running", Kind.COUNT, "Still with the bot"),
)


def _funnel_row(label: str, number: int | None, channel: str, v: dict[str, int]) -> list[Any]:
    n = v["started"]
    return [
        label, number, channel, n,
        v["handed_off"], pct(v["handed_off"], n),
        v["contained"], pct(v["contained"], n),
        v["dropped"], pct(v["dropped"], n),
        v["moved"], v["running"],
    ]  # fmt: skip


async def bot_funnel(session: AsyncSession, scope: Scope) -> ReportTable:
    """Per scenario revision and channel: started, handed off, contained, dropped."""
    table = ReportTable(
        key="bot_funnel",
        columns=FUNNEL_COLUMNS,
        chart=Chart("stacked", "scenario", ("bot_handed_off", "bot_contained", "bot_dropped")),
        notes=["rpt.note.bot_funnel"],
    )
    if scope.empty:
        return table
    t = m.ReportBotInterval
    fields = ("started", *OUTCOMES)
    stmt = (
        select(t.revision_id, t.channel, *(func.sum(getattr(t, k)) for k in fields))
        .where(*conditions(t, scope))
        .group_by(t.revision_id, t.channel)
    )
    rows = [
        (rev, ch, dict(zip(fields, (int(x or 0) for x in sums), strict=True)))
        for rev, ch, *sums in (await session.execute(stmt)).all()
    ]
    revs = await _revisions(session, {r for r, _, _ in rows})
    total = dict.fromkeys(fields, 0)
    for rev, ch, v in sorted(
        rows, key=lambda x: (revs.get(x[0], ("", 0))[0], revs.get(x[0], ("", 0))[1], x[1])
    ):
        name, number, _ = revs.get(rev, (str(rev), 0, {}))
        table.rows.append(_funnel_row(name, number, ch, v))
        for k in fields:
            total[k] += v[k]
    table.totals = _funnel_row("", None, "", total)
    return table


def node_type(document: dict[str, Any], node: str) -> str:
    for entry in document.get("nodes") or []:
        if isinstance(entry, dict) and entry.get("id") == node:
            return str(entry.get("type", ""))
    return ""


DROPOFF_COLUMNS = (
    Column("scenario", Kind.LABEL, "Scenario"),
    Column("revision", Kind.COUNT, "Revision"),
    Column("channel", Kind.LABEL, "Channel", labels="enum.channel"),
    Column("node", Kind.LABEL, "Node"),
    Column("node_type", Kind.TEXT, "Node type"),
    Column("node_entered", Kind.COUNT, "Entered"),
    Column("node_left", Kind.COUNT, "Left"),
    Column("node_invalid", Kind.COUNT, "Invalid input"),
    Column("node_no_input", Kind.COUNT, "No input"),
    Column("bot_dropped", Kind.COUNT, "Dropped"),
    Column("node_drop_pct", Kind.PERCENT, "Dropped of entered, %"),
)


async def bot_dropoff(session: AsyncSession, scope: Scope) -> ReportTable:
    """Where customers drop: per node of each revision and channel, most drops first."""
    table = ReportTable(
        key="bot_dropoff", columns=DROPOFF_COLUMNS, chart=Chart("bar", "node", ("bot_dropped",))
    )
    if scope.empty:
        return table
    t = m.ReportBotNodeInterval
    fields = ("entered", "left", "invalid", "no_input", "dropped")
    stmt = (
        select(t.revision_id, t.channel, t.node, *(func.sum(getattr(t, k)) for k in fields))
        .where(*conditions(t, scope))
        .group_by(t.revision_id, t.channel, t.node)
    )
    rows = [
        (rev, ch, node, [int(x or 0) for x in sums])
        for rev, ch, node, *sums in (await session.execute(stmt)).all()
    ]
    revs = await _revisions(session, {r[0] for r in rows})
    rows.sort(key=lambda r: (-r[3][4], revs.get(r[0], ("", 0, {}))[0], r[1], r[2]))
    for rev, ch, node, (entered, left, invalid, no_input, dropped) in rows:
        name, number, doc = revs.get(rev, (str(rev), 0, {}))
        table.rows.append(
            [name, number, ch, node, node_type(doc, node), entered, left, invalid, no_input, dropped,
             pct(dropped, entered)]
        )  # fmt: skip
    return table


_FILTERS = ("period", "queue", "group", "channel", "inbox")
registry.register(registry.ReportSpec("bot_funnel", bot_funnel, filters=_FILTERS, order=80))
registry.register(registry.ReportSpec("bot_dropoff", bot_dropoff, filters=_FILTERS, order=81))

__all__ = ["BotFunnelRollup", "bot_dropoff", "bot_funnel", "node_type", "run_outcome"]
