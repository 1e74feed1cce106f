"""The shared test helpers hold what they promise (a helper that passes everything hides bugs)."""

from __future__ import annotations

import pytest

from omni.domain.events import emit
from omni.services import Services
from tests.conftest import _worker_redis_url
from tests.helpers import capture_events, until

ADMIN, MEMBERS = "admin.changed", "queue.members_changed"


def changed(n: int) -> dict[str, object]:
    return {"entity": "queue", "id": n, "action": "updated"}


def members(n: int) -> dict[str, object]:
    return {"queue_id": n, "user_ids": [n]}


async def test_capture_events_sees_only_what_the_block_committed(services: Services) -> None:
    async with services.db.transaction() as s:
        emit(s, ADMIN, changed(0))
    capture = capture_events(services.db, expected=[ADMIN, MEMBERS])
    async with capture as events, services.db.transaction() as s:
        emit(s, ADMIN, changed(1), user_id=7)
        emit(s, MEMBERS, members(2))
    assert [(e.type, e.payload, e.user_id) for e in events] == [
        (ADMIN, changed(1), 7),
        (MEMBERS, members(2), None),
    ]


async def test_capture_events_fails_on_a_wrong_count_or_order(services: Services) -> None:
    with pytest.raises(AssertionError, match="expected 0 events, got 1"):
        async with capture_events(services.db, expected=0), services.db.transaction() as s:
            emit(s, ADMIN, changed(3))
    with pytest.raises(AssertionError, match="expected events"):
        async with capture_events(services.db, expected=[MEMBERS, ADMIN]), services.db.transaction() as s:
            emit(s, ADMIN, changed(4))
            emit(s, MEMBERS, members(4))


async def test_capture_events_narrows_to_one_conversation(services: Services) -> None:
    capture = capture_events(services.db, expected=[MEMBERS], conversation_id=2)
    async with capture as events, services.db.transaction() as s:
        emit(s, ADMIN, changed(5), conversation_id=1)
        emit(s, MEMBERS, members(5), conversation_id=2)
    assert [e.conversation_id for e in events] == [2]


async def test_until_returns_the_value_and_names_what_never_happened() -> None:
    values = iter([0, "", "ready"])
    assert await until(lambda: next(values), every=0) == "ready"

    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="waiting for the moon"):
        await until(never, 0.05, what="the moon")


def test_each_xdist_worker_gets_its_own_redis_database() -> None:
    url = "redis://127.0.0.1:6379/0"
    assert _worker_redis_url(url, "") == url  # serial: unchanged
    assert [_worker_redis_url(url, w) for w in ("gw0", "gw1")] == [
        "redis://127.0.0.1:6379/1",
        "redis://127.0.0.1:6379/2",
    ]
