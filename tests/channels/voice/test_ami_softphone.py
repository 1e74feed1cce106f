"""Omni rings the phone each operator chose (docs/voice.md "Softphone in the operator window"):
the browser softphone's SIP user for an operator whose phone is the browser, the desk extension
otherwise — for offers and for click-to-call alike. AMI emulator, no browser (the Chromium
journey is tests/e2e/test_softphone_browser.py)."""

from __future__ import annotations

from omni.db import models as m
from omni.domain import softphone
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.channels.voice.test_ami_calls import actions, make_world, offered_to, until
from tests.conftest import LiveServer

emulator = calls.emulator
server = calls.server
fresh_emulator = calls.fresh_emulator


async def test_a_call_for_a_browser_operator_rings_the_softphone_not_the_desk_extension(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    server.settings.voice.webrtc_ws_url = "wss://pbx.example.com:8089/ws"
    try:
        async with make_world(server, ["op"]) as w:
            async with server.services.db.transaction() as s:
                user = await s.get_one(m.User, w.ops["op"])
                user.phone_endpoint = m.PhoneEndpoint.BROWSER  # keeps its desk extension
            browser = f"webrtc{w.ops['op']}"
            caller = emulator.incoming_call("+79161230001", inbox=w.inbox_id)
            conv_id = int((await offered_to(w.clients["op"]))["data"]["id"])
            await until(lambda: emulator.ringing(browser))
            assert [a["Channel"] for a in actions(emulator, "Originate")] == [f"PJSIP/{browser}"]
            emulator.answer(browser)
            await until(lambda: caller.bridge)
            emulator.hangup(caller.uniqueid)
            await w.clients["op"].wait_for("conversation.wrap_up", id=conv_id)
            closed = await w.clients["op"].call(
                "close", {"conversation_id": conv_id, "result_code_id": w.code_id}
            )
            assert closed["ok"], closed

            ack = await w.clients["op"].call(
                "click_to_call", {"number": "+79160000002", "queue_id": w.queue_id}
            )
            assert ack["ok"], ack
            await until(lambda: emulator.ringing(browser))
            assert actions(emulator, "Originate")[-1]["Channel"] == f"PJSIP/{browser}"
    finally:
        server.settings.voice.webrtc_ws_url = ""


async def test_a_supervisor_whose_phone_is_the_browser_gets_their_own_credentials_and_listens_there(
    server: LiveServer, emulator: AmiEmulator
) -> None:
    """The supervisor page's softphone: ``softphone`` on ``/supervisor`` gives the caller's own
    SIP user and password (never another's), and listen rings that browser endpoint."""
    server.settings.voice.webrtc_ws_url = "wss://pbx.example.com:8089/ws"
    try:
        async with make_world(server, ["op", "sup"], connect=["op", "sup"]) as w:
            async with server.services.db.transaction() as s:
                (await s.get_one(m.User, w.ops["sup"])).phone_endpoint = m.PhoneEndpoint.BROWSER
            sup, op = w.clients["sup"], w.clients["op"]
            browser = f"webrtc{w.ops['sup']}"
            creds = await sup.call("softphone", {})
            assert creds["ok"] and creds["endpoint"] == "browser", creds
            assert creds["username"] == browser
            assert creds["password"] == softphone.sip_password(server.settings, browser)
            assert (await op.call("softphone", {}))["endpoint"] == "desk"  # the operator's own, not hers

            emulator.phones[w.ext["op"]] = "answer"
            caller = emulator.incoming_call("+79161230009", inbox=w.inbox_id)
            conv_id = int((await op.wait_for("conversation.accepted"))["data"]["id"])
            await until(lambda: caller.bridge)
            ack = await sup.call("call_spy", {"conversation_id": conv_id, "mode": "listen"})
            assert ack["ok"], ack
            spy = await until(
                lambda: [a for a in actions(emulator, "Originate") if a.get("Application") == "ChanSpy"]
            )
            assert spy[-1]["Channel"] == f"PJSIP/{browser}"
            await until(lambda: emulator.ringing(browser))
            emulator.hangup(caller.uniqueid)
    finally:
        server.settings.voice.webrtc_ws_url = ""
