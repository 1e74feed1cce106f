"""``capacity.fits_clause`` and ``units_clause`` (the router leaves members without room out in
SQL) agree with ``capacity.fits`` and ``Load.units`` on every combination of a grid, on
PostgreSQL: the rule may not drift between its two spellings."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from sqlalchemy import Boolean, Integer, String, column, select, values

from omni.db import Database
from omni.db import models as m
from omni.domain.capacity import Load, fits, fits_clause, units_clause

NAMES = (
    "capacity",
    "chat_weight",
    "voice_weight",
    "handles_chat",
    "handles_voice",
    "chats",
    "calls",
    "offers_chat",
    "offers_voice",
    "medium",
    "chats_block_calls",
)
TYPES = (Integer, Integer, Integer, Boolean, Boolean, Integer, Integer, Integer, Integer, String, Boolean)


async def test_fits_clause_agrees_with_fits(pg_url: str) -> None:
    grid = list(
        itertools.product(
            (0, 1, 3, 4),  # capacity
            (1, 2),  # chat weight
            (1, 3),  # voice weight
            (True, False),
            (True, False),
            (0, 1, 2),  # assigned chats
            (0, 1),  # assigned calls
            (0, 1),  # offered chats
            (0, 1),  # offered calls
            (m.Medium.CHAT.value, m.Medium.VOICE.value),
            (True, False),  # the queue's chats_block_calls
        )
    )
    grid = [(i, *row) for i, row in enumerate(grid)]
    table = values(
        column("i", Integer),
        *[column(n, t()) for n, t in zip(NAMES, TYPES, strict=True)],
        name="grid",
        literal_binds=True,
    ).data(grid)
    c = table.c
    stmt = select(c.i, fits_clause(c, c, c.medium, c.chats_block_calls), units_clause(c, c)).order_by(c.i)
    db = Database(pg_url)
    try:
        async with db.transaction() as s:
            got = (await s.execute(stmt)).all()
    finally:
        await db.dispose()
    assert len(got) == len(grid) > 3000
    fitting = 0
    for (i, *row), (j, room, units) in zip(grid, got, strict=True):
        assert i == j
        x = SimpleNamespace(**dict(zip(NAMES, row, strict=True)))
        load = Load(chats=x.chats, calls=x.calls, offers_chat=x.offers_chat, offers_voice=x.offers_voice)
        expected = fits(x, load, x.medium, chats_block_calls=x.chats_block_calls)
        assert room is expected, x
        assert units == load.units(x), x
        fitting += expected
    assert 0 < fitting < len(grid)  # both answers occur
