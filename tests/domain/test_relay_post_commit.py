"""The relay's post-commit sinks (channel sends and their delivery marks) run batch after
batch in order. When they fall behind, the batches waiting go to them as one, still in order:
each pass costs a transaction and a publish of its own whatever its size, so passing small
batches one by one let the replies to widget visitors fall seconds behind at 200 msg/s while
the relay itself kept up (bench/README.md, fan9)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain.events import DomainEvent
from omni.services import Services
from tests import factories as f
from tests.helpers import until


async def test_batches_waiting_behind_a_slow_post_commit_pass_go_as_one_in_order(services: Services) -> None:
    relay = services.relay
    passes: list[list[int]] = []
    first_pass, release = asyncio.Event(), asyncio.Event()

    async def slow_channel(events: Sequence[DomainEvent]) -> None:
        passes.append([e.id for e in events])
        first_pass.set()
        await release.wait()

    relay.post_commit_sinks[:] = [slow_channel]
    async with services.db.transaction() as s:
        op = await f.user(s, "op")
        inbox = await f.inbox(s, await f.queue(s, "Sales", [op]))
        inbox_id = inbox.id

    async def message(who: str) -> None:
        async with services.db.transaction() as s:
            await c.do_ingest_inbound(
                s,
                c.InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value=who, body="hi"),
            )

    async def all_dispatched() -> bool:
        async with services.db.transaction() as s:
            return not list(await s.scalars(select(m.Event.id).where(m.Event.dispatched.is_(False))))

    await relay.start()
    try:
        await message("1")
        await until(first_pass.is_set, what="the first pass under way")
        for who in ("2", "3", "4"):  # relayed one batch each while the first pass is held
            await message(who)
            relay.nudge()
            await until(all_dispatched, what=f"visitor {who}'s events relayed")
        release.set()
        async with services.db.transaction() as s:
            every = list(await s.scalars(select(m.Event.id).order_by(m.Event.id)))
        await until(lambda: sum(len(p) for p in passes) == len(every), what="every event passed on")
    finally:
        release.set()
        await relay.stop()
    assert len(passes) == 2, "the three batches that waited went as one"
    assert [i for p in passes for i in p] == every, "each event once, in order"
