"""Organise the work (issue 18): labels, saved views, bulk actions and snooze, through the
domain actions on SQLite (snooze's timer also on PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from omni.db import models as m
from omni.domain import bulk, labels, snooze, views
from omni.domain import conversations as c
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage
from omni.domain.engine import run_due_deadlines
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.routing import do_route_pending
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite
from tests.helpers import capture_events


@pytest_asyncio.fixture
async def lite(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Services]:
    """The embedded SQLite database (what these rules need; no PostgreSQL specifics)."""
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    services = build_services(settings, run_background=False)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


async def _world(services: Services) -> dict[str, int]:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        a = await f.user(s, "alice", capacity=1)
        b = await f.user(s, "bob")
        z = await f.user(s, "zed")
        g = m.Group(name="A")
        g2 = m.Group(name="Z")
        s.add_all([g, g2])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g.id, user_id=a.id),
                m.GroupMember(group_id=g.id, user_id=b.id),
                m.GroupMember(group_id=g2.id, user_id=z.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g.id),
            ]
        )
        code = await f.result_code(s, "resolved")
        q = await f.queue(s, "support", [a, b], group_id=g.id, strategy=m.Strategy.LINEAR)
        qz = await f.queue(s, "other", [z], group_id=g2.id)
        ib = await f.inbox(s, q)
        ibz = await f.inbox(s, qz)
        return {
            "admin": admin.id,
            "sup": sup.id,
            "a": a.id,
            "b": b.id,
            "z": z.id,
            "g": g.id,
            "q": q.id,
            "qz": qz.id,
            "ib": ib.id,
            "ibz": ibz.id,
            "code": code.id,
        }


async def _who(services: Services, user_id: int, lang: str = "en") -> Principal:
    async with services.db.transaction() as s:
        p = f.who(await s.get_one(m.User, user_id))
    return Principal(id=p.id, username=p.username, role=p.role, language=lang)


async def _inbound(services: Services, inbox_id: int, customer: str, body: str = "hello") -> int:
    async with services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s, InboundMessage(inbox_id=inbox_id, identity_kind="external", identity_value=customer, body=body)
        )
        return res.conversation.id


async def _conv(services: Services, conv_id: int) -> m.Conversation:
    async with services.db.transaction() as s:
        return await s.get_one(m.Conversation, conv_id)


async def _available(services: Services, *user_ids: int, code: str = "available") -> None:
    async with services.db.transaction() as s:
        for uid in user_ids:
            await f.set_status(s, await s.get_one(m.User, uid), code)


async def _active_with(services: Services, inbox_id: int, customer: str, user_id: int) -> int:
    """A conversation offered to and accepted by ``user_id`` (the only one available)."""
    cid = await _inbound(services, inbox_id, customer)
    await do_route_pending(services.db)
    who = await _who(services, user_id)
    async with services.db.transaction() as s:
        offer = await s.scalar(
            select(m.Offer).where(m.Offer.conversation_id == cid, m.Offer.state == "pending")
        )
        assert offer is not None and offer.user_id == user_id
        await c.check_accept_offer(s, who, offer.id)
    return cid


async def test_labels_are_managed_in_scope_applied_by_the_handler_and_carried_by_events(
    lite: Services,
) -> None:
    w = await _world(lite)
    admin, sup, alice, bob = [await _who(lite, w[k]) for k in ("admin", "sup", "a", "b")]
    async with lite.db.transaction() as s:
        vip = await labels.check_create_label(s, admin, {"name": "VIP", "color": "#FF0000"})
        refund = await labels.check_create_label(s, sup, {"name": "Refund", "queue_id": w["q"]})
        other = await labels.check_create_label(s, admin, {"name": "Other", "queue_id": w["qz"]})
    assert (vip.color, refund.queue_id) == ("#ff0000", w["q"])
    async with lite.db.transaction() as s:
        with pytest.raises(PermissionDenied, match="only admins manage global labels"):
            await labels.check_create_label(s, sup, {"name": "Global"})
        with pytest.raises(PermissionDenied, match="outside your scope"):
            await labels.check_create_label(s, sup, {"name": "Z", "queue_id": w["qz"]})
        with pytest.raises(PermissionDenied):
            await labels.check_create_label(s, alice, {"name": "Mine", "queue_id": w["q"]})
        with pytest.raises(InvalidInput, match="already exists") as dup:
            await labels.check_create_label(s, sup, {"name": "Refund", "queue_id": w["q"]})
        assert dup.value.field == "name"
        with pytest.raises(InvalidInput, match="colour"):
            await labels.check_create_label(s, admin, {"name": "Bad", "color": "red"})
        # the supervisor sees the global labels and those of their queues only
        assert {x.name for x in await labels.list_labels(s, sup)} == {"VIP", "Refund"}
    await _available(lite, w["a"])
    cid = await _active_with(lite, w["ib"], "cust", w["a"])
    async with capture_events(lite.db, ["conversation.labels_changed"]) as events, lite.db.transaction() as s:
        await labels.check_set_labels(s, alice, cid, add=[vip.id, refund.id])
    payload = events[0].payload
    assert payload["label_ids"] == sorted([vip.id, refund.id])
    assert {x["name"] for x in payload["labels"]} == {"VIP", "Refund"}
    async with lite.db.transaction() as s:
        with pytest.raises(InvalidInput, match="belongs to another queue"):
            await labels.check_set_labels(s, alice, cid, add=[other.id])
        with pytest.raises(PermissionDenied, match="only the operator handling"):
            await labels.check_set_labels(s, bob, cid, add=[vip.id])
    # every later conversation event (webhooks included) carries the labels
    async with capture_events(lite.db, conversation_id=cid) as events, lite.db.transaction() as s:
        await c.check_close(s, alice, cid, w["code"])
    assert [e.type for e in events] == ["conversation.wrap_up", "conversation.closed"]
    assert all(e.payload["label_ids"] == sorted([vip.id, refund.id]) for e in events)
    # deleting a label takes it off every conversation, copy included
    async with lite.db.transaction() as s:
        await labels.check_delete_label(s, admin, vip.id)
        actions = list(await s.scalars(select(m.AuditLog.action).order_by(m.AuditLog.id)))
    assert (await _conv(lite, cid)).label_ids == [refund.id]
    assert {"label.create", "conversation.labels", "label.delete"} <= set(actions)


async def test_saved_views_are_private_or_shared_with_the_group_and_open_in_the_viewers_scope(
    lite: Services,
) -> None:
    w = await _world(lite)
    admin, alice, bob, zed = [await _who(lite, w[k]) for k in ("admin", "a", "b", "z")]
    async with lite.db.transaction() as s:
        vip = await labels.check_create_label(s, admin, {"name": "VIP"})
    await _available(lite, w["a"])
    mine = await _active_with(lite, w["ib"], "cust-1", w["a"])
    plain = await _inbound(lite, w["ib"], "cust-2")
    await _inbound(lite, w["ibz"], "cust-z")
    async with lite.db.transaction() as s:
        await labels.check_set_labels(s, alice, mine, add=[vip.id])
        private = await views.check_create_view(
            s, alice, {"name": "My VIPs", "filters": {"label_id": [vip.id]}}
        )
        with pytest.raises(InvalidInput, match="only with a group you belong to"):
            await views.check_create_view(s, zed, {"name": "x", "group_id": w["g"]})
        with pytest.raises(InvalidInput, match=r"unknown filters\.status 'lost'"):
            await views.check_create_view(s, alice, {"name": "x", "filters": {"status": ["lost"]}})
        assert [v.id for v in await views.list_views(s, bob)] == []
        with pytest.raises(NotFound):
            await views.view_conversations(s, bob, private.id)
        assert [x.id for x in await views.view_conversations(s, alice, private.id)] == [mine]
        await views.check_update_view(s, alice, private.id, {"group_id": w["g"]})
    async with lite.db.transaction() as s:
        assert [v.id for v in await views.list_views(s, bob)] == [private.id]
        assert [v.id for v in await views.list_views(s, zed)] == []
        with pytest.raises(PermissionDenied, match="only the owner"):
            await views.check_update_view(s, bob, private.id, {"name": "mine now"})
        queued = await views.check_create_view(s, bob, {"name": "Waiting", "filters": {"status": ["queued"]}})
        # bob's queue holds "plain"; the other queue's conversation is outside his scope
        assert [x.id for x in await views.view_conversations(s, bob, queued.id)] == [plain]
        await views.check_delete_view(s, alice, private.id)
        assert [v.id for v in await views.list_views(s, bob)] == [queued.id]


async def test_bulk_close_reports_each_refused_item_in_the_callers_language_and_does_the_rest(
    lite: Services,
) -> None:
    w = await _world(lite)
    admin = await _who(lite, w["admin"])
    sup = await _who(lite, w["sup"], lang="ru")
    async with lite.db.transaction() as s:
        vip = await labels.check_create_label(s, admin, {"name": "VIP"})
    await _available(lite, w["a"])
    active = await _active_with(lite, w["ib"], "cust-1", w["a"])
    waiting = await _inbound(lite, w["ib"], "cust-2")
    elsewhere = await _inbound(lite, w["ibz"], "cust-z")
    report = await bulk.check_bulk(
        lite.db, sup, [active, waiting, elsewhere], "close", {"result_code_id": w["code"]}
    )
    assert report.done == [active]
    refused = {r.id: r for r in report.refused}
    assert refused[waiting].code == "conflict" and "нельзя закрыть" in refused[waiting].error
    assert refused[elsewhere].code == "not_found"
    assert ((await _conv(lite, active)).status, (await _conv(lite, waiting)).status) == ("closed", "queued")
    report = await bulk.check_bulk(lite.db, sup, [waiting, elsewhere], "label", {"add": [vip.id]})
    assert report.done == [waiting] and [r.id for r in report.refused] == [elsewhere]
    assert (await _conv(lite, waiting)).label_ids == [vip.id]
    report = await bulk.check_bulk(lite.db, admin, [waiting], "transfer", {"to_queue_id": w["qz"]})
    assert report.done == [waiting] and (await _conv(lite, waiting)).queue_id == w["qz"]
    with pytest.raises(InvalidInput, match="result_code_id is required"):
        await bulk.check_bulk(lite.db, sup, [active], "close", {})
    with pytest.raises(InvalidInput, match="action must be one of"):
        await bulk.check_bulk(lite.db, sup, [active], "explode", {})
    async with lite.db.transaction() as s:
        rows = list(await s.scalars(select(m.AuditLog).where(m.AuditLog.action.like("conversation.bulk_%"))))
    assert [(r.action, r.result) for r in rows] == [
        ("conversation.bulk_close", "partial"),
        ("conversation.bulk_label", "partial"),
        ("conversation.bulk_transfer", "ok"),
    ]


async def test_snooze_until_the_customer_writes_frees_capacity_and_wakes_to_the_same_operator(
    lite: Services,
) -> None:
    w = await _world(lite)
    alice, bob = await _who(lite, w["a"]), await _who(lite, w["b"])
    await _available(lite, w["a"])
    cid = await _active_with(lite, w["ib"], "cust-1", w["a"])
    before = await _conv(lite, cid)
    async with lite.db.transaction() as s:
        with pytest.raises(InvalidInput, match="pick a time"):
            await snooze.check_snooze(s, alice, cid, until=None, until_customer=False)
        with pytest.raises(PermissionDenied):
            await snooze.check_snooze(s, bob, cid, until=None, until_customer=True)
    async with capture_events(lite.db, conversation_id=cid) as events, lite.db.transaction() as s:
        await snooze.check_snooze(s, alice, cid, until=None, until_customer=True)
    assert [e.type for e in events] == ["conversation.snoozed"]
    snoozed = await _conv(lite, cid)
    assert (snoozed.status, snoozed.assigned_user_id) == ("snoozed", w["a"])
    # alice's only slot is free: the next customer is offered to her
    second = await _active_with(lite, w["ib"], "cust-2", w["a"])
    async with lite.db.transaction() as s:
        await c.check_close(s, alice, second, w["code"])
    await _inbound(lite, w["ib"], "cust-1", body="any news?")
    woken = await _conv(lite, cid)
    assert (woken.status, woken.preferred_user_id) == ("queued", w["a"])
    assert woken.first_enqueued_at == before.first_enqueued_at  # its old place in line
    await _available(lite, w["b"])
    await do_route_pending(lite.db)
    async with lite.db.transaction() as s:
        offers = list(await s.scalars(select(m.Offer.user_id).where(m.Offer.conversation_id == cid)))
    assert offers[-1] == w["a"]
    async with lite.db.transaction() as s:
        with pytest.raises(Conflict, match="not snoozed"):
            await snooze.check_unsnooze(s, alice, cid)


async def test_snooze_until_a_time_wakes_from_the_persisted_deadline_after_a_restart(
    svc: Services,
) -> None:
    w = await _world(svc)
    alice = await _who(svc, w["a"])
    async with svc.db.transaction() as s:  # no queue timeout to fire along with the wake-up
        (await s.get_one(m.Queue, w["q"])).queue_timeout_seconds = 0
    await _available(svc, w["a"])
    cid = await _active_with(svc, w["ib"], "cust-1", w["a"])
    async with svc.db.transaction() as s:
        await snooze.check_snooze(
            s, alice, cid, until=datetime.now(UTC) + timedelta(hours=2), until_customer=False
        )
    await _available(svc, w["a"], code="pause")  # she went on a break meanwhile
    restarted = build_services(svc.settings, run_background=False)
    await restarted.start()
    try:
        assert await run_due_deadlines(restarted.db, now=datetime.now(UTC) + timedelta(hours=1)) == 0
        assert (await _conv(restarted, cid)).status == "snoozed"
        async with capture_events(restarted.db, conversation_id=cid) as events:
            assert await run_due_deadlines(restarted.db, now=datetime.now(UTC) + timedelta(hours=3)) == 1
    finally:
        await restarted.stop()
    assert [e.type for e in events] == ["conversation.queued", "conversation.woken"]
    assert events[1].payload["reason"] == "time" and events[1].payload["to_user_id"] is None
    woken = await _conv(svc, cid)
    assert (woken.status, woken.preferred_user_id, woken.assigned_user_id) == ("queued", None, None)


async def test_contact_history_filters_by_label(lite: Services) -> None:
    from omni.domain import reports
    from omni.domain.reports import FilterParams, history
    from omni.domain.reports.config import get_config

    w = await _world(lite)
    admin = await _who(lite, w["admin"])
    async with lite.db.transaction() as s:
        vip = await labels.check_create_label(s, admin, {"name": "VIP"})
    tagged = await _inbound(lite, w["ib"], "cust-1")
    await _inbound(lite, w["ib"], "cust-2")
    await bulk.check_bulk(lite.db, admin, [tagged], "label", {"add": [vip.id]})
    now = datetime.now(UTC)
    async with lite.db.transaction() as s:
        config = await get_config(s)
        every = await reports.resolve_scope(s, admin, FilterParams().resolve(UTC, now), config, now)
        only = await reports.resolve_scope(
            s, admin, FilterParams(label_ids=(vip.id,)).resolve(UTC, now), config, now
        )
        assert len((await history.run(s, every)).rows) == 2
        table = await history.run(s, only)
    assert len(table.rows) == 1
