"""Scenario management: drafts, publish with checks, immutable revisions, rollback, diff,
import/export and per-node statistics. Supervisors and admins edit; auditors read."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bots.checks import check
from bots.scenario import Problem, Scenario, ScenarioFormatError, load
from omni.db import models as m
from omni.domain import audit, grants
from omni.domain.auth import Principal, check_role
from omni.domain.errors import Conflict, InvalidInput, NotFound

KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
EDITORS = (m.Role.SUPERVISOR, m.Role.ADMIN)
READERS = (m.Role.SUPERVISOR, m.Role.ADMIN, m.Role.AUDITOR)


class PublishRefused(InvalidInput):
    """The draft has problems; each names its node, for the builder to show on the canvas."""

    def __init__(self, problems: list[Problem]) -> None:
        first: object = problems[0] if problems else "the scenario has problems"  # translated as a whole
        if len(problems) > 1:
            super().__init__(
                "can't publish: {first} (and {more} more)",
                first=first,
                more=len(problems) - 1,
                field="document",
            )
        else:
            super().__init__("can't publish: {first}", first=first, field="document")
        self.problems = problems


def scenario_dict(row: m.Scenario) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "name": row.name,
        "active_revision_id": row.active_revision_id,
        "updated_at": row.updated_at.isoformat(),
    }


def revision_dict(rev: m.ScenarioRevision, *, with_document: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rev.id,
        "number": rev.number,
        "content_hash": rev.content_hash,
        "published_at": rev.published_at.isoformat(),
        "published_by_id": rev.published_by_id,
        "note": rev.note,
    }
    if with_document:
        out["document"] = rev.document
    return out


def parse(document: Any) -> Scenario:
    """Shape errors become a 422 that lists each problem (naming the node where it can)."""
    if not isinstance(document, dict):
        raise InvalidInput("the scenario must be a JSON object", field="document")
    try:
        return load(document)
    except ScenarioFormatError as exc:
        raise PublishRefused(exc.problems) from exc


async def get(session: AsyncSession, who: Principal, scenario_id: int) -> m.Scenario:
    check_role(who, *READERS)
    row = await session.get(m.Scenario, scenario_id)
    if row is None:
        raise NotFound("scenario {scenario_id} not found", scenario_id=scenario_id)
    return row


async def by_key(session: AsyncSession, key: str) -> m.Scenario | None:
    row: m.Scenario | None = await session.scalar(select(m.Scenario).where(m.Scenario.key == key))
    return row


async def list_all(session: AsyncSession, who: Principal) -> list[m.Scenario]:
    check_role(who, *READERS)
    return list(await session.scalars(select(m.Scenario).order_by(m.Scenario.name)))


async def create(session: AsyncSession, who: Principal, key: str, name: str, document: Any) -> m.Scenario:
    check_role(who, *EDITORS)
    await grants.check(session, who, grants.SCENARIO_MANAGE)
    if not KEY.match(key or ""):
        raise InvalidInput("key: lowercase letters, digits, '-' and '_', starting with a letter", field="key")
    if not name or len(name) > 128:
        raise InvalidInput("name: 1 to 128 characters", field="name")
    if await by_key(session, key) is not None:
        raise Conflict("a scenario with key '{key}' already exists", key=key)
    scenario = parse(document)
    now = datetime.now(UTC)
    row = m.Scenario(key=key, name=name, draft=_stored(scenario), created_at=now, updated_at=now)
    session.add(row)
    await session.flush()
    audit.record(session, who, "scenario.create", object_type="scenario", object_id=row.id, data={"key": key})
    return row


def _stored(scenario: Scenario) -> dict[str, Any]:
    return scenario.model_dump(mode="json", by_alias=True)


async def save_draft(session: AsyncSession, who: Principal, scenario_id: int, document: Any) -> list[Problem]:
    """Store the draft (any well-formed graph) and return what would stop it publishing."""
    check_role(who, *EDITORS)
    await grants.check(session, who, grants.SCENARIO_MANAGE)
    row = await get(session, who, scenario_id)
    scenario = parse(document)
    row.draft = _stored(scenario)
    row.updated_at = datetime.now(UTC)
    return check(scenario, scenario_keys=await _keys(session), prompt_ids=await _prompt_ids(session))


async def _keys(session: AsyncSession) -> set[str]:
    return set(await session.scalars(select(m.Scenario.key)))


async def _prompt_ids(session: AsyncSession) -> set[int]:
    return set(await session.scalars(select(m.Prompt.id)))


async def _channels_using(session: AsyncSession, key: str) -> set[str]:
    inboxes = await session.scalars(select(m.Inbox).where(m.Inbox.active.is_(True)))
    used = {i.channel for i in inboxes if (i.config or {}).get("scenario") == key}
    # An agentless campaign plays the scenario on its calls (docs/dialer.md).
    agentless = await session.scalar(
        select(m.Campaign.id).where(m.Campaign.scenario == key, m.Campaign.dial_mode == "agentless").limit(1)
    )
    return used | ({"voice"} if agentless is not None else set())


async def problems(session: AsyncSession, row: m.Scenario) -> list[Problem]:
    scenario = parse(row.draft)
    found = check(scenario, scenario_keys=await _keys(session), prompt_ids=await _prompt_ids(session))
    for channel in sorted(await _channels_using(session, row.key)):
        found.extend(p for p in check(scenario, channel) if p.code == "channel" and p not in found)
    return found


async def publish(
    session: AsyncSession, who: Principal, scenario_id: int, note: str = ""
) -> m.ScenarioRevision:
    """A new immutable revision becomes active; the same content again reuses the revision."""
    check_role(who, *EDITORS)
    await grants.check(session, who, grants.SCENARIO_MANAGE)
    row = await get(session, who, scenario_id)
    found = await problems(session, row)
    if found:
        raise PublishRefused(found)
    scenario = parse(row.draft)
    digest = scenario.content_hash()
    same = await session.scalar(
        select(m.ScenarioRevision).where(
            m.ScenarioRevision.scenario_id == row.id, m.ScenarioRevision.content_hash == digest
        )
    )
    if same is not None:
        row.active_revision_id = same.id
        return same
    number = (
        await session.scalar(
            select(func.max(m.ScenarioRevision.number)).where(m.ScenarioRevision.scenario_id == row.id)
        )
        or 0
    ) + 1
    rev = m.ScenarioRevision(
        scenario_id=row.id,
        number=number,
        content_hash=digest,
        document=_stored(scenario),
        published_by_id=who.id,
        published_at=datetime.now(UTC),
        note=note[:256],
    )
    session.add(rev)
    await session.flush()
    row.active_revision_id = rev.id
    audit.record(
        session, who, "scenario.publish", object_type="scenario", object_id=row.id, data={"revision": number}
    )
    return rev


async def revisions(session: AsyncSession, who: Principal, scenario_id: int) -> list[m.ScenarioRevision]:
    await get(session, who, scenario_id)
    return list(
        await session.scalars(
            select(m.ScenarioRevision)
            .where(m.ScenarioRevision.scenario_id == scenario_id)
            .order_by(m.ScenarioRevision.number.desc())
        )
    )


async def _revision(session: AsyncSession, scenario_id: int, revision_id: int) -> m.ScenarioRevision:
    rev = await session.get(m.ScenarioRevision, revision_id)
    if rev is None or rev.scenario_id != scenario_id:
        raise NotFound(
            "revision {revision_id} of scenario {scenario_id} not found",
            revision_id=revision_id,
            scenario_id=scenario_id,
        )
    return rev


async def rollback(session: AsyncSession, who: Principal, scenario_id: int, revision_id: int) -> m.Scenario:
    """Point new conversations at an older revision; running ones stay where they are."""
    check_role(who, *EDITORS)
    await grants.check(session, who, grants.SCENARIO_MANAGE)
    row = await get(session, who, scenario_id)
    rev = await _revision(session, scenario_id, revision_id)
    row.active_revision_id = rev.id
    audit.record(
        session,
        who,
        "scenario.rollback",
        object_type="scenario",
        object_id=row.id,
        data={"revision": rev.number},
    )
    return row


async def diff(
    session: AsyncSession, who: Principal, scenario_id: int, a_id: int, b_id: int
) -> dict[str, Any]:
    await get(session, who, scenario_id)
    a = load((await _revision(session, scenario_id, a_id)).document)
    b = load((await _revision(session, scenario_id, b_id)).document)
    return diff_documents(a, b)


def diff_documents(a: Scenario, b: Scenario) -> dict[str, Any]:
    """What changed from ``a`` to ``b``: nodes added/removed/changed (field by field), variables."""
    na = {n.id: n.model_dump(mode="json", by_alias=True) for n in a.nodes}
    nb = {n.id: n.model_dump(mode="json", by_alias=True) for n in b.nodes}
    changed = []
    for nid in sorted(set(na) & set(nb)):
        fields = sorted(k for k in set(na[nid]) | set(nb[nid]) if na[nid].get(k) != nb[nid].get(k))
        if fields:
            changed.append(
                {"node": nid, "fields": {f: {"from": na[nid].get(f), "to": nb[nid].get(f)} for f in fields}}
            )
    va = {v.name: v.model_dump(mode="json") for v in a.variables}
    vb = {v.name: v.model_dump(mode="json") for v in b.variables}
    return {
        "added": sorted(set(nb) - set(na)),
        "removed": sorted(set(na) - set(nb)),
        "changed": changed,
        "start": {"from": a.start, "to": b.start} if a.start != b.start else None,
        "variables": {
            "added": sorted(set(vb) - set(va)),
            "removed": sorted(set(va) - set(vb)),
            "changed": sorted(k for k in set(va) & set(vb) if va[k] != vb[k]),
        },
    }


async def export(session: AsyncSession, who: Principal, scenario_id: int) -> dict[str, Any]:
    row = await get(session, who, scenario_id)
    return {"key": row.key, "name": row.name, "document": row.draft}


async def import_(session: AsyncSession, who: Principal, data: Any) -> m.Scenario:
    """A previously exported file: a new scenario, or the draft of the one with that key."""
    if not isinstance(data, dict) or "document" not in data:
        raise InvalidInput("expected an exported scenario: {key, name, document}", field="file")
    key, name = str(data.get("key", "")), str(data.get("name", ""))
    existing = await by_key(session, key)
    if existing is None:
        return await create(session, who, key, name, data["document"])
    await save_draft(session, who, existing.id, data["document"])
    return existing


def fold_steps(rows: Iterable[tuple[str, str, int]]) -> dict[str, dict[str, Any]]:
    """``bot_steps`` counted by (node, outcome) folded into per-node statistics: entered, left
    (and by port), invalid, no_input. The builder's statistics and the bot-funnel report's node
    rollup (``omni.domain.reports.bot_funnel``) both count steps this one way."""
    stats: dict[str, dict[str, Any]] = {}
    for node, outcome, count in rows:
        entry = stats.setdefault(node, {"entered": 0, "left": 0, "invalid": 0, "no_input": 0, "ports": {}})
        if outcome == "entered":
            entry["entered"] += count
        elif outcome.startswith("left:"):
            entry["left"] += count
            entry["ports"][outcome[5:]] = entry["ports"].get(outcome[5:], 0) + count
        elif outcome in ("invalid", "no_input"):
            entry[outcome] += count
    return stats


async def node_stats(
    session: AsyncSession, who: Principal, scenario_id: int, *, revision_id: int | None = None,
    channel: str | None = None,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per node: entered, left, dropped (ended there), invalid-input rate, hand-off outcomes."""
    row = await get(session, who, scenario_id)
    rev_id = revision_id or row.active_revision_id
    if rev_id is None:
        return {}
    stmt = (
        select(m.BotStep.node, m.BotStep.outcome, func.count())
        .where(m.BotStep.revision_id == rev_id)
        .group_by(m.BotStep.node, m.BotStep.outcome)
    )
    if channel:
        stmt = stmt.where(m.BotStep.channel == channel)
    stats = fold_steps((node, outcome, count) for node, outcome, count in (await session.execute(stmt)).all())
    sessions = select(m.BotSession.state, m.BotSession.status).where(m.BotSession.revision_id == rev_id)
    here: dict[str, int] = {}
    for state, status in (await session.execute(sessions)).all():
        if status == "running" and state.get("node"):
            here[state["node"]] = here.get(state["node"], 0) + 1
    for node, entry in stats.items():
        entry["waiting"] = here.get(node, 0)
        entry["dropped"] = max(0, entry["entered"] - entry["left"] - entry["waiting"])
        entry["invalid_rate"] = round(entry["invalid"] / entry["entered"], 3) if entry["entered"] else 0.0
    return stats
