"""The operator's phone endpoint (``omni.domain.softphone``): Omni dials the phone the operator
chose, and the browser's SIP credentials Omni issues are the ones the PBX is given."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from omni.db import models as m
from omni.domain import auth, softphone
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT


def operator(user_id: int, endpoint: m.PhoneEndpoint, extension: str | None = None) -> m.User:
    return m.User(
        id=user_id, username=f"op{user_id}", phone_endpoint=endpoint, sip_extension=extension, is_active=True
    )


def voice_settings(settings: Settings) -> Settings:
    s = settings.model_copy(deep=True)
    s.secret_key = "test secret"
    s.voice.enabled = True
    s.voice.webrtc_ws_url = "wss://pbx.example.com:8089/ws"
    return s


def test_omni_dials_the_phone_the_operator_chose(settings: Settings) -> None:
    s = voice_settings(settings)
    assert softphone.dial_extension(operator(7, m.PhoneEndpoint.DESK, "101"), s.voice) == "101"
    assert softphone.dial_extension(operator(7, m.PhoneEndpoint.BROWSER, "101"), s.voice) == "webrtc7"
    assert softphone.dial_extension(operator(7, m.PhoneEndpoint.DESK), s.voice) is None
    s.voice.webrtc_ws_url = ""  # no WebRTC address on this install: nothing to ring
    assert softphone.dial_extension(operator(7, m.PhoneEndpoint.BROWSER, "101"), s.voice) is None


def test_browser_credentials_go_to_browser_operators_and_match_what_the_pbx_gets(settings: Settings) -> None:
    s = voice_settings(settings)
    desk, olga, ivan = (
        operator(1, m.PhoneEndpoint.DESK, "101"),
        operator(2, m.PhoneEndpoint.BROWSER),
        operator(3, m.PhoneEndpoint.BROWSER),
    )
    assert softphone.credentials(desk, s) == {"endpoint": "desk"}
    mine = softphone.credentials(olga, s)
    assert mine["uri"] == "sip:webrtc2@pbx.example.com"
    assert mine["ws_url"] == "wss://pbx.example.com:8089/ws"
    assert mine["password"] == softphone.credentials(olga, s)["password"]  # stable, never stored
    assert mine["password"] != softphone.credentials(ivan, s)["password"]
    pjsip = softphone.pjsip_endpoints([desk, olga, ivan], s)
    assert (
        f"[webrtc2]\ntype = auth\nauth_type = userpass\nusername = webrtc2\npassword = {mine['password']}"
        in pjsip
    )
    assert "[webrtc2](omni-webrtc)" in pjsip and "[webrtc3](omni-webrtc)" in pjsip
    assert "101" not in pjsip  # desk phones are the admin's own pjsip.conf
    s.voice.webrtc_secret = "rotated"
    assert softphone.credentials(olga, s)["password"] != mine["password"]
    s.voice.webrtc_ws_url = ""
    assert softphone.credentials(olga, s) == {"endpoint": "browser", "configured": False}


async def test_an_admin_switches_an_operator_to_the_browser_and_a_wrong_value_is_refused(
    live_server: LiveServer,
) -> None:
    async with live_server.services.db.transaction() as s:
        root = await f.user(s, "root", m.Role.ADMIN)
        op = await f.user(s, "op", sip_extension="101")
        _, token = await auth.do_create_api_token(s, root, "phones")
        op_id = op.id
    async with httpx.AsyncClient(
        base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    ) as client:
        bad = await client.patch(f"/api/v1/users/{op_id}", json={"phone_endpoint": "fax"})
        assert bad.status_code == 422, bad.text
        assert bad.json()["field"] == "phone_endpoint"
        ok = await client.patch(f"/api/v1/users/{op_id}", json={"phone_endpoint": "browser"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["phone_endpoint"] == "browser"
    async with live_server.services.db.transaction() as s:
        assert await s.scalar(select(m.User.phone_endpoint).where(m.User.id == op_id)) == "browser"
        audited = (await s.scalars(select(m.AuditLog).where(m.AuditLog.object_id == str(op_id)))).all()
        assert any(a.input.get("phone_endpoint") == "browser" for a in audited), [a.input for a in audited]
