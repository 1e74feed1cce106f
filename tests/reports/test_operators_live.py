"""The operator rollups on data the real actions write (offer, accept, reply, transfer, end,
close, rating, status changes), rebuilt from the event log the way the driver does it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import presence, reports
from omni.domain.conversations import InboundMessage
from omni.domain.reports import FilterParams, Grouping, Preset
from omni.domain.reports.driver import rebuild_touched
from omni.domain.reports.rollups import Changes, rebuild_range
from omni.domain.routing import do_route_pending
from omni.services import Services
from tests import factories as f


async def _accept_pending(services: Services, conv_id: int) -> int:
    async with services.db.transaction() as s:
        offer = await s.scalar(
            select(m.Offer).where(m.Offer.conversation_id == conv_id, m.Offer.state == "pending")
        )
        assert offer is not None
        user = await s.get_one(m.User, offer.user_id)
        await c.check_accept_offer(s, f.who(user), offer.id)
        return user.id


async def _report(services: Services, key: str) -> dict[str, dict[str, Any]]:
    params = FilterParams(preset=Preset.TODAY, grouping=Grouping.TOTAL)
    async with services.db.transaction() as s:
        admin = await s.scalar(select(m.User).where(m.User.username == "adm"))
        assert admin is not None
        table = await reports.run_params(s, f.who(admin), key, params, datetime.now(UTC))
    return {str(r["operator"]): r for r in table.as_dicts()}


async def test_a_transferred_rated_chat_counts_for_both_operators(services: Services) -> None:
    started = datetime.now(UTC)
    async with services.db.transaction() as s:
        await f.user(s, "adm", m.Role.ADMIN)
        alice = await f.user(s, "alice")
        bob = await f.user(s, "bob")
        code = await f.result_code(s, "resolved")
        q = await f.queue(s, "support", [alice, bob], strategy=m.Strategy.LINEAR)
        inbox = await f.inbox(s, q)
        await f.set_status(s, alice)
        ids = {"alice": alice.id, "bob": bob.id, "code": code.id}
    async with services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s, InboundMessage(inbox_id=inbox.id, identity_kind="external", identity_value="cust", body="hi")
        )
        conv_id = res.conversation.id
    await do_route_pending(services.db)
    assert await _accept_pending(services, conv_id) == ids["alice"]
    async with services.db.transaction() as s:
        alice_p = f.who(await s.get_one(m.User, ids["alice"]))
        await c.check_send_message(s, alice_p, conv_id, "Let me find a colleague")
        await f.set_status(s, await s.get_one(m.User, ids["bob"]))
        await c.check_transfer(s, alice_p, conv_id, to_user_id=ids["bob"])
    await do_route_pending(services.db)
    assert await _accept_pending(services, conv_id) == ids["bob"]
    async with services.db.transaction() as s:
        bob_p = f.who(await s.get_one(m.User, ids["bob"]))
        await c.check_send_message(s, bob_p, conv_id, "Bob here")
        await c.check_end(s, bob_p, conv_id)
        await c.check_close(s, bob_p, conv_id, ids["code"])
        await c.do_record_rating(s, conv_id, 5)
        await presence.do_set_status(s, ids["alice"], await presence.status_by_code(s, "pause"))

    # The driver's way: the changes from the event log, the intervals they touch, rebuilt.
    async with services.db.transaction() as s:
        events = list(await s.scalars(select(m.Event).where(m.Event.created_at >= started)))
        changes = Changes(
            conversation_ids={e.conversation_id for e in events if e.conversation_id},
            user_ids={e.user_id for e in events if e.user_id},
            earliest=min(e.created_at for e in events),
        )
        assert await rebuild_touched(s, changes)  # some interval was touched, and rebuilt
    by_events = await _report(services, "operator_performance")
    alice_row, bob_row = by_events["alice"], by_events["bob"]
    assert (alice_row["offers"], alice_row["accepted"], alice_row["handled"]) == (1, 1, 0)
    assert (alice_row["transfers_made"], alice_row["transfers_received"]) == (1, 0)
    assert (bob_row["offers"], bob_row["accepted"], bob_row["handled"]) == (1, 1, 1)
    assert (bob_row["transfers_made"], bob_row["transfers_received"]) == (0, 1)
    assert (bob_row["ended_operator"], bob_row["csat"], bob_row["ratings"]) == (1, 100.0, 1)
    assert bob_row["first_response"] is not None and bob_row["aht"] is not None
    assert alice_row["first_response"] is None  # she wrote, but the conversation was handled by Bob

    # A full rebuild of the day gives the same report: the touched intervals were enough.
    async with services.db.transaction() as s:
        await rebuild_range(s, started - timedelta(hours=1), datetime.now(UTC) + timedelta(minutes=15))
        codes = set(await s.scalars(select(m.ReportStatusInterval.status_code).distinct()))
        assert {"available", "ringing", "talking", "wrap_up"} <= codes
        assert await s.scalar(select(func.count()).select_from(m.ReportStatusHour)) > 0
    # (logged-in time and contacts per hour grow with the open status spans: left out)
    growing = ("logged_in_time", "contacts_per_hour")
    again = await _report(services, "operator_performance")
    assert {u: {k: v for k, v in r.items() if k not in growing} for u, r in again.items()} == {
        u: {k: v for k, v in r.items() if k not in growing} for u, r in by_events.items()
    }
    status = await _report(services, "operator_status")
    assert set(status) == {"alice", "bob"}
    assert all(row["logged_in_time"] > 0 for row in status.values())
