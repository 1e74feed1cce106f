"""What the staff console needs from voice: the FastAGI server running with the app, and call
recordings over HTTP (scope, no path traversal, Range requests for seeking, download)."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from channels.voice.agi import AgiServer
from omni.db import models as m
from omni.domain import conversations
from omni.domain.conversations import InboundMessage
from tests import factories as f
from tests.channels.voice import test_ami_calls as calls
from tests.channels.voice.agi_client import EmulatedCall
from tests.channels.voice.test_ami_calls import World, make_world, voice_of
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.test_realtime import token_for

_calls = itertools.count(1)

# The voice module's app (voice on, against the AMI emulator), one per module.
emulator = calls.emulator
server = calls.server
fresh_emulator = calls.fresh_emulator


def wav_bytes(n_samples: int = 4000) -> bytes:
    """A valid 8 kHz mono 16-bit WAV (a ramp, so every byte range differs)."""
    import struct

    data = b"".join(struct.pack("<h", (i * 37) % 30000 - 15000) for i in range(n_samples))
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + struct.pack("<I", len(data))
    return header + data


async def voice_conversation(w: World, recording_path: str | None) -> int:
    """A voice conversation in the world's queue with a call row (and a recording path)."""
    n = next(_calls)
    async with w.server.services.db.transaction() as s:
        result = await conversations.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=w.inbox_id,
                identity_kind="phone",
                identity_value=f"+7916555{n:04d}",
                contact_phone=f"+7916555{n:04d}",
                external_id=f"rec-{n}-{w.inbox_id}",
                medium=m.Medium.VOICE,
                body="Incoming call",
            ),
        )
        s.add(
            m.Call(
                conversation_id=result.conversation.id,
                inbox_id=w.inbox_id,
                linkedid=f"rec-{n}",
                recording_path=recording_path or "",
                ended_at=result.conversation.created_at,
            )
        )
        return result.conversation.id


def recordings_dir(server: LiveServer) -> Path:
    return Path(server.settings.voice.recordings_dir)


async def client_for(server: LiveServer, username: str) -> httpx.AsyncClient:
    token = await token_for(server, username)
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    )


# --- FastAGI with the app -----------------------------------------------------------------------


async def test_agi_server_starts_with_the_app_and_runs_the_ivr(server: LiveServer) -> None:
    voice = voice_of(server)
    agi = voice.agi
    assert isinstance(agi, AgiServer) and agi.port != 0
    assert voice.prompt_sink == agi.prompt_sink, "bot prompts on a call go to the IVR sessions"
    assert agi.tts_app == server.settings.voice.tts_app
    async with make_world(server, ["op"], connect=[]) as w:
        async with server.services.db.transaction() as s:
            token = (await s.get_one(m.Inbox, w.inbox_id)).public_token
        call = EmulatedCall("127.0.0.1", agi.port, "ivr", [token], uniqueid="1700000900.1")
        await call.run()
        assert call.answered
        assert call.variables["OMNI_RESULT"] == "queued", "an inbox without a scenario goes to the line"
        assert call.variables["OMNI_QUEUE"] == str(w.queue_id)


# --- recordings ------------------------------------------------------------------------------------


