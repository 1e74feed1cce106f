# ruff: noqa: E501  (scenario documents read best one node per line)
"""Agentless notifications end to end: the real app (PostgreSQL, Redis, routing, relay, bot
runner, FastAGI) places an agentless campaign call through panoramisk against the AMI
emulator; the customer answers, Omni redirects the call to the agentless context and an
emulated FastAGI channel (the real AGI wire protocol) stands in for Asterisk's
``AGI(…/outbound,${OMNI_ATTEMPT})`` there: it records what the customer hears (TTS
application texts, the beep) and presses the scripted digits or says the scripted reply."""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bots import service
from omni.channels import AttemptOrder
from omni.db import models as m
from omni.db.models.outbound import Outcome, TargetState
from omni.domain.auth import Principal
from omni.domain.engine import run_due_deadlines
from omni.domain.errors import NotFound, PermissionDenied
from omni.domain.outbound import agentless
from omni.domain.outbound.lifecycle import do_open_attempt
from tests import factories as f
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.agi_client import EmulatedCall
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import World, actions, make_world, until, voice_of
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.test_realtime import token_for

emulator = calls.emulator
server = calls.server
fresh_emulator = calls.fresh_emulator

_n = itertools.count(1)
RETRY = {"busy": [15], "no_answer": [30], "dropped": [10]}
TTS = "Festival"
HELLO = "Hello Ivan Petrov, your debt is 1200 roubles due 2026-12-15."
MENU = "Press 1 to confirm, 2 to hear it again, 0 for an operator."


def _scenario(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "start": "hello",
        "variables": [{"name": "name"}, {"name": "debt"}, {"name": "due_date"}, {"name": "recording"}],
        "nodes": [
            {"id": "hello", "type": "message", "content": {"text": "Hello {{name}}, your debt is {{debt}} roubles due {{due_date}}."}, "ports": {"next": "menu"}},
            {"id": "menu", "type": "menu", "content": {"text": MENU}, "retries": 1, "timeout_seconds": 5,
             "options": [{"id": "confirm", "label": "Confirm", "dtmf": "1"}, {"id": "repeat", "label": "Repeat", "dtmf": "2"},
                         {"id": "operator", "label": "Operator", "dtmf": "0"}],
             "ports": {"opt:confirm": "reply", "opt:repeat": "hello", "opt:operator": "agent", "on_max_retries": "bye"}},
            {"id": "reply", "type": "record", "content": {"text": "Leave a message after the tone."}, "max_seconds": 30,
             "silence_seconds": 2, "variable": "recording", "ports": {"next": "bye", "on_no_input": "bye"}},
            {"id": "agent", "type": "handoff", "ports": {"on_no_agents": "bye", "on_closed": "bye"}},
            {"id": "bye", "type": "close", "message": {"text": "Thank you, goodbye."}},
        ],
    }  # fmt: skip


async def _campaign(w: World) -> tuple[int, int]:
    """An agentless campaign running a freshly published scenario; (campaign id, scenario id)."""
    n = next(_n)
    key = f"notify{w.queue_id}x{n}"
    async with w.server.services.db.transaction() as s:
        admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
        assert admin is not None
        row = await service.create(s, Principal.of(admin), key, "Debt reminder", _scenario("Debt reminder"))
        await service.publish(s, Principal.of(admin), row.id)
        c = m.Campaign(
            name=f"notify-{w.queue_id}-{n}",
            state="running",
            channel="voice",
            dial_mode="agentless",
            scenario=key,
            queue_id=w.queue_id,
            inbox_id=w.inbox_id,
            retry_rules=RETRY,
            max_attempts=3,
            ring_seconds=20,
        )
        s.add(c)
        await s.flush()
        return c.id, row.id


