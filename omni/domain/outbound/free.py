"""Who is free for outbound: the operators a campaign's pass may reserve, longest idle first.

``free_for_outbound`` is one statement (the staff, their load as inbound counts it and, with
blending, the inbound contacts waiting for them), which the scheduler's campaigns read also
carries as a column on PostgreSQL (``free_column``: one round trip fewer per pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, case, func, literal, literal_column, select, union, union_all
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.outbound import CampaignChannel, CampaignState, DialMode
from omni.domain.capacity import Load, add_load, fits, load_rows
from omni.domain.routing import Operator

__all__ = ["free_column", "free_for_outbound", "free_rows", "when"]


def when(value: str | None) -> datetime | None:
    """A timestamp from JSON (``json_build_array`` writes ISO 8601 with the offset)."""
    return datetime.fromisoformat(value) if value is not None else None


@lru_cache(maxsize=2)
def _staff_statement(correlated: bool = False) -> Any:
    """Members of a campaign's queue and its named operators whose status takes outbound and
    who hold no open attempt (built once; run with bound ``queue_id`` and ``campaign_id``, or
    ``correlated``: those of the enclosing statement's ``campaigns`` row)."""
    queue_id: Any = literal_column("campaigns.queue_id") if correlated else bindparam("queue_id")
    campaign_id: Any = literal_column("campaigns.id") if correlated else bindparam("campaign_id")
    members = union(
        select(m.QueueMember.user_id).where(m.QueueMember.queue_id == queue_id),
        select(m.CampaignOperator.user_id).where(m.CampaignOperator.campaign_id == campaign_id),
    ).subquery()
    open_attempt = (
        select(m.CampaignAttempt.id)
        .where(m.CampaignAttempt.operator_id == m.User.id, m.CampaignAttempt.ended_at.is_(None))
        .exists()
    )
    return (
        select(
            m.User.id,
            m.User.capacity,
            m.User.chat_weight,
            m.User.voice_weight,
            m.User.handles_chat,
            m.User.handles_voice,
            m.OperatorPresence.idle_since,
            m.OperatorStatus.receives_voice,
            m.OperatorStatus.receives_chats,
        )
        .join(m.OperatorPresence, m.OperatorPresence.user_id == m.User.id)
        .join(m.OperatorStatus, m.OperatorStatus.id == m.OperatorPresence.status_id)
        .where(
            m.User.id.in_(select(members.c.user_id)),
            m.User.is_active.is_(True),
            m.OperatorStatus.takes_outbound.is_(True),
            ~open_attempt,
        )
        .order_by(m.OperatorPresence.idle_since, m.User.id)
    )


@lru_cache(maxsize=4)
def _free_statement(blending: bool, correlated: bool = False) -> Any:
    """Who is free, in one statement: the staff (``_staff_statement``) with their load
    (``capacity.load_rows``) and, for ``blending``, the inbound contacts waiting for them
    (kind ``"w"``), one row per operator and kind of load, longest idle first. Three round
    trips were most of an idle tick on a busy machine. Built once, run with bound values
    (``correlated``: for the campaigns read's ``free_column``)."""
    staff = _staff_statement(correlated).order_by(None).cte("staff", nesting=correlated)
    who = select(staff.c.id)
    branches = list(load_rows(who).selects)
    if blending:
        queued = m.ConversationStatus.QUEUED
        waiting = union_all(
            select(m.QueueMember.user_id.label("uid"), m.Conversation.medium)
            .join(m.Conversation, m.Conversation.queue_id == m.QueueMember.queue_id)
            .where(m.QueueMember.user_id.in_(who), m.Conversation.status == queued),
            select(m.Conversation.preferred_user_id.label("uid"), m.Conversation.medium).where(
                m.Conversation.preferred_user_id.in_(who), m.Conversation.status == queued
            ),
        ).subquery()
        branches.append(
            select(
                waiting.c.uid, waiting.c.medium, literal("w").label("kind"), func.count().label("n")
            ).group_by(waiting.c.uid, waiting.c.medium)
        )
    loads = union_all(*branches).subquery("loads")
    return (
        select(*staff.c, loads.c.medium, loads.c.kind, loads.c.n)
        .select_from(staff.outerjoin(loads, loads.c.uid == staff.c.id))
        .order_by(staff.c.idle_since, staff.c.id)
    )


@cache
def free_column() -> Any:
    """``_free_statement`` as a column of the campaigns read (PostgreSQL): the rows as a JSON
    array for a running voice campaign that reserves operators, ``NULL`` for the others (its
    own statement then runs if it is needed). One round trip fewer per pass."""
    C = m.Campaign

    def rows(blending: bool) -> Any:
        f = _free_statement(blending, correlated=True).order_by(None).subquery("f")
        agg = func.json_agg(aggregate_order_by(func.json_build_array(*f.c), f.c.idle_since, f.c.id))
        return select(func.coalesce(agg, literal_column("'[]'::json"))).scalar_subquery()

    reserves = and_(
        C.state == CampaignState.RUNNING,
        C.channel == CampaignChannel.VOICE,
        C.dial_mode != DialMode.AGENTLESS,
    )
    return case(
        (and_(reserves, C.inbound_priority.is_(True)), rows(True)),
        (reserves, rows(False)),
        else_=None,
    )


def free_rows(value: Any) -> list[Sequence[Any]]:
    """``free_column``'s JSON as the rows ``_free_statement`` returns."""
    return [(*r[:6], when(r[6]), *r[7:]) for r in value]


async def free_for_outbound(
    session: AsyncSession, campaign: m.Campaign, *, read: Sequence[Sequence[Any]] | None = None
) -> list[int]:
    """Operators who may get one of this campaign's attempts now, longest idle first.

    Members of the campaign's queue and its named operators, active, whose chosen status
    ``takes_outbound`` (offline, pause and DND statuses don't), holding no open attempt of any
    campaign, with capacity left for one more contact of the campaign's medium as inbound
    counts it (``capacity.fits``: a call needs the whole operator unless they are configured
    otherwise), and — with the campaign's ``inbound_priority`` — with no inbound contact
    waiting in one of their queues (that contact is theirs first; outbound resumes after).

    ``read``: ``_free_statement``'s rows as the tick's campaigns read brought them (nothing to
    run).
    """
    rows = read
    if rows is None:
        rows = (
            await (await session.connection()).execute(
                _free_statement(bool(campaign.inbound_priority)),
                {"queue_id": campaign.queue_id, "campaign_id": campaign.id},
            )
        ).all()
    staff: dict[int, tuple[Operator, bool, bool]] = {}
    loads: dict[int, Load] = {}
    waiting: dict[int, set[str]] = {}
    for row in rows:
        uid = row[0]
        if uid not in staff:
            staff[uid] = (Operator(*row[:7]), bool(row[7]), bool(row[8]))
            loads[uid] = Load()
        medium, kind, count = row[9], row[10], row[11]
        if kind == "w":
            waiting.setdefault(uid, set()).add(medium)
        elif kind is not None:
            add_load(loads[uid], medium, kind, int(count))
    medium = m.Medium.VOICE if campaign.channel == CampaignChannel.VOICE else m.Medium.CHAT
    free: list[int] = []
    for uid, (user, voice, chats) in staff.items():
        if not fits(user, loads[uid], medium, chats_block_calls=True):
            continue
        # Blending: a waiting inbound contact the operator's status takes is theirs first.
        if any(voice if w == m.Medium.VOICE else chats for w in waiting.get(uid, ())):
            continue
        free.append(uid)
    return free
