"""An operator's own statistics (``GET /api/v1/me/stats``): the workspace panel reads it.

Any logged-in person reads their own figures and nobody else's; there is no parameter to ask
for another user's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from litestar import Controller, get

from omni.api.core import DEPS
from omni.domain.auth import Principal
from omni.domain.reports.own import own_stats
from omni.services import Services


class FiguresOut(msgspec.Struct):
    handled: int
    aht: float | None
    avg_talk: float | None
    avg_hold: float | None
    avg_wrap_up: float | None
    csat: float | None
    csat_mean: float | None
    ratings: int


class MyStatsOut(msgspec.Struct):
    timezone: str
    today: FiguresOut
    week: FiguresOut


class MyStatsController(Controller):
    path = "/api/v1/me/stats"
    dependencies = DEPS

    @get("/")
    async def my_stats(self, who: Principal, services: Services) -> MyStatsOut:
        async with services.db.transaction() as session:
            stats = await own_stats(session, who, datetime.now(UTC))
        return msgspec.convert(msgspec.to_builtins(stats), MyStatsOut)


CONTROLLERS = [MyStatsController]