async def _order(w: World, campaign_id: int, phones: list[str]) -> AttemptOrder:
    async with w.server.services.db.transaction() as s:
        campaign = await s.get_one(m.Campaign, campaign_id)
        t = m.CampaignTarget(
            campaign_id=campaign_id,
            name="Ivan Petrov",
            phone=phones[0],
            phones=phones,
            fields={"Debt": "1200", "due date": "2026-12-15"},
        )
        s.add(t)
        await s.flush()
        a = await do_open_attempt(s, t, caller_id="+74950001111")
        return AttemptOrder(
            attempt_id=a.id,
            campaign_id=campaign_id,
            target_id=t.id,
            channel="voice",
            dial_mode="agentless",
            phone=a.phone,
            caller_id="+74950001111",
            inbox_id=campaign.inbox_id,
            queue_id=campaign.queue_id,
            operator_id=None,
            ring_seconds=campaign.ring_seconds,
            variables={"name": t.name, "fields": dict(t.fields)},
        )


async def _rows(w: World, attempt_id: int) -> tuple[m.CampaignAttempt, m.CampaignTarget]:
    async with w.server.services.db.transaction() as s:
        a = await s.get_one(m.CampaignAttempt, attempt_id)
        t = await s.get_one(m.CampaignTarget, a.target_id)
        return a, t


async def _answered(server: LiveServer, emulator: AmiEmulator, w: World, order: AttemptOrder) -> str:
    """Place the call; the customer answers; Omni redirects it to the agentless context.
    Returns the customer leg's Uniqueid (the call's Linkedid)."""
    await voice_of(server).place(order)
    leg = f"omni-a{order.attempt_id}"

    def redirected() -> dict[str, Any] | None:
        leg = emulator.campaign_leg(order.phone)
        return next(
            (a for a in actions(emulator, "Redirect") if leg is not None and a["Channel"] == leg.name), None
        )

    redirect = await until(redirected, what="the answered call redirected")
    assert redirect["Context"] == "omni-agentless" and redirect["Exten"] == "s"
    channel = emulator.campaign_leg(order.phone)
    assert channel is not None and channel.uniqueid == leg and channel.context == "omni-agentless"
    return leg


def _agi(server: LiveServer, order: AttemptOrder, leg: str, **kw: Any) -> EmulatedCall:
    voice = voice_of(server)
    assert voice.agi is not None
    return EmulatedCall(
        "127.0.0.1",
        voice.agi.port,
        script="outbound",
        args=[str(order.attempt_id)],
        uniqueid=leg,
        linkedid=leg,
        callerid=order.phone,
        calleridname="",
        **kw,
    )


@pytest.fixture
def tts(server: LiveServer, tmp_path: Path) -> Iterator[Path]:
    voice = voice_of(server)
    assert voice.agi is not None
    voice.agi.tts_app = TTS
    voice.agi.replies_dir = str(tmp_path)
    yield tmp_path
    voice.agi.tts_app = ""


def _said(agi: EmulatedCall) -> list[str]:
    """What the customer heard: TTS texts as the application got them (its argument
    unescaped as ``ast_app_separate_args`` does), ``beep``, ``record``."""
    return [
        re.sub(r"\\(.)", r"\1", p.split(":", 2)[2]) if p.startswith("tts:") else p.split(":", 1)[0]
        for p in agi.played
    ]


