"""``deadlines.cancel`` is one Core statement that flushes nothing else the session holds (a
closing bot step writes its conversation once, at commit), and still cancels a timer scheduled
in the same transaction and not written yet, and updates a timer loaded in the session. On
PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select

from omni.db import models as m
from omni.domain import deadlines
from omni.services import Services


async def test_cancel_is_one_statement_and_reaches_loaded_and_unwritten_timers(svc: Services) -> None:
    due = datetime.now(UTC) + timedelta(minutes=5)
    async with svc.db.transaction() as s:
        loaded = deadlines.schedule(s, deadlines.QUEUE_TIMEOUT, 7, due)
        other_ref = deadlines.schedule(s, deadlines.QUEUE_TIMEOUT, 8, due)
        other_kind = deadlines.schedule(s, deadlines.WRAP_UP, 7, due)
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0])

    async with svc.db.transaction() as s:
        timer = await s.get_one(m.Deadline, loaded.id)
        timer.due_at = due + timedelta(minutes=1)  # a pending change: not flushed by the cancel
        unwritten = deadlines.schedule(s, deadlines.ESCALATION, 7, due)
        event.listen(svc.db.engine.sync_engine, "before_cursor_execute", count)
        try:
            await deadlines.cancel(s, deadlines.QUEUE_TIMEOUT, 7, deadlines.ESCALATION)
        finally:
            event.remove(svc.db.engine.sync_engine, "before_cursor_execute", count)
        assert seen == ["UPDATE"], seen
        assert timer.done and unwritten.done
    async with svc.db.transaction() as s:
        rows = {r.id: r for r in (await s.scalars(select(m.Deadline))).all()}
    assert rows[loaded.id].done and rows[loaded.id].due_at == due + timedelta(minutes=1)
    assert rows[unwritten.id].done and unwritten.id is not None
    assert not rows[other_ref.id].done and not rows[other_kind.id].done
