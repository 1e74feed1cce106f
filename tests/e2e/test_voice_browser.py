"""A phone call in real Chromium: the operator window and the supervisor page against the AMI
emulator (no Asterisk).

One journey: a caller rings → the operator window shows the ringing call with the caller's
card and their earlier chat (matched by phone), "answer on your phone" → the emulator answers
the operator's leg → talk time ticks → the supervisor's Listen originates ChanSpy ``qE`` → Hold
redirects the caller to the hold context, Resume bridges again → Hang up → wrap-up → close with
a result code → the recording plays at 2x and downloads.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect
from sqlalchemy import select

from omni.db import models as m
from omni.domain import conversations
from omni.domain.conversations import InboundMessage
from tests import factories as f
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import actions, until
from tests.conftest import LiveServer
from tests.e2e.conftest import running, screenshot_path, staff_page, voice_settings

TIMEOUT = 15_000
CALLER = "+79161234567"


def wav(seconds: float = 2.0, rate: int = 8000) -> bytes:
    n = int(seconds * rate)
    data = b"".join(struct.pack("<h", (i * 440 * 65536 // rate) % 20000 - 10000) for i in range(n))
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def write_recording(path: Path) -> None:
    """What MixMonitor would have written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav())


def state_of(panel: Locator) -> Locator:
    return panel.get_by_test_id("call-state")


@pytest.fixture
async def server(pg_url: str, tmp_path: Path, emulator: AmiEmulator) -> AsyncIterator[LiveServer]:
    settings = voice_settings(pg_url, tmp_path, emulator)
    async with running(settings) as srv:
        yield srv


@pytest.fixture
async def world(server: LiveServer) -> dict[str, Any]:
    """Queue ``phones`` with Olga (extension 101) and a voice line; supervisor Sam (201) in
    scope; an earlier, closed chat of the same caller on an API inbox."""
    async with server.services.db.transaction() as s:
        op = await f.user(s, "op", sip_extension="101")
        op.display_name = "Olga"
        sup = await f.user(s, "sup", m.Role.SUPERVISOR, sip_extension="201")
        code = await f.result_code(s, "solved")
        q = await f.queue(s, "phones", [op], operator_timeout_seconds=20, wrap_up_seconds=60)
        s.add(m.QueueResultCode(queue_id=q.id, result_code_id=code.id))
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=q.id))
        line = await f.inbox(s, q, channel="voice", name="line")
        line.config = {"caller_id": "+74950000000"}
        api = await f.inbox(s, q, channel="api", name="crm")
        earlier = await conversations.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=api.id,
                identity_kind="phone",
                identity_value=CALLER,
                contact_phone=CALLER,
                contact_name="Ivan Petrov",
                body="Where is my order?",
            ),
        )
        earlier.conversation.status = m.ConversationStatus.CLOSED
        earlier.conversation.closed_at = datetime.now(UTC)
        return {"inbox": line.id, "code": code.id, "queue": q.id, "earlier": earlier.conversation.id}