async def test_an_answered_agentless_call_plays_the_personal_message_and_stores_the_confirmation_and_reply(
    server: LiveServer, emulator: AmiEmulator, tts: Path
) -> None:
    async with make_world(server, ["op"]) as w:
        camp, scenario_id = await _campaign(w)
        order = await _order(w, camp, ["+79165550101", "+79165550102"])
        leg = await _answered(server, emulator, w, order)
        a, _ = await _rows(w, order.attempt_id)
        assert a.answered_at is not None and a.conversation_id is not None and a.ended_at is None
        conv = await w.conv(a.conversation_id)
        assert conv.status == "bot" and conv.medium == "voice" and conv.variables["debt"] == "1200"
        assert conv.variables["due_date"] == "2026-12-15" and conv.variables["direction"] == "out"

        agi = _agi(server, order, leg, keys=["1"], replies=[b"\x10\x20" * 8000])
        await agi.run()
        assert _said(agi) == [
            HELLO,
            MENU,
            "Leave a message after the tone.",
            "beep",
            "record",
            "Thank you, goodbye.",
        ]
        assert agi.agi_hung_up and agi.variables["OMNI_RESULT"] == "closed"

        a, t = await _rows(w, order.attempt_id)
        assert (a.outcome, a.cause) == (Outcome.ANSWERED, "notification played")
        assert t.state == TargetState.DONE and t.next_due_at is None and t.result_code_id is None
        r = t.result
        assert r["completed"] is True and r["confirmed"] is True and r["digits"] == "1"
        assert r["node"] == "bye" and r["status"] == "closed" and r["handed_off"] is False
        assert r["variables"]["recording"] == r["recording_file_id"] and r["variables"]["debt"] == "1200"
        # The reply is a file of the conversation: an attachment staff can play or download.
        async with server.services.db.transaction() as s:
            stored = await s.get_one(m.StoredFile, r["recording_file_id"])
            reply = await s.scalar(
                select(m.Message).where(
                    m.Message.conversation_id == a.conversation_id, m.Message.body == "Voice reply"
                )
            )
            admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
            assert admin is not None
            stats = await service.node_stats(s, Principal.of(admin), scenario_id, channel="voice")
        assert stored.conversation_id == a.conversation_id and stored.content_type == "audio/wav"
        assert reply is not None and reply.attachments[0]["kind"] == "recording"
        assert reply.attachments[0]["url"] == f"/api/v1/files/{stored.id}"
        # Per-node statistics of the scenario count the agentless run.
        assert stats["menu"]["ports"] == {"opt:confirm": 1} and stats["reply"]["ports"] == {"next": 1}
        token = await token_for(server, "admin")
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
        ) as http:
            got = await http.get(f"/api/v1/files/{stored.id}")
        assert got.status_code == 200 and got.content == await anyio.Path(stored.path).read_bytes()
        assert got.headers["content-type"].startswith("audio/wav")
        await _report_and_export(server, order, stored.id)
        # The live view's per-contact results (Socket.IO ``campaign_contacts``): scoped readers only.
        async with server.services.db.transaction() as s:
            admin = await s.scalar(select(m.User).where(m.User.username == "admin"))
            assert admin is not None
            listed = await agentless.contact_results(s, Principal.of(admin), camp)
            with pytest.raises(PermissionDenied):
                await agentless.contact_results(s, Principal.of(await s.get_one(m.User, w.ops["op"])), camp)
            other = await f.user(s, f"sup-other-{camp}", m.Role.SUPERVISOR)  # another group's
            with pytest.raises(NotFound):
                await agentless.contact_results(s, Principal.of(other), camp)
        assert [(c["phone"], c["state"], c["confirmed"], c["digits"], c["node"]) for c in listed] == [
            (order.phone, "done", True, "1", "bye")
        ]
        assert listed[0]["recording_url"] == f"/api/v1/files/{stored.id}"


async def test_digit_2_repeats_the_message_and_silence_records_nothing(
    server: LiveServer, emulator: AmiEmulator, tts: Path
) -> None:
    async with make_world(server, ["op"]) as w:
        camp, _ = await _campaign(w)
        order = await _order(w, camp, ["+79165550201"])
        leg = await _answered(server, emulator, w, order)
        agi = _agi(server, order, leg, keys=["2", "1"], replies=[None])
        await agi.run()
        assert _said(agi) == [
            HELLO,
            MENU,
            HELLO,
            MENU,
            "Leave a message after the tone.",
            "beep",
            "record",
            "Thank you, goodbye.",
        ]
        a, t = await _rows(w, order.attempt_id)
        assert a.outcome == Outcome.ANSWERED and t.state == TargetState.DONE
        assert t.result["confirmed"] is True and t.result["recording_file_id"] is None
        assert t.result["digits"] == "1" and "recording" not in t.result["variables"]


