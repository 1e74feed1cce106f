"""A flag on the unit of work saying "routing may now find a match"; read after commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from omni.db.unit_of_work import unit_of_work


def request_routing(session: AsyncSession) -> None:
    unit_of_work(session).routing_needed = True
