"""Shared holiday calendars (issue 16): a queue or campaign that follows one is closed on its
days off — dated and yearly — next to its own dates; chats that day get the after-hours path;
the dialer calls nobody; admins edit them (audited), nothing followed can be deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bots import service as bot_service
from omni.db import models as m
from omni.domain import calendars
from omni.domain import conversations as c
from omni.domain.admin import check_update_queue
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage
from omni.domain.errors import Conflict, InvalidInput, PermissionDenied
from omni.domain.hours import is_open, queue_open
from omni.domain.inboxes import chat_online
from omni.domain.outbound import campaigns as campaign_service
from omni.domain.outbound.scheduler import tick
from omni.services import Services
from tests import factories as f
from tests.channels.widget.test_widget_channel import Visitor
from tests.conftest import LiveServer
from tests.helpers import until
from tests.outbound.test_scheduler import NOON_MSK, _world

ALWAYS = {str(d): [["00:00", "24:00"]] for d in range(7)}


def _who(user: m.User) -> Principal:
    return Principal(user.id, user.username, user.role)


def _msk(day: str, hhmm: str = "12:00") -> datetime:
    """``day`` at ``hhmm`` Moscow time (UTC+3), as an aware UTC instant."""
    local = datetime.fromisoformat(f"{day}T{hhmm}:00+03:00")
    return local.astimezone(UTC)


async def _calendar(services: Services, admin: m.User, **body: object) -> int:
    async with services.db.transaction() as s:
        cal = await calendars.check_create_calendar(s, _who(admin), {"name": "Russia 2027", **body})
        return cal.id


async def test_a_followed_calendar_closes_the_queue_on_dated_and_yearly_days_next_to_its_own(
    services: Services,
) -> None:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        q = await f.queue(s, "Support")
    cal_id = await _calendar(
        services,
        admin,
        dates=[{"date": "2027-01-07", "name": "Christmas"}],
        yearly=[{"date": "05-09", "name": "Victory Day"}],
    )
    async with services.db.transaction() as s:
        await check_update_queue(
            s,
            _who(admin),
            q.id,
            {
                "business_hours": {
                    "timezone": "Europe/Moscow",
                    "days": ALWAYS,
                    "holidays": [{"date": "2027-03-08", "name": "own day"}],
                    "calendars": [cal_id],
                }
            },
        )
    async with services.db.transaction() as s:
        queue = await s.get_one(m.Queue, q.id)
        assert queue.business_hours is not None and queue.business_hours["calendars"] == [cal_id]
        assert not await queue_open(s, queue, _msk("2027-01-07"))  # the calendar's date
        assert not await queue_open(s, queue, _msk("2027-01-07", "00:30"))  # local day, not UTC's
        assert await queue_open(s, queue, _msk("2027-01-06", "23:59"))
        assert not await queue_open(s, queue, _msk("2031-05-09"))  # yearly: any year
        assert not await queue_open(s, queue, _msk("2027-03-08"))  # the queue's own date still works
        assert await queue_open(s, queue, _msk("2027-01-08"))
        # Without the calendars (the sync check alone) the calendar's days are open.
        assert is_open(queue, _msk("2027-01-07"))


async def test_a_chat_on_a_calendar_day_takes_the_after_hours_path(services: Services) -> None:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        op = await f.user(s, "op")
        await f.set_status(s, op)
        q = await f.queue(s, "Support", [op])
        ib = await f.inbox(s, q)
    today = datetime.now(UTC).date()
    days = [{"date": (today + timedelta(days=n)).isoformat(), "name": "Day off"} for n in (0, 1)]
    cal_id = await _calendar(services, admin, dates=days)  # tomorrow too: a run across midnight
    async with services.db.transaction() as s:
        inbox = await s.get_one(m.Inbox, ib.id)
        assert await chat_online(s, inbox)  # before: open around the clock, someone is free
        await check_update_queue(
            s,
            _who(admin),
            q.id,
            {"business_hours": {"timezone": "UTC", "days": ALWAYS, "calendars": [cal_id]}},
        )
    async with services.db.transaction() as s:
        inbox = await s.get_one(m.Inbox, ib.id)
        assert not await chat_online(s, inbox)  # the widget shows its offline notice
        res = await c.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=ib.id, identity_kind="external", identity_value="ann", body="hi", medium="chat"
            ),
        )
        conv_id = res.conversation.id
    async with services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        assert conv.status == m.ConversationStatus.MISSED and conv.closed_by == "system"
        missed = await s.scalar(
            select(m.Event).where(m.Event.conversation_id == conv_id, m.Event.type == "conversation.missed")
        )
        assert missed is not None and missed.payload["reason"] == "closed"
        assert await s.scalar(select(m.Offer.id).where(m.Offer.conversation_id == conv_id)) is None


async def test_a_campaign_following_a_calendar_calls_nobody_on_its_days(services: Services) -> None:
    w = await _world(services)  # NOON_MSK is Tuesday 2026-12-01, inside the calling window
    await w.targets("+7 495 123-45-67")
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
    yearly = await _calendar(services, admin, yearly=[{"date": "12-01", "name": "Every Dec 1st"}])
    async with services.db.transaction() as s:
        with pytest.raises(InvalidInput) as missing:
            await campaign_service.check_update_campaign(
                s, _who(admin), w.campaign_id, {"calendar_ids": [999]}
            )
        assert missing.value.field == "calendar_ids"
    await w.update(state="paused")  # the test world's campaign has no inbox to pass the running checks
    async with services.db.transaction() as s:
        await campaign_service.check_update_campaign(
            s, _who(admin), w.campaign_id, {"calendar_ids": [yearly]}
        )
    await w.update(state="running")
    assert await tick(services, NOON_MSK) == 0  # the calendar's day: silent
    async with services.db.transaction() as s:
        await calendars.check_update_calendar(s, _who(admin), yearly, {"yearly": []})
    assert await tick(services, NOON_MSK) == 1  # the day is gone from the calendar: called


async def test_admins_edit_calendars_with_clear_errors_audited_and_followed_ones_stay(
    services: Services,
) -> None:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        q = await f.queue(s, "Support")
    async with services.db.transaction() as s:
        with pytest.raises(InvalidInput) as bad:
            await calendars.check_create_calendar(
                s,
                _who(admin),
                {"name": "X", "dates": [{"date": "2027-02-30"}], "yearly": [{"date": "13-01"}]},
            )
        assert bad.value.field == "dates[0]" and "2027-02-30" in bad.value.message
        assert [e.field for e in bad.value.errors] == ["dates[0]", "yearly[0]"]
        with pytest.raises(PermissionDenied):
            await calendars.check_create_calendar(s, _who(sup), {"name": "Mine"})
    cal_id = await _calendar(
        services, admin, dates=[{"date": "2027-01-02"}, {"date": "2027-01-01", "name": "New Year"}]
    )
    async with services.db.transaction() as s:
        with pytest.raises(InvalidInput) as twice:
            await calendars.check_create_calendar(s, _who(admin), {"name": "russia 2027"})
        assert twice.value.field == "name"
        cal = await calendars.get_calendar(s, _who(sup), cal_id)  # supervisors read them
        assert [d["date"] for d in cal.dates] == ["2027-01-01", "2027-01-02"]  # sorted
        await check_update_queue(
            s,
            _who(admin),
            q.id,
            {"business_hours": {"timezone": "UTC", "days": ALWAYS, "calendars": [cal_id]}},
        )
    async with services.db.transaction() as s:
        with pytest.raises(Conflict) as followed:
            await calendars.check_delete_calendar(s, _who(admin), cal_id)
        assert "Support" in followed.value.message
        await check_update_queue(s, _who(admin), q.id, {"business_hours": None})
    async with services.db.transaction() as s:
        await calendars.check_delete_calendar(s, _who(admin), cal_id)
    async with services.db.transaction() as s:
        actions = list(
            await s.scalars(
                select(m.AuditLog.action).where(m.AuditLog.object_type == "calendar").order_by(m.AuditLog.id)
            )
        )
        assert actions == ["calendar.create", "calendar.delete"]
        assert await s.get(m.HolidayCalendar, cal_id) is None


def test_csv_and_ics_lists_read_as_days() -> None:
    dates, yearly = calendars.parse_lines(
        ["date,name", "2027-01-07,Christmas", "05-09 Victory Day", "# a comment", "2027-03-08"], "import_text"
    )
    assert dates == [{"date": "2027-01-07", "name": "Christmas"}, {"date": "2027-03-08", "name": ""}]
    assert yearly == [{"date": "05-09", "name": "Victory Day"}]
    ics = (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20270107\nSUMMARY:Christmas\nEND:VEVENT\n"
        "BEGIN:VEVENT\nDTSTART:20270223T000000\nSUMMARY:Defender Day\nEND:VEVENT\nEND:VCALENDAR"
    )
    assert calendars.parse_lines(ics.splitlines(), "import_text") == (
        [{"date": "2027-01-07", "name": "Christmas"}, {"date": "2027-02-23", "name": "Defender Day"}],
        [],
    )
    with pytest.raises(InvalidInput) as bad:
        calendars.parse_lines(["soon"], "dates")
    assert bad.value.field == "dates" and "soon" in bad.value.message


async def test_a_bot_hand_off_on_a_calendar_day_takes_the_closed_port(live_server: LiveServer) -> None:
    doc = {
        "name": "Desk",
        "start": "h",
        "nodes": [
            {"id": "h", "type": "handoff", "ports": {"on_no_agents": "busy", "on_closed": "shut"}},
            {"id": "busy", "type": "close", "result_code": "", "message": {"text": "Everyone is busy"}},
            {"id": "shut", "type": "close", "result_code": "", "message": {"text": "Closed for the holiday"}},
        ],
    }
    today = datetime.now(UTC).date()
    days = [{"date": (today + timedelta(days=n)).isoformat()} for n in (0, 1)]
    async with live_server.services.db.transaction() as s:
        admin = await f.user(s, "boss", m.Role.ADMIN)
        op = await f.user(s, "op")
        await f.set_status(s, op, "available")
        q = await f.queue(s, "web", [op])
        ib = await f.inbox(s, q, channel="widget")
        ib.config = {"scenario": "desk"}
        who = _who(admin)
        row = await bot_service.create(s, who, "desk", "Desk", doc)
        await bot_service.publish(s, who, row.id)
        cal = await calendars.check_create_calendar(s, who, {"name": "Days off", "dates": days})
        await check_update_queue(
            s, who, q.id, {"business_hours": {"timezone": "UTC", "days": ALWAYS, "calendars": [cal.id]}}
        )
        token = ib.public_token
    visitor = Visitor(live_server.url)
    await visitor.connect(inbox=token)
    try:
        await visitor.send("hello", "c-1")
        await until(lambda: [x for x in visitor.messages if x["body"] == "Closed for the holiday"], 10)
        assert all(x["body"] != "Everyone is busy" for x in visitor.messages)
    finally:
        await visitor.sio.disconnect()
