"""The prompt manager and the staff file area through the real app over HTTP: uploads as a
browser sends them (multipart), the converted WAV the ``<audio>`` element plays, per-role
downloads, and names (Cyrillic, quotes, markup) that stay plain text in headers."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.media.audio import tone

CSRF = {"X-Omni-CSRF": "1"}


async def _login(server: LiveServer, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT, headers=CSRF)
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
    assert resp.status_code == 200, resp.text
    return client


async def _people(server: LiveServer) -> dict[str, httpx.AsyncClient]:
    async with server.services.db.transaction() as s:
        await f.user(s, "sup", m.Role.SUPERVISOR)
        await f.user(s, "op")
        await f.user(s, "aud", m.Role.AUDITOR)
    return {name: await _login(server, name) for name in ("sup", "op", "aud")}


async def test_prompt_upload_preview_and_original_over_http(live_server: LiveServer, tmp_path: Path) -> None:
    people = await _people(live_server)
    sup, op = people["sup"], people["op"]
    mp3 = tone(tmp_path / "hello.mp3", seconds=1)
    resp = await sup.post(
        "/api/v1/prompts/",
        files={"file": ("Привет.mp3", mp3, "audio/mpeg")},
        data={"folder": "greetings", "name": ""},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["name"] == "Привет" and body["folder"] == "greetings" and 900 <= body["duration_ms"] <= 1100
    audio = await sup.get(body["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF" and audio.headers["x-content-type-options"] == "nosniff"
    original = await sup.get(body["original_url"])
    assert original.content == mp3
    assert original.headers["content-disposition"] == "attachment; filename*=utf-8''" + quote("Привет.mp3")
    listed = await sup.get("/api/v1/prompts/", params={"folder": "greetings"})
    assert [p["id"] for p in listed.json()] == [body["id"]]
    assert (await sup.get("/api/v1/prompts/folders")).json() == {"folders": ["greetings"]}
    assert (await people["aud"].get(body["audio_url"])).status_code == 200, "auditors listen"
    assert (await people["aud"].delete(f"/api/v1/prompts/{body['id']}")).status_code == 403
    assert (await op.get(body["audio_url"])).status_code == 403
    not_audio = {"file": ("x.wav", b"<html>not audio</html>", "audio/wav")}
    refused = await sup.post("/api/v1/prompts/", files=not_audio)
    assert refused.status_code == 422 and refused.json()["field"] == "file"
    assert "not a WAV or MP3" in refused.json()["detail"]
    sup.cookies.set("omni_lang", "ru")
    ru = await sup.post("/api/v1/prompts/", files=not_audio)
    assert "не файл WAV или MP3" in ru.json()["detail"]
    sup.cookies.delete("omni_lang")
    assert len((await sup.get("/api/v1/prompts/")).json()) == 1, "the refused uploads stored nothing"
    moved = await sup.patch(f"/api/v1/prompts/{body['id']}", json={"folder": "ivr/day", "name": "Hello"})
    assert moved.status_code == 200 and moved.json()["sound"] == body["sound"]
    assert (await sup.delete(f"/api/v1/prompts/{body['id']}")).status_code == 200
    assert (await sup.get(body["audio_url"])).status_code == 404


async def test_staff_files_per_role_download(live_server: LiveServer) -> None:
    people = await _people(live_server)
    sup, op, aud = people["sup"], people["op"], people["aud"]
    name = 'Прайс "2026" <b>.pdf'
    open_file = await sup.post(
        "/api/v1/staff-files/",
        files={"file": (name, b"%PDF-1.4 price list", "application/pdf")},
        data={"folder": "sales", "roles": ""},
    )
    assert open_file.status_code == 201, open_file.text
    secret = await sup.post(
        "/api/v1/staff-files/",
        files={"file": ("plan.txt", b"supervisors only", "text/plain")},
        data={"folder": "sales", "roles": "supervisor"},
    )
    assert secret.status_code == 201 and secret.json()["roles"] == ["supervisor"]
    seen = (await op.get("/api/v1/staff-files/")).json()
    assert [x["name"] for x in seen] == [name], "the operator does not see the supervisors' file"
    download = await op.get(seen[0]["download_url"])
    assert download.status_code == 200 and download.content == b"%PDF-1.4 price list"
    disposition = download.headers["content-disposition"]
    assert disposition == "attachment; filename*=utf-8''" + quote(name) and "<" not in disposition
    hidden = await op.get(secret.json()["download_url"])
    assert hidden.status_code == 404 and "plan" not in hidden.text
    assert (await aud.get(secret.json()["download_url"])).status_code == 404
    assert (await sup.get(secret.json()["download_url"])).content == b"supervisors only"
    text = {"file": ("a.txt", b"x", "text/plain")}
    assert (await op.post("/api/v1/staff-files/", files=text)).status_code == 403
    assert (await op.delete(f"/api/v1/staff-files/{open_file.json()['id']}")).status_code == 403
    exe = {"file": ("run.exe", b"MZ\x90\x00", "application/x-msdownload")}
    bad = await sup.post("/api/v1/staff-files/", files=exe)
    assert bad.status_code == 422 and bad.json()["field"] == "file"
    fake = await sup.post("/api/v1/staff-files/", files={"file": ("x.pdf", b"<script>", "application/pdf")})
    assert fake.status_code == 422
    assert (await op.get("/api/v1/staff-files/folders")).json() == {"folders": ["sales"]}
    opened = await sup.patch(f"/api/v1/staff-files/{secret.json()['id']}", json={"roles": []})
    assert opened.status_code == 200
    assert (await op.get(secret.json()["download_url"])).content == b"supervisors only"
    page = await op.get("/files")
    assert page.status_code == 200 and '"view":"files"' in page.text.replace(" ", "")