async def test_digit_0_hands_the_customer_to_the_queue_and_an_operator_gets_the_call(
    server: LiveServer, emulator: AmiEmulator, tts: Path
) -> None:
    async with make_world(server, ["op"], wrap_up_seconds=60) as w:
        camp, _ = await _campaign(w)
        emulator.phones[w.ext["op"]] = "answer"
        order = await _order(w, camp, ["+79165550301"])
        leg = await _answered(server, emulator, w, order)
        agi = _agi(server, order, leg, keys=["0"])
        await agi.run()
        assert _said(agi) == [HELLO, MENU]
        assert agi.variables["OMNI_RESULT"] == "queued" and agi.variables["OMNI_QUEUE"] == str(w.queue_id)
        assert not agi.agi_hung_up  # the dialplan takes the customer into the line
        a, t = await _rows(w, order.attempt_id)
        assert (a.outcome, a.cause) == (Outcome.ANSWERED, "handed to an operator")
        assert (
            t.state == TargetState.DONE and t.result["handed_off"] is True and t.result["confirmed"] is False
        )
        assert t.result["digits"] == "0"
        assert a.conversation_id is not None
        # In the unified line like an inbound call: offered, the phone rings and answers,
        # the customer's channel is bridged with the operator's.
        op = w.clients["op"]
        await op.wait_for("conversation.accepted", id=a.conversation_id)
        customer = emulator.campaign_leg(order.phone)
        assert customer is not None

        def bridged() -> bool:
            agent = emulator.agent_leg(w.ext["op"])
            return bool(agent is not None and customer.bridge and customer.bridge == agent.bridge)

        await until(bridged, what="customer bridged with the operator")
        conv = await w.conv(a.conversation_id)
        assert conv.status == "active" and conv.assigned_user_id == w.ops["op"]
        trunk = emulator.campaign_customer(order.phone)
        assert trunk is not None
        emulator.hangup(trunk.uniqueid)
        await op.wait_for("conversation.wrap_up", id=a.conversation_id)


async def test_hang_up_mid_scenario_is_retried_on_the_contacts_next_number(
    server: LiveServer, emulator: AmiEmulator, tts: Path
) -> None:
    async with make_world(server, ["op"]) as w:
        camp, _ = await _campaign(w)
        order = await _order(w, camp, ["+79165550401", "+79165550402"])
        leg = await _answered(server, emulator, w, order)
        agi = _agi(server, order, leg, keys=[])  # hears the message, hangs up at the menu
        await agi.run()
        assert _said(agi) == [HELLO, MENU]
        trunk = emulator.campaign_customer(order.phone)
        assert trunk is not None
        emulator.hangup(trunk.uniqueid)
        a, t = await _rows(w, order.attempt_id)
        assert a.outcome == Outcome.DROPPED and a.cause == "hung up during the scenario (at menu)"
        assert t.state == TargetState.PENDING and a.ended_at is not None
        assert t.next_due_at == a.ended_at + timedelta(minutes=10)
        assert (
            t.result["completed"] is False and t.result["node"] == "menu" and t.result["confirmed"] is False
        )
        assert t.phone_index == 1
        async with server.services.db.transaction() as s:
            target = await s.get_one(m.CampaignTarget, t.id)
            again = await do_open_attempt(s, target)
            assert again.phone == "+79165550402" and again.number == 2
        assert a.conversation_id is not None
        await until(lambda: _abandoned(w, a.conversation_id), what="the conversation ends with the call")


async def _abandoned(w: World, conv_id: int | None) -> bool:
    assert conv_id is not None
    return (await w.conv(conv_id)).status == "abandoned"


