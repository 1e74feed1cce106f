"""Queue settings, members and required skills for the PostgreSQL router, cached per node.

Every routing decision needs its queues' settings (strategy, timeouts, auto-accept), members
(position, penalty) and required skills. Reading them per routing pass cost three statements
on the first decision of each queue in every pass (the "max 8" of ``routing_pg``), and the
objects kept were ORM rows whose attributes are slow to read in a loop.

Here they are plain values kept per engine (one per node and process), valid for one
*configuration version*: a number in ``routing_config`` that triggers on ``queues``,
``queue_members`` and ``queue_skills`` renew from a sequence in the transaction that changes
them (migration ``0044_routecache``). The router reads the version in its first statement
(``routing_pg_sql.decision_statement``), so a change committed on any node — the admin API, a
cascade from a deleted user or queue, SQL by hand — is seen by every node's next decision;
nothing depends on an event reaching the node. Config read after the version (the same
transaction, later statements) is never older than it; a newer one is replaced at the next
decision, which sees a newer version. A number is never reused: what a transaction read with
its own change visible, before rolling back, can't pass for a later committed change.

The values are copies, never session objects: a rolled-back transaction can't expire them.
SQLite (the ORM path) keeps ``RoutePass``'s per-pass reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from omni.db import models as m

__all__ = ["NodeConfig", "QueueConfig", "membership", "node_config", "queue_config"]


@dataclass(frozen=True, slots=True)
class QueueConfig:
    queue: m.Queue
    """A transient copy of the row (not in any session)."""
    members: dict[int, tuple[int, int]]
    """``user_id -> (position, penalty)``."""
    skills: tuple[tuple[int, int], ...]
    """Required skills: ``(skill_id, min_level)``."""


class NodeConfig:
    """The queues read under one configuration ``version``."""

    __slots__ = ("queues", "version")

    def __init__(self, version: int | None) -> None:
        self.version = version
        self.queues: dict[int, QueueConfig | None] = {}


_NODES: WeakKeyDictionary[Any, NodeConfig] = WeakKeyDictionary()


def node_config(engine: Any, version: int | None) -> NodeConfig:
    """This node's cache for ``engine`` at ``version``, emptied when the version moved
    (``None``: no version row, nothing is kept between decisions)."""
    if version is None:
        return NodeConfig(None)
    node = _NODES.get(engine)
    if node is None or node.version != version:
        node = _NODES[engine] = NodeConfig(version)
    return node


async def queue_config(conn: AsyncConnection, node: NodeConfig, queue_id: int) -> QueueConfig | None:
    """The queue's settings, members and required skills (``None``: no such queue)."""
    if queue_id in node.queues:
        return node.queues[queue_id]
    q = m.Queue.__table__
    row = (await conn.execute(select(q).where(q.c.id == queue_id))).first()
    config = None
    if row is not None:
        qm, qs = m.QueueMember, m.QueueSkill
        members = (
            await conn.execute(select(qm.user_id, qm.position, qm.penalty).where(qm.queue_id == queue_id))
        ).all()
        skills = (
            await conn.execute(
                select(qs.skill_id, qs.min_level).where(qs.queue_id == queue_id).order_by(qs.skill_id)
            )
        ).all()
        config = QueueConfig(
            queue=m.Queue(**row._asdict()),
            members={r[0]: (r[1], r[2]) for r in members},
            skills=tuple((r[0], r[1]) for r in skills),
        )
    node.queues[queue_id] = config
    return config


def membership(
    conv: Any, configs: dict[int, QueueConfig], primary_id: int, rows: Sequence[Any]
) -> tuple[dict[int, tuple[int, int]], dict[int, int]]:
    """``routing._candidates``' rules of membership and skills: who may take ``conv`` with
    their ``(position, penalty)`` (the primary queue's, else the first queue's that has them)
    and skill score; ``rows`` are the candidates read with their skills (empty when no queue
    requires any)."""
    preferred = conv.preferred_user_id
    if preferred is None and not rows:  # no skills required: membership alone decides
        if len(configs) == 1:
            return configs[primary_id].members, {}
        merged: dict[int, tuple[int, int]] = {}
        for cfg in reversed(configs.values()):
            merged.update(cfg.members)
        merged.update(configs[primary_id].members)
        return merged, {}
    levels_of = {r[0]: dict(zip(r[13] or (), r[14] or (), strict=True)) for r in rows}
    member_of: dict[int, tuple[int, int]] = {}
    skill_score: dict[int, int] = {}
    relax = conv.skill_relax
    for qid, cfg in configs.items():
        members: Any = cfg.members.items()
        if preferred is not None:
            members = [(preferred, cfg.members.get(preferred, (0, 0)))]
        for uid, place in members:
            levels = levels_of.get(uid, {})
            ok = all(
                levels.get(skill, 0) >= level - relax for skill, level in cfg.skills if level - relax > 0
            )
            if not ok and preferred is None:
                continue
            if uid not in member_of or qid == primary_id:
                member_of[uid] = place
                skill_score[uid] = sum(levels.get(skill, 0) for skill, _ in cfg.skills)
    return member_of, skill_score
