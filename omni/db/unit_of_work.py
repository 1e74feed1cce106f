"""The unit of work one transaction carries: what plug-ins provide to it, and what it did.

Domain actions only get an ``AsyncSession``; what they need beyond the rows (the scenario
engine, the deadline kinds a plug-in adds) and what they leave for after the commit (the relay
and routing nudges, a bot's HTTP calls) travels in one typed object, reached through
:func:`unit_of_work`. ``Database.transaction()`` creates it and, only after a successful commit,
hands it to the after-commit hooks and runs what it queued; a rollback drops it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from omni.db import models as m

if TYPE_CHECKING:
    from omni.db.outbox import OutboxRow

__all__ = ["BotGateway", "DeadlineHandler", "Plugins", "UnitOfWork", "attached", "unit_of_work"]

DeadlineHandler = Callable[[AsyncSession, m.Deadline], Awaitable[None]]
"""Fires one expired deadline of a kind, inside the engine's transaction."""


class BotGateway(Protocol):
    """How the core hands conversations to the scenario engine (``bots.runner``) without
    importing it; the composition root plugs it in through ``Database.plugins``."""

    companion: type[m.Base] | None
    """A mapped class whose primary key is a conversation id (the bot session), or ``None``.
    Every inbound message of a conversation the gateway runs needs that row locked; the
    ingest look-up reads it ``FOR UPDATE`` with the conversation, in the same round trip, and
    leaves it in :attr:`UnitOfWork.held` for :meth:`on_inbound` (bench/scenarios.py)."""

    async def start(
        self,
        session: AsyncSession,
        conv: m.Conversation,
        scenario_key: str,
        *,
        variables: dict[str, Any] | None = None,
    ) -> bool: ...
    async def on_inbound(self, session: AsyncSession, conv: m.Conversation, message: m.Message) -> bool: ...
    async def hand_to_bot(self, session: AsyncSession, conv: m.Conversation, scenario_key: str) -> bool: ...


@dataclass
class Plugins:
    """What plug-ins registered on one ``Database``; every transaction it opens sees them.

    Registration goes through the methods, so the composition root, the bot runner and tests
    plug in the same way and mypy checks what they plug in.
    """

    bot_gateway: BotGateway | None = None
    deadline_handlers: dict[str, DeadlineHandler] = field(default_factory=dict)

    def install_bot_gateway(self, gateway: BotGateway | None) -> BotGateway | None:
        """Plug in the scenario engine (one per database); returns the one it replaces."""
        old, self.bot_gateway = self.bot_gateway, gateway
        return old

    def add_deadline_handler(self, kind: str, handler: DeadlineHandler) -> None:
        """Fire deadlines of ``kind`` (one the core doesn't know) with ``handler``."""
        self.deadline_handlers[kind] = handler


@dataclass
class UnitOfWork:
    """One transaction's plug-ins and its record of what must follow the commit."""

    bot_gateway: BotGateway | None = None
    """The scenario engine plugged into the database when the transaction began, if any."""
    deadline_handlers: Mapping[str, DeadlineHandler] = field(default_factory=dict)
    """Deadline kinds added by plug-ins (the core's own are ``engine.HANDLERS``)."""
    events_written: bool = False
    """An event went into the outbox: the relay is nudged after the commit."""
    routing_needed: bool = False
    """Routing may now find a match: the routing engine is nudged after the commit."""
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    """Work to start once the changes are committed (a bot's HTTP calls), in order."""
    held: dict[tuple[type[m.Base], Any], m.Base | None] = field(default_factory=dict)
    """Rows this transaction already read ``FOR UPDATE`` for a plug-in, by (mapped class,
    primary key); ``None``: looked for under the same lock and absent. The core fills it (the
    ingest look-up reads the bot gateway's ``companion``); the plug-in takes its row with
    :meth:`take_held` instead of reading and locking it again."""
    outbox: list[OutboxRow] = field(default_factory=list)
    """Events emitted and not written yet, in emit order: the session writes them after its
    next flush, at the latest at commit (``omni.db.outbox``)."""
    recorders: list[list[Any]] = field(default_factory=list)
    """Lists that collect every event emitted while they are here (``events.recording``)."""

    @classmethod
    def of(cls, plugins: Plugins) -> UnitOfWork:
        return cls(bot_gateway=plugins.bot_gateway, deadline_handlers=plugins.deadline_handlers)

    def take_held(self, cls: type[m.Base], key: Any) -> tuple[bool, m.Base | None]:
        """``(True, row)`` when the row of ``cls`` with primary key ``key`` was read locked in
        this transaction (``row`` is ``None`` when it does not exist), else ``(False, None)``:
        read it yourself. Taken once: a second call reads it again."""
        if (cls, key) not in self.held:
            return False, None
        return True, self.held.pop((cls, key))

    def call_after_commit(self, work: Callable[[], None]) -> None:
        """Run ``work`` after the commit; never if the transaction rolls back."""
        self.after_commit.append(work)


_KEY = "omni.unit_of_work"


def attach(session: AsyncSession, uow: UnitOfWork) -> None:
    """Make ``uow`` the one :func:`unit_of_work` returns for ``session`` (``Database`` does)."""
    session.info[_KEY] = uow


def attached(session: Session | AsyncSession) -> UnitOfWork | None:
    """The unit of work attached to ``session`` (either face of it), if any."""
    uow = session.info.get(_KEY)
    return uow if isinstance(uow, UnitOfWork) else None


def unit_of_work(session: AsyncSession) -> UnitOfWork:
    """The unit of work of ``session``'s transaction.

    A session not opened by ``Database.transaction()`` gets an empty one: no plug-ins, and
    nothing reads what it records.
    """
    uow = session.info.get(_KEY)
    if not isinstance(uow, UnitOfWork):
        uow = UnitOfWork()
        attach(session, uow)
    return uow