async def test_an_inbound_call_in_the_operator_window_and_the_supervisor_page(
    server: LiveServer, emulator: AmiEmulator, world: dict[str, Any], browser: Browser
) -> None:
    await until(lambda: server.services.adapters.get("voice").ami.ready)  # type: ignore[union-attr]
    _, op = await staff_page(browser, server.url, "op")
    await expect(op.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)
    await expect(op.get_by_test_id("dial")).to_be_visible()  # click-to-call from a voice queue

    # The call rings: the caller's card and earlier chat show at once; answering is on the phone.
    caller = emulator.incoming_call(CALLER, "Ivan", inbox=world["inbox"])
    await until(lambda: emulator.ringing("101"))
    call_panel = op.get_by_test_id("call")
    await expect(state_of(call_panel)).to_have_attribute("data-state", "ringing", timeout=TIMEOUT)
    await expect(call_panel.get_by_test_id("answer-on-phone")).to_have_text("Answer on your phone")
    await expect(op.get_by_test_id("offer").get_by_test_id("answer-on-phone")).to_be_visible()
    await expect(op.get_by_test_id("offer-accept")).to_have_count(0)
    await expect(op.get_by_test_id("card-field-phone")).to_have_value(CALLER)
    await expect(op.get_by_test_id("card-field-name")).to_have_value("Ivan Petrov")
    history = op.locator(f'[data-testid=history-item][data-id="{world["earlier"]}"]')
    await expect(history).to_have_attribute("data-channel", "api", timeout=TIMEOUT)

    # The phone answers → connected: talk time ticks; the composer writes notes only.
    emulator.answer("101")
    await expect(state_of(call_panel)).to_have_attribute("data-state", "talking", timeout=TIMEOUT)
    talk = call_panel.get_by_test_id("talk-time")
    await expect(talk).to_have_text(re.compile(r"^00:0[1-9]$"), timeout=TIMEOUT)
    await expect(op.get_by_test_id("note-toggle")).to_be_checked()
    await until(lambda: caller.bridge)
    conv_id = int((await op.get_by_test_id("conversation-item").first.get_attribute("data-id")) or 0)
    async with server.services.db.transaction() as s:
        row = await s.scalar(select(m.Call).where(m.Call.conversation_id == conv_id))
        assert row is not None and row.recording_path
        recording = Path(row.recording_path)
    await asyncio.to_thread(write_recording, recording)
    await op.screenshot(path=screenshot_path("operator-call.png"))

    # The supervisor listens in: their phone is originated into ChanSpy on the operator's leg.
    sup_context, sup = await staff_page(browser, server.url, "sup")
    controls = sup.locator(f'[data-testid=conversation][data-conversation-id="{conv_id}"]')
    await controls.get_by_test_id("call-listen").click(timeout=TIMEOUT)
    await expect(sup.get_by_test_id("action-result")).to_have_text(
        "Your phone rings: pick it up to listen.", timeout=TIMEOUT
    )
    spy = await until(
        lambda: [a for a in actions(emulator, "Originate") if a.get("Application") == "ChanSpy"]
    )
    assert spy[-1]["Channel"] == "PJSIP/201"
    assert spy[-1]["Data"].endswith(",qE"), spy[-1]

    # A force-end Asterisk refuses: the supervisor reads why; the operator still talks.
    emulator.refuse["hangup"] = "Permission denied"
    await controls.get_by_test_id("call-force-end").click(timeout=TIMEOUT)
    await sup.get_by_test_id("force-end-confirm").click(timeout=TIMEOUT)
    await expect(sup.get_by_test_id("action-result")).to_have_text(
        re.compile(r"^Failed: the phone system could not end the call: Permission denied$"), timeout=TIMEOUT
    )
    await expect(state_of(call_panel)).to_have_attribute("data-state", "talking")
    await expect(op.get_by_test_id("wrap-up")).to_have_count(0)
    assert caller.uniqueid in emulator.channels
    emulator.refuse.clear()

    # Hold: the caller is redirected to the hold context; Resume bridges them back.
    await call_panel.get_by_test_id("call-hold").click()
    redirect = await until(
        lambda: [a for a in actions(emulator, "Redirect") if a.get("Context") == "omni-hold"]
    )
    assert redirect[-1]["Channel"] == caller.name
    await expect(state_of(call_panel)).to_have_attribute("data-state", "on_hold", timeout=TIMEOUT)
    await expect(call_panel.get_by_test_id("call-hold")).to_have_text("Resume")
    bridges = len(actions(emulator, "Bridge"))
    await call_panel.get_by_test_id("call-hold").click()
    await until(lambda: len(actions(emulator, "Bridge")) > bridges)
    await expect(state_of(call_panel)).to_have_attribute("data-state", "talking", timeout=TIMEOUT)

    # Hang up → wrap-up → close with a result code.
    await call_panel.get_by_test_id("call-hangup").click()
    await until(lambda: [a for a in actions(emulator, "Hangup") if a.get("Channel") == caller.name])
    await expect(op.get_by_test_id("wrap-up")).to_be_visible(timeout=TIMEOUT)
    await expect(state_of(call_panel)).to_have_attribute("data-state", "ended", timeout=TIMEOUT)

    # The recording plays at 2x; the download link asks for an attachment.
    audio = call_panel.get_by_test_id("recording-audio")
    await expect(audio).to_be_attached(timeout=TIMEOUT)
    await call_panel.get_by_test_id("recording-speed").select_option("2")
    # Wait for the metadata (the sentinel event, if not there yet). Not ``wait_for_function``
    # with a string: once it has to poll it evals the string, which the page's CSP refuses.
    await audio.evaluate(
        "a => a.readyState >= 1 || new Promise(r => a.addEventListener('loadedmetadata', r, {once: true}))"
    )
    assert await audio.evaluate("a => a.playbackRate") == 2
    assert await audio.evaluate("a => a.duration") == pytest.approx(2.0, abs=0.1)
    await audio.evaluate("a => { a.muted = true; return a.play(); }")
    assert await audio.evaluate("a => a.playbackRate") == 2
    await audio.evaluate("a => { a.dataset.kept = 'yes'; }")  # this very player, playing at 2x
    href = await call_panel.get_by_test_id("recording-download").get_attribute("href")
    assert href == f"/api/v1/conversations/{conv_id}/recording?download=1"

    await op.get_by_test_id("close-code").select_option(str(world["code"]))
    await op.get_by_test_id("close-submit").click()
    await expect(op.get_by_test_id("conversation-status")).to_have_text("Closed", timeout=TIMEOUT)
    # Regression: every conversation event re-rendered the call panel with a new player, so a
    # supervisor or operator listening lost the playback and its speed (seen as 1x under load).
    assert await audio.evaluate("a => a.dataset.kept") == "yes"
    assert await audio.evaluate("a => a.playbackRate") == 2
    async with server.services.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        assert conv.status == m.ConversationStatus.CLOSED and conv.result_code_id == world["code"]
        assert conv.hold_seconds >= 0
    await sup_context.close()