async def _report_and_export(server: LiveServer, order: AttemptOrder, file_id: str) -> None:
    """The supervisor's per-contact view of the campaign: the ``campaign_contacts`` report and
    its XLSX export (the report machinery of the campaign reports)."""
    today = datetime.now(UTC).date()
    period = {
        "since": (today - timedelta(days=1)).isoformat(),
        "until": (today + timedelta(days=1)).isoformat(),
    }
    token = await token_for(server, "admin")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    ) as http:
        got = await http.get("/api/v1/reports/campaign_contacts", params=period)
        assert got.status_code == 200, got.text
        report = got.json()
        keys = [col["key"] for col in report["columns"]]
        rows = [dict(zip(keys, row, strict=True)) for row in report["rows"]]
        mine = [r for r in rows if r["number"] == order.phone]
        assert len(mine) == 1
        row = mine[0]
        assert (row["contact"], row["target_state"], row["confirmed"], row["digits"], row["node"]) == (
            "Ivan Petrov", "done", "yes", "1", "bye",
        )  # fmt: skip
        assert row["recording"] == f"/api/v1/files/{file_id}" and row["attempts"] == 1
        started = await http.post(
            "/api/v1/reports/campaign_contacts/exports", params={"format": "xlsx", **period}
        )
        assert started.status_code == 202, started.text
        export_id = started.json()["id"]

        async def done() -> bool:
            return bool((await http.get(f"/api/v1/exports/{export_id}")).json()["state"] == "done")

        await until(done, what="the export is written")
        file = await http.get(f"/api/v1/exports/{export_id}/file")
    sheet = load_workbook(io.BytesIO(file.content)).active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][:5] == ("Campaign", "Contact", "Number", "State", "Confirmed")
    line = next(r for r in table[1:] if r[2] == order.phone)
    assert line[1:9] == ("Ivan Petrov", order.phone, "done", "yes", "1", "bye", 1, f"/api/v1/files/{file_id}")


async def test_a_call_whose_ivr_never_ran_is_closed_by_its_guard_and_retried(
    server: LiveServer, emulator: AmiEmulator, tts: Path
) -> None:
    """FastAGI unreachable (the dialplan hangs up, no AGI session stores the result): the
    attempt stayed open for ever and the contact was never called again."""
    async with make_world(server, ["op"]) as w:
        camp, _ = await _campaign(w)
        order = await _order(w, camp, ["+79165550501", "+79165550502"])
        await _answered(server, emulator, w, order)
        a, _ = await _rows(w, order.attempt_id)
        assert a.conversation_id is not None
        trunk = emulator.campaign_customer(order.phone)
        assert trunk is not None
        emulator.hangup(trunk.uniqueid)
        await until(lambda: _abandoned(w, a.conversation_id), what="the conversation ends with the call")
        assert (await _rows(w, order.attempt_id))[0].ended_at is None
        await run_due_deadlines(server.services.db, now=datetime.now(UTC) + timedelta(minutes=6))
        a, t = await _rows(w, order.attempt_id)
        assert a.outcome == Outcome.DROPPED and a.cause == "hung up during the scenario (at menu)"
        assert t.state == TargetState.PENDING and t.phone_index == 1 and t.result["completed"] is False

        # Nobody played it while the scenario's own timers ran it to its goodbye: not heard.
        order = await _order(w, camp, ["+79165550601"])
        await _answered(server, emulator, w, order)
        # The guard finds the call still with the scenario and looks again later; meanwhile
        # the menu's no-input timers run out and the scenario says goodbye to nobody.
        await run_due_deadlines(server.services.db, now=datetime.now(UTC) + timedelta(minutes=6))
        assert (await _rows(w, order.attempt_id))[0].ended_at is None
        await run_due_deadlines(server.services.db, now=datetime.now(UTC) + timedelta(minutes=11))
        a, t = await _rows(w, order.attempt_id)
        assert a.conversation_id is not None and (await w.conv(a.conversation_id)).status == "closed"
        assert a.outcome == Outcome.DROPPED and t.result["completed"] is False and t.result["node"] == "bye"


