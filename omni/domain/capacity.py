"""Operator load across channels, in weighted units (default: 3 chats or 1 call)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    ARRAY,
    BindParameter,
    and_,
    any_,
    bindparam,
    case,
    func,
    literal,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m

# Conversations that hold an operator's capacity: offered to, being handled, or in wrap-up.
HOLDING = (*m.LOAD_STATUSES, m.ConversationStatus.WRAP_UP)
_ASSIGNED = tuple(s for s in HOLDING if s != m.ConversationStatus.OFFERED)
"""What counts as an assigned conversation in the load: an offered one counts as its offer."""


class Staffed(Protocol):
    """What capacity rules read of an operator (an ``m.User`` or a routing snapshot of one)."""

    @property
    def capacity(self) -> int: ...
    @property
    def chat_weight(self) -> int: ...
    @property
    def voice_weight(self) -> int: ...
    @property
    def handles_chat(self) -> bool: ...
    @property
    def handles_voice(self) -> bool: ...


@dataclass(slots=True)
class Load:
    chats: int = 0
    calls: int = 0
    offers_chat: int = 0
    offers_voice: int = 0

    def units(self, user: Staffed) -> int:
        return (self.chats + self.offers_chat) * user.chat_weight + (
            self.calls + self.offers_voice
        ) * user.voice_weight

    def voice_units(self, user: Staffed) -> int:
        return (self.calls + self.offers_voice) * user.voice_weight

    @property
    def busy(self) -> bool:
        return bool(self.chats or self.calls or self.offers_chat or self.offers_voice)


def weight(user: Staffed, medium: str) -> int:
    return user.voice_weight if medium == m.Medium.VOICE else user.chat_weight


def fits(user: Staffed, load: Load, medium: str, *, chats_block_calls: bool) -> bool:
    """Whether one more conversation of ``medium`` fits in the operator's capacity.

    A call normally needs the whole operator; with ``chats_block_calls`` off a queue lets a
    call through while chats are open (the chats still can't grow past capacity afterwards).
    """
    if medium == m.Medium.VOICE and not user.handles_voice:
        return False
    if medium == m.Medium.CHAT and not user.handles_chat:
        return False
    used = load.voice_units(user) if medium == m.Medium.VOICE and not chats_block_calls else load.units(user)
    return used + weight(user, medium) <= user.capacity


def units_clause(user: Any, load: Any) -> Any:
    """:meth:`Load.units` in SQL: ``user`` has ``Staffed``'s columns, ``load`` ``Load``'s."""
    return (load.chats + load.offers_chat) * user.chat_weight + (
        load.calls + load.offers_voice
    ) * user.voice_weight


def fits_clause(user: Any, load: Any, medium: Any, chats_block_calls: Any) -> Any:
    """:func:`fits` as a SQL condition (``user``, ``load`` as for :func:`units_clause`;
    ``medium`` and ``chats_block_calls`` expressions), for a statement that leaves out the
    operators without room (``routing_pg_sql.decision_statement``).
    ``tests/domain/test_capacity_sql.py`` checks it agrees with :func:`fits` on every
    combination of a grid."""
    voice = medium == m.sql_constant(m.Medium.VOICE)
    voice_units = (load.calls + load.offers_voice) * user.voice_weight
    used = case((and_(voice, not_(chats_block_calls)), voice_units), else_=units_clause(user, load))
    weight = case((voice, user.voice_weight), else_=user.chat_weight)
    return and_(
        or_(not_(voice), user.handles_voice),
        or_(medium != m.sql_constant(m.Medium.CHAT), user.handles_chat),
        used + weight <= user.capacity,
    )


def remaining(user: Staffed, load: Load) -> int:
    return user.capacity - load.units(user)


def _among(column: Any, who: Any, one: bool) -> Any:
    """``column`` is one of ``who``: ``= ANY(:array)`` for a bound array, ``=`` for one bound
    id (neither is re-expanded on every call, as an expanding ``IN`` list is) or with ``one``,
    else ``IN``."""
    if one:
        return column == who
    if isinstance(who, BindParameter) and not who.expanding:
        return column == any_(who) if isinstance(who.type, ARRAY) else column == who
    return column.in_(who)


def load_rows(who: Any, *, one: bool = False) -> Any:
    """The statement behind ``loads_for``: ``(uid, medium, kind, count)`` rows for the operators
    ``who`` selects (a list, an expanding bind, a bound array or id, or a subquery of ids; with
    ``one``, an expression for one operator's id, such as a column of an enclosing query: the
    router reads each candidate's load by index this way, ``routing_pg_sql``);
    ``kind`` is ``"a"`` for assigned conversations and ``"o"`` for offers and campaign attempts
    reserved for them. Callers that read the operators in the same statement (the campaign
    scheduler) join it."""
    assigned = (
        select(
            m.Conversation.assigned_user_id.label("uid"),
            m.Conversation.medium,
            literal("a").label("kind"),
            func.count().label("n"),
        )
        .where(
            _among(m.Conversation.assigned_user_id, who, one),
            # The holding statuses but ``offered`` (offers count below), listed as constants
            # written into the SQL, not bound (``sql_constant``): a generic plan then knows what
            # they select, and an index on ``status`` never walks the offered conversations of
            # everyone (``HOLDING`` then ``!= 'offered'`` did, per candidate; bench/README.md,
            # "Issue 15 … route6").
            m.Conversation.status.in_([m.sql_constant(v) for v in _ASSIGNED]),
        )
        .group_by(m.Conversation.assigned_user_id, m.Conversation.medium)
    )
    offered = (
        select(
            m.Offer.user_id.label("uid"),
            m.Conversation.medium,
            literal("o").label("kind"),
            func.count().label("n"),
        )
        .join(m.Conversation, m.Conversation.id == m.Offer.conversation_id)
        .where(_among(m.Offer.user_id, who, one), m.Offer.state == m.OFFER_PENDING)  # partial index
        .group_by(m.Offer.user_id, m.Conversation.medium)
    )
    # An operator reserved for an open campaign attempt (a preview card shown, a progressive call
    # ringing the customer) is as busy as with an offer: the router must not ring them too.
    attempts = (
        select(
            m.CampaignAttempt.operator_id.label("uid"),
            case(
                (m.CampaignAttempt.channel == m.sql_constant("voice"), m.sql_constant(m.Medium.VOICE)),
                else_=m.sql_constant(m.Medium.CHAT),
            ),
            literal("o").label("kind"),
            func.count().label("n"),
        )
        .where(
            _among(m.CampaignAttempt.operator_id, who, one),
            m.CampaignAttempt.ended_at.is_(None),
            # Answered: the operator's conversation holds the capacity from here (counted once).
            m.CampaignAttempt.answered_at.is_(None),
        )
        .group_by(m.CampaignAttempt.operator_id, m.CampaignAttempt.channel)
    )
    branches: list[Any] = [assigned, offered, attempts]
    if one:  # the operator's id may be a column of a query further out: leave it there
        tables = (m.Conversation, m.Offer, m.CampaignAttempt)
        branches = [q.correlate_except(*tables) for q in branches]
    return union_all(*branches)


def add_load(load: Load, medium: str, kind: str, count: int) -> None:
    """Count one ``load_rows`` row into the operator's ``load``."""
    voice = medium == m.Medium.VOICE
    if kind == "a":
        if voice:
            load.calls += count
        else:
            load.chats += count
    elif voice:
        load.offers_voice += count
    else:
        load.offers_chat += count


@cache
def _loads_statement(by_queue: bool) -> Any:
    """``load_rows`` built once with bound values (building and keying it cost more than
    running it, on every routing decision and scheduler tick)."""
    if by_queue:
        queues: Any = bindparam("queues", expanding=True)
        return load_rows(select(m.QueueMember.user_id).where(m.QueueMember.queue_id.in_(queues)))
    return load_rows(bindparam("ids", expanding=True))


async def loads_for(
    session: AsyncSession, user_ids: Iterable[int], *, members_of: Sequence[int] | None = None
) -> dict[int, Load]:
    """Current load of each operator, from assignments, pending offers and open campaign attempts
    reserved for them, in one query.

    ``members_of`` (queue ids) selects the operators by membership in SQL instead of a long
    ``IN`` list, which is what the router asks for on every decision.
    """
    ids = list(user_ids)
    result: dict[int, Load] = {uid: Load() for uid in ids}
    if not ids:
        return result
    if members_of is not None:
        stmt, values = _loads_statement(True), {"queues": list(members_of)}
    else:
        stmt, values = _loads_statement(False), {"ids": ids}
    rows: Sequence[Any] = (await session.execute(stmt, values)).all()
    for uid, medium, kind, count in rows:
        load = result.get(uid)
        if load is not None:
            add_load(load, medium, kind, count)
    return result