async def test_recording_scope_range_and_download(server: LiveServer) -> None:
    body = wav_bytes()
    async with (
        make_world(server, ["op", "sup"], connect=[]) as w,
        make_world(server, ["stranger", "supx"], connect=[]) as other,
    ):
        path = recordings_dir(server) / "2024" / "05" / "01" / f"call-{w.inbox_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        conv_id = await voice_conversation(w, str(path))
        url = f"/api/v1/conversations/{conv_id}/recording"
        op_name, sup_name = _names(w)
        stranger, outsider_sup = _names(other, "stranger", "supx")

        async with await client_for(server, op_name) as c:
            whole = await c.get(url)
            assert whole.status_code == 200
            assert whole.content == body
            assert whole.headers["content-type"].startswith("audio/wav")
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["content-disposition"].startswith("inline")

            part = await c.get(url, headers={"Range": "bytes=100-199"})
            assert part.status_code == 206
            assert part.content == body[100:200]
            assert part.headers["content-range"] == f"bytes 100-199/{len(body)}"
            assert part.headers["content-length"] == "100"

            tail = await c.get(url, headers={"Range": "bytes=-10"})
            assert tail.status_code == 206 and tail.content == body[-10:]
            rest = await c.get(url, headers={"Range": f"bytes={len(body) - 5}-"})
            assert rest.status_code == 206 and rest.content == body[-5:]
            beyond = await c.get(url, headers={"Range": f"bytes={len(body)}-"})
            assert beyond.status_code == 416
            assert beyond.headers["content-range"] == f"bytes */{len(body)}"

            download = await c.get(url, params={"download": "1"})
            assert download.status_code == 200
            assert (
                download.headers["content-disposition"]
                == f'attachment; filename="conversation-{conv_id}.wav"'
            )

        async with await client_for(server, sup_name) as c:
            assert (await c.get(url, headers={"Range": "bytes=0-3"})).content == b"RIFF"

        for name in (stranger, outsider_sup):
            async with await client_for(server, name) as c:
                assert (await c.get(url)).status_code == 404, f"{name} is outside the queue's scope"

        async with server.services.db.transaction() as s:
            await f.user(s, f"auditor{w.queue_id}", m.Role.AUDITOR)
        async with await client_for(server, f"auditor{w.queue_id}") as c:
            assert (await c.get(url)).status_code == 403, "auditors read the audit log only"

        async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as anon:
            assert (await anon.get(url)).status_code == 401


@pytest.mark.parametrize(
    "stored",
    ["/etc/passwd", "{root}/../../../../etc/passwd", "{root}/link.wav", "2024/../../secret.wav"],
)
async def test_recording_outside_the_recordings_dir_is_refused(server: LiveServer, stored: str) -> None:
    root = recordings_dir(server)
    secret = root.parent / "secret.wav"
    secret.write_bytes(wav_bytes(10))
    link = root / "link.wav"
    if not link.is_symlink():
        link.symlink_to(secret)
    async with make_world(server, ["op"], connect=[]) as w:
        conv_id = await voice_conversation(w, stored.format(root=root))
        async with await client_for(server, _names(w)[0]) as c:
            resp = await c.get(f"/api/v1/conversations/{conv_id}/recording")
    assert resp.status_code == 403, resp.text
    assert resp.json()["detail"] == "the recording is outside the recordings directory"


async def test_no_recording_is_not_found(server: LiveServer) -> None:
    async with make_world(server, ["op"], connect=[]) as w:
        without = await voice_conversation(w, None)
        missing = await voice_conversation(w, str(recordings_dir(server) / "gone.wav"))
        async with await client_for(server, _names(w)[0]) as c:
            for conv_id in (without, missing):
                resp = await c.get(f"/api/v1/conversations/{conv_id}/recording")
                assert resp.status_code == 404, resp.text


def _names(w: World, op: str = "op", sup: str = "sup") -> tuple[str, str]:
    """Usernames of the world's operator and supervisor (``make_world`` suffixes a number)."""
    n = str(w.ext[op])[:-2]
    return f"{op}{n}", f"{sup}{n}"


async def test_conversation_view_carries_the_call_facts(server: LiveServer) -> None:
    path = recordings_dir(server) / "facts.wav"
    path.write_bytes(wav_bytes(10))
    async with make_world(server, ["op"]) as w:
        conv_id = await voice_conversation(w, str(path))
        async with server.services.db.transaction() as s:
            row = await s.scalar(select(m.Call).where(m.Call.conversation_id == conv_id))
            assert row is not None
            row.ring_seconds, row.talk_seconds, row.caller_number = 4.26, 61.0, "+79165550000"
        ack = await w.clients["op"].call("open", {"conversation_id": conv_id})
        assert ack["ok"], ack
        call = ack["call"]
        assert call["state"] == "ended" and call["direction"] == "in"
        assert (call["ring_seconds"], call["talk_seconds"], call["hold_seconds"]) == (4.3, 61.0, 0)
        assert call["number"] == "+79165550000"
        assert call["recording"] is True
        assert call["recording_url"] == f"/api/v1/conversations/{conv_id}/recording"