async def test_a_voice_reply_recorded_where_omni_cannot_read_it_is_an_error_naming_the_path(
    server: LiveServer, emulator: AmiEmulator, tts: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Asterisk writes ``RECORD FILE`` into the replies directory on its host; when that is not
    the directory Omni reads (not shared at the same path) the reply is lost: the log says so,
    naming the path and ``OMNI_VOICE_REPLIES_DIR``, and the scenario goes on as with silence."""
    async with make_world(server, ["op"]) as w:
        camp, _ = await _campaign(w)
        order = await _order(w, camp, ["+79165550501"])
        leg = await _answered(server, emulator, w, order)
        agi = _agi(server, order, leg, keys=["1"], replies=[b"\x10\x20" * 8000], replies_elsewhere=True)
        await agi.run()
        assert _said(agi)[-1] == "Thank you, goodbye."
        _, t = await _rows(w, order.attempt_id)
        assert t.result["confirmed"] is True and t.result["recording_file_id"] is None
    record = next(c for c in agi.commands if c[:2] == ["RECORD", "FILE"])
    assert f"voice reply file {record[2]}.* is missing on this node" in caplog.text
    assert "(OMNI_VOICE_REPLIES_DIR) must be the same path on the Asterisk host" in caplog.text


async def test_first_espeak_render_happens_while_ringing_not_as_the_customer_listens(
    server: LiveServer, emulator: AmiEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first render of a text (espeak-ng + sox, about a second) ran when the answered call
    needed it: a second of silence for the customer. Placing the call now renders the
    campaign's texts — the machine message, the scenario's static texts and this contact's
    personal message — while it rings; the answered call plays them all from the cache."""
    import logging

    from omni.domain import speech

    caplog.set_level(logging.INFO, logger="omni.domain.speech")
    settings = server.services.settings
    before = (settings.speech.engine, settings.speech.cache_dir)
    settings.speech.engine, settings.speech.cache_dir = "espeak", tmp_path / "tts"
    try:
        async with make_world(server, ["op"]) as w:
            camp, _ = await _campaign(w)
            async with server.services.db.transaction() as s:
                c = await s.get_one(m.Campaign, camp)
                c.machine_action, c.machine_text = "message", "Sorry we missed you, call 495 123-45-67."
            phone = "+79165550601"
            emulator.customers[phone] = "manual"  # rings until answered below
            order = await _order(w, camp, [phone])
            await voice_of(server).place(order)
            lang = settings.default_language
            wanted = {speech.spell(t, lang) for t in (HELLO, MENU, "Leave a message after the tone.",
                                                      "Thank you, goodbye.", "Sorry we missed you, call 495 123-45-67.")}  # fmt: skip

            async def cached() -> dict[str, str] | None:
                async with server.services.db.transaction() as s:
                    rows = {r.text: r.sound for r in await s.scalars(select(m.TtsCache))}
                return rows if wanted <= set(rows) else None

            rows = await until(cached, what="the campaign's texts rendered while the call rings")
            a, _ = await _rows(w, order.attempt_id)
            assert a.answered_at is None, "all of it before the customer answered"
            renders = caplog.text.count("rendered ")
            assert renders == len(wanted)

            emulator.campaign_answers(phone)

            def redirected() -> bool:
                leg = emulator.campaign_leg(phone)
                return leg is not None and any(
                    r["Channel"] == leg.name for r in actions(emulator, "Redirect")
                )

            await until(redirected, what="the answered call redirected")
            leg = f"omni-a{order.attempt_id}"
            agi = _agi(server, order, leg, keys=["1"], replies=[b"\x10\x20" * 8000])
            await agi.run()
            heard = [p for p in agi.played if p.startswith(str(tmp_path))]
            assert heard == [rows[speech.spell(t, lang)] for t in (HELLO, MENU, "Leave a message after the tone.",
                                                                   "Thank you, goodbye.")]  # fmt: skip
            assert caplog.text.count("rendered ") == renders, "the answered call rendered nothing"
    finally:
        settings.speech.engine, settings.speech.cache_dir = before