async def talking(
    server: LiveServer, emulator: AmiEmulator, world: dict[str, Any], browser: Browser
) -> tuple[Page, int, str]:
    """A label ``VIP`` to put on the call later; Olga's window with the caller's call answered
    on her phone: the page, the conversation and the caller's channel."""
    async with server.services.db.transaction() as s:
        vip = m.Label(name="VIP", color="#e53935")
        s.add(vip)
        await s.flush()
        world["vip"] = vip.id
    await until(lambda: server.services.adapters.get("voice").ami.ready)  # type: ignore[union-attr]
    _, op = await staff_page(browser, server.url, "op")
    await expect(op.get_by_test_id("status-select")).to_have_value("available", timeout=TIMEOUT)
    caller = emulator.incoming_call(CALLER, "Ivan", inbox=world["inbox"])
    await until(lambda: emulator.ringing("101"))
    call_panel = op.get_by_test_id("call")
    await expect(state_of(call_panel)).to_have_attribute("data-state", "ringing", timeout=TIMEOUT)
    emulator.answer("101")
    await expect(state_of(call_panel)).to_have_attribute("data-state", "talking", timeout=TIMEOUT)
    await until(lambda: caller.bridge)
    conv_id = int((await op.get_by_test_id("conversation-item").first.get_attribute("data-id")) or 0)
    return op, conv_id, caller.name


async def label_it(server: LiveServer, conv_id: int, label_id: int) -> None:
    """A colleague or a rule puts a label on the conversation: an event of it, which changes
    nothing on the call."""
    from omni.domain.auth import Principal
    from omni.domain.labels import check_set_labels

    async with server.services.db.transaction() as s:
        admin = await f.user(s, "labeller", m.Role.ADMIN)
        await check_set_labels(s, Principal.of(admin), conv_id, add=[label_id])


