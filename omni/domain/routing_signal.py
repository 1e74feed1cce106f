"""A flag on the unit of work saying "routing may now find a match"; read after commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession


def request_routing(session: AsyncSession) -> None:
    session.info["routing_needed"] = True
