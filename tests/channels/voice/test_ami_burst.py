"""A busy PBX: bursts of callers and the noise Asterisk sends around them.

panoramisk against the loopback AMI emulator, the voice adapter on real PostgreSQL. Callers
that arrive and hang up in a burst have their effects written several to a transaction
(``VoiceChannel._write_batch``); what a user sees must be exactly what one caller alone
produces: one conversation each, abandoned, its callback, its closed ``calls`` row and the
same outbox events in the same order. The adapter's AMI login subscribes only to the event
classes it reads, so a PBX's dialplan/RTCP/CDR noise is never sent to it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from channels.voice import VoiceChannel
from channels.voice.ami import EVENT_MASK
from omni.db import models as m
from omni.services import Services, build_services
from tests import factories as f
from tests.channels.voice.ami_emulator import ALL_CLASSES, AmiEmulator, event_mask
from tests.conftest import (
    _asyncpg_url,
    copy_sqlite,
    create_test_database,
    drop_test_database,
    free_port,
    make_settings,
)
from tests.helpers import until


@dataclass
class Rig:
    emu: AmiEmulator
    services: Services
    voice: VoiceChannel
    inbox_id: int
    received: list[str]

    async def settle(self) -> None:
        """Every event the emulator wrote to Omni has been received and applied."""
        await until(lambda: len(self.received) >= self.emu.events_written, what="events received")
        await self.voice.drain()

    async def by_linkedid(self) -> dict[str, m.Conversation]:
        async with self.services.db.transaction() as s:
            rows = (
                await s.scalars(select(m.Conversation).where(m.Conversation.inbox_id == self.inbox_id))
            ).all()
            return {str((c.variables or {}).get("linkedid")): c for c in rows}

    async def event_types(self, conversation_id: int) -> list[str]:
        async with self.services.db.transaction() as s:
            return list(
                await s.scalars(
                    select(m.Event.type)
                    .where(m.Event.conversation_id == conversation_id)
                    .order_by(m.Event.id)
                )
            )

    async def call_row(self, conversation_id: int) -> m.Call:
        async with self.services.db.transaction() as s:
            row = await s.scalar(select(m.Call).where(m.Call.conversation_id == conversation_id))
            assert row is not None
            return row

    async def callbacks(self, conversation_id: int) -> int:
        async with self.services.db.transaction() as s:
            rows = await s.scalars(select(m.Callback.id).where(m.Callback.conversation_id == conversation_id))
            return len(rows.all())


@asynccontextmanager
async def make_rig(url: str, tmp_path: Any) -> AsyncIterator[Rig]:
    emu = AmiEmulator(free_port())
    await emu.start()
    settings = make_settings(url, redis=False, data_dir=tmp_path)
    settings.voice.enabled = True
    settings.voice.ami_port = emu.port
    settings.voice.ami_secret = emu.secret
    services = build_services(settings, run_background=False)
    voice = VoiceChannel(services)
    services.adapters.register(voice)
    received: list[str] = []
    original = voice._on_ami

    def recording(message: Any) -> None:
        received.append(str(message.get("Event")))
        original(message)

    voice.ami.on_event = recording
    try:
        await services.start()
        await until(lambda: voice.ami.ready, what="the AMI link")
        async with services.db.transaction() as s:
            q = await f.queue(s, "burst", [])
            ib = await f.inbox(s, q, channel="voice", name="burst-line")
            inbox_id = ib.id
        await until(lambda: len(received) >= emu.events_written, what="the login's events")
        yield Rig(emu, services, voice, inbox_id, received)
    finally:
        await services.stop()
        await emu.close()


@pytest.fixture
async def rig(pg_template: str, tmp_path: Any) -> AsyncIterator[Rig]:
    name = await create_test_database(pg_template)
    try:
        async with make_rig(_asyncpg_url(name), tmp_path) as made:
            yield made
    finally:
        await drop_test_database(name)


@pytest.fixture(params=["postgresql", "sqlite"])
async def any_rig(
    sqlite_template: Path, request: pytest.FixtureRequest, pg_template: str, tmp_path: Any
) -> AsyncIterator[Rig]:
    """PostgreSQL, and the embedded mode: SQLite, whose transactions ``Database`` runs one
    at a time (the batch's concurrent transactions queue for it)."""
    if request.param == "postgresql":
        name = await create_test_database(pg_template)
        try:
            async with make_rig(_asyncpg_url(name), tmp_path) as made:
                yield made
        finally:
            await drop_test_database(name)
        return
    url = copy_sqlite(sqlite_template, tmp_path, "omni.db")
    async with make_rig(url, tmp_path) as made:
        yield made


def burst(rig: Rig, numbers: list[str], names: dict[str, str] | None = None) -> list[str]:
    """Callers arrive and hang up with nobody free, back to back (one TCP read for Omni),
    each with the dialplan/RTCP noise of a real call and an internal call beside it."""
    linkedids = []
    for i, number in enumerate(numbers):
        ch = rig.emu.incoming_call(number, (names or {}).get(number, ""), inbox=rig.inbox_id)
        rig.emu.channel_noise(ch.uniqueid, varsets=5, newexten=2, rtcp=2)
        rig.emu.internal_call(f"10{i:02d}", f"20{i:02d}", varsets=3, rtcp=2)
        rig.emu.hangup(ch.uniqueid)
        linkedids.append(ch.linkedid)
    return linkedids


async def test_callers_hanging_up_in_a_burst_leave_what_one_caller_alone_leaves(any_rig: Rig) -> None:
    """Regression (issue 15: 123 events/s, one transaction per effect): effects are now
    written several to a transaction; each caller must still get exactly one abandoned
    conversation, its callback, its closed call row and the same events in the same order
    (on SQLite too, where the concurrent transactions run one after the other)."""
    rig = any_rig
    (alone,) = burst(rig, ["+79160000001"])
    await rig.settle()
    convs = await rig.by_linkedid()
    expected = await rig.event_types(convs[alone].id)
    assert expected[0] == "conversation.created" and "conversation.abandoned" in expected

    batches = rig.voice.batches
    linkedids = burst(rig, [f"+7916100{i:04d}" for i in range(40)])
    await rig.settle()

    assert rig.voice.batches > batches  # the burst shared transactions
    convs = await rig.by_linkedid()
    assert len(convs) == 41
    for linkedid in linkedids:
        conv = convs[linkedid]
        assert conv.status == m.ConversationStatus.ABANDONED
        assert await rig.event_types(conv.id) == expected
        assert await rig.callbacks(conv.id) == 1
        row = await rig.call_row(conv.id)
        assert row.ended_at is not None and row.linkedid == linkedid
        assert row.hangup_cause == "Normal Clearing"
    assert not rig.voice.registry.calls  # every ended call was forgotten


async def test_one_caller_failing_in_a_burst_does_not_cost_the_others_their_calls(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller whose enqueue fails (here PostgreSQL refuses their contact row, as a broken
    constraint would) rolls back the transaction it shared; the others are written again one
    by one."""
    numbers = [f"+7916200{i:04d}" for i in range(12)]
    bad = numbers[5]
    async with rig.services.db.transaction() as s:
        await s.execute(text(REFUSE_FUNCTION))
        await s.execute(text(REFUSE_TRIGGER))
    with caplog.at_level(logging.INFO, logger="channels.voice.adapter"):
        linkedids = burst(rig, numbers, {bad: "refuse me"})
        await rig.settle()
    convs = await rig.by_linkedid()
    for number, linkedid in zip(numbers, linkedids, strict=True):
        if number == bad:
            continue
        conv = convs[linkedid]
        assert conv.status == m.ConversationStatus.ABANDONED
        assert (await rig.call_row(conv.id)).ended_at is not None
        assert await rig.callbacks(conv.id) == 1
    assert "rolled back together" in caplog.text


REFUSE_FUNCTION = """
CREATE FUNCTION refuse_contact() RETURNS trigger AS $$
BEGIN
    IF NEW.name = 'refuse me' THEN RAISE EXCEPTION 'contact refused by the test'; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql"""
REFUSE_TRIGGER = (
    "CREATE TRIGGER refuse_contact BEFORE INSERT ON contacts FOR EACH ROW EXECUTE FUNCTION refuse_contact()"
)


async def test_a_caller_id_name_longer_than_a_contact_name_is_clipped_not_the_call_lost(rig: Rig) -> None:
    """Regression: a 300-character caller-ID name (a SIP display name can be that long) failed
    the contact's insert, so the caller never reached the queue; the name is now clipped."""
    number = "+79162990001"
    [linkedid] = burst(rig, [number], {number: "Я" * 300})
    await rig.settle()
    conv = (await rig.by_linkedid())[linkedid]
    assert conv.status == m.ConversationStatus.ABANDONED
    assert await rig.callbacks(conv.id) == 1
    async with rig.services.db.transaction() as s:
        contact = await s.get_one(m.Contact, conv.contact_id)
        assert contact.name == "Я" * 256 and contact.phone == number


async def test_the_noise_of_a_busy_pbx_is_not_sent_to_omni(rig: Rig) -> None:
    """Regression (issue 15): the login asked for every event class (``Events: on``), so the
    dialplan's VarSet/Newexten floods, RTCP reports and CDRs were all sent, parsed and dropped.
    The adapter now subscribes to ``call,user,system``; its calls still work on what is left."""
    assert event_mask(EVENT_MASK) == {"call", "user", "system"}
    generated, written = rig.emu.events_sent, rig.emu.events_written
    start = len(rig.received)
    linkedids = burst(rig, ["+79163000001", "+79163000002"])
    await rig.settle()
    got = rig.received[start:]
    assert rig.emu.events_written - written == len(got) < rig.emu.events_sent - generated
    assert not {"VarSet", "Newexten", "RTCPSent", "RTCPReceived", "Cdr"} & set(got)
    assert {"Newchannel", "UserEvent", "DialBegin", "BridgeEnter", "Hangup"} <= set(got)
    convs = await rig.by_linkedid()
    assert all(convs[x].status == m.ConversationStatus.ABANDONED for x in linkedids)


def test_event_mask_reads_the_login_header_as_asterisk_does() -> None:
    assert event_mask("on") == ALL_CLASSES
    assert event_mask(None) == ALL_CLASSES
    assert event_mask("off") == frozenset()
    assert event_mask("call, user,system") == {"call", "user", "system"}


async def test_one_number_calling_twice_in_a_burst_is_one_contact_with_two_conversations(rig: Rig) -> None:
    """Two calls of one number land in different concurrent transactions (dealt by Linkedid):
    both resolve the same new contact, and the one that loses the race is redone alone."""
    numbers = [f"+7916400{i:04d}" for i in range(8)]
    linkedids = burst(rig, [*numbers, numbers[0], numbers[3]])
    await rig.settle()
    convs = await rig.by_linkedid()
    assert all(convs[x].status == m.ConversationStatus.ABANDONED for x in linkedids)
    assert convs[linkedids[0]].contact_id == convs[linkedids[8]].contact_id
    assert convs[linkedids[3]].contact_id == convs[linkedids[9]].contact_id
    assert len({convs[x].contact_id for x in linkedids}) == 8