async def test_a_click_on_the_call_panel_is_not_lost_to_an_event_of_the_call(
    server: LiveServer, emulator: AmiEmulator, world: dict[str, Any], browser: Browser
) -> None:
    """The call panel was rebuilt on every event of the conversation (and on the re-read of the
    call that follows it): a click on Hold whose press and release straddled one reached two
    different buttons and did nothing. Now each part of the panel stays while what it shows
    does: Hold, Hang up and the talk time survive an event that changes nothing on the call."""
    op, conv_id, channel = await talking(server, emulator, world, browser)
    call_panel = op.get_by_test_id("call")
    for testid in ("call-hold", "call-hangup", "talk-time"):
        await call_panel.get_by_test_id(testid).evaluate("b => { b.dataset.before = 'event' }")

    # Hold is pressed; a label is put on the conversation and shows in the actions (drawn with
    # the call panel, in the same pass); Hold is released.
    await call_panel.get_by_test_id("call-hold").hover()
    await op.mouse.down()
    await label_it(server, conv_id, world["vip"])
    chip = op.get_by_test_id("actions").get_by_test_id("label-chip").filter(has_text="VIP")
    await expect(chip).to_be_visible(timeout=TIMEOUT)
    for testid in ("call-hold", "call-hangup", "talk-time"):
        await expect(call_panel.get_by_test_id(testid)).to_have_attribute("data-before", "event")
    await op.mouse.up()
    redirect = await until(
        lambda: [a for a in actions(emulator, "Redirect") if a.get("Context") == "omni-hold"]
    )
    assert redirect[-1]["Channel"] == channel
    await expect(state_of(call_panel)).to_have_attribute("data-state", "on_hold", timeout=TIMEOUT)
    # The hold changed what the buttons show (Resume) and the times (hold time): those are new.
    await expect(call_panel.get_by_test_id("call-hold")).to_have_text("Resume")
    await expect(call_panel.get_by_test_id("call-hold")).not_to_have_attribute("data-before", "event")
    await expect(call_panel.get_by_test_id("hold-time")).to_be_visible()


async def test_a_click_on_the_supervisors_call_controls_is_not_lost_to_a_redraw(
    server: LiveServer, emulator: AmiEmulator, world: dict[str, Any], browser: Browser
) -> None:
    """The supervisor's operator table was rebuilt on every redraw (a presence change, a label,
    each snapshot): a click on Listen whose press and release straddled one reached two
    different buttons and did nothing. Now rows, cells and controls stay while what they show
    does, and only what changed is redrawn."""
    _, conv_id, _ = await talking(server, emulator, world, browser)
    _, sup = await staff_page(browser, server.url, "sup")
    row = sup.locator(f'[data-testid=conversation][data-conversation-id="{conv_id}"]')
    listen = row.get_by_test_id("call-listen")
    await expect(listen).to_be_visible(timeout=TIMEOUT)
    for control in (listen, row.get_by_test_id("call-force-end"), row.get_by_test_id("whisper")):
        await control.evaluate("b => { b.dataset.before = 'redraw' }")

    # Listen is pressed; a label is put on the conversation and shows in its row; Listen is
    # released.
    await listen.hover()
    await sup.mouse.down()
    await label_it(server, conv_id, world["vip"])
    await expect(row.get_by_test_id("label-chip").filter(has_text="VIP")).to_be_visible(timeout=TIMEOUT)
    await sup.mouse.up()
    await expect(sup.get_by_test_id("action-result")).to_have_text(
        "Your phone rings: pick it up to listen.", timeout=TIMEOUT
    )
    spy = await until(
        lambda: [a for a in actions(emulator, "Originate") if a.get("Application") == "ChanSpy"]
    )
    assert spy[-1]["Channel"] == "PJSIP/201"
    for control in (listen, row.get_by_test_id("call-force-end"), row.get_by_test_id("whisper")):
        await expect(control).to_have_attribute("data-before", "redraw")
