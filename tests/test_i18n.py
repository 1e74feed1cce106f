"""Message catalogs: every refusal is translatable and translated, and reaches a Russian caller
in Russian over REST and Socket.IO (issue 10, item 19)."""

from __future__ import annotations

import io
import json
import re
import shutil
import string
import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest
import socketio

from omni import i18n, i18n_tools
from omni.db import models as m
from omni.domain.errors import InvalidInput
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.test_realtime import token_for


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_no_raise_site_passes_an_fstring_or_an_untranslated_literal() -> None:
    """A refusal built with an f-string can't be looked up in the catalog: it would reach a
    Russian user in English. ``python -m omni.i18n_tools absorb`` rewrites such sites."""
    bad = [f"{s.path}:{s.line}: {s.problem}: {s.text}" for s in i18n_tools.raise_sites() if s.problem]
    assert bad == []


def test_every_msgid_has_a_russian_translation() -> None:
    assert i18n_tools.missing_translations("ru") == []


def test_translations_keep_every_placeholder() -> None:
    plain = i18n.catalog("ru").plain
    broken = [msgid for msgid, text in plain.items() if _placeholders(msgid) != _placeholders(text)]
    assert broken == []


def test_english_server_messages_reach_russian_users_in_russian() -> None:
    exc = InvalidInput("{field} must be at most {max_len} characters", max_len=128, field="name")
    assert exc.message == "name must be at most 128 characters"  # logs and English callers
    assert exc.localized("ru") == "name: не длиннее 128 символов"
    busy = "you have no free capacity for another conversation"
    assert i18n.gettext("ru", busy) == "у вас нет свободной ёмкости для ещё одного обращения"


def test_enum_values_have_labels_in_both_languages() -> None:
    for value in m.Strategy:
        assert i18n.enum_label("ru", "strategy", value) != value.value
    assert i18n.enum_label("ru", "overflow_action", "voicemail") == "Голосовая почта"
    assert i18n.enum_label("en", "channel", "widget") == "Web chat"
    assert i18n.enum_label("ru", "status", m.ConversationStatus.WRAP_UP) == "Постобработка"


def test_absorb_rewrites_fstring_raise_sites_and_register_tables_idempotently(tmp_path: Path) -> None:
    """What the merger runs after merging branches that still use the old ways."""
    module = tmp_path / "mod.py"
    module.write_text(
        textwrap.dedent(
            """\
            from omni.domain.errors import InvalidInput
            from omni.web.i18n import register

            _STRINGS = {"x.title": ("Title", "Заголовок")}
            register(en={k: v[0] for k, v in _STRINGS.items()}, ru={k: v[1] for k, v in _STRINGS.items()})


            def check(name: str, limit: int, conv) -> None:
                if len(name) > limit:
                    raise InvalidInput(f"{name!r} is longer than {limit} (it is {conv.status})", field=name)
            """
        )
    )
    assert i18n_tools.convert_file(module) == 1
    assert i18n_tools.strip_register_calls(module)
    once = module.read_text()
    assert (
        'raise InvalidInput("{field!r} is longer than {limit} (it is {status})", limit=limit, '
        "status=conv.status, field=name)" in once
    )
    assert "register" not in once and "_STRINGS" not in once
    assert i18n_tools.convert_file(module) == 0
    assert not i18n_tools.strip_register_calls(module)
    assert module.read_text() == once
    compile(once, str(module), "exec")


def test_the_ts_extractor_finds_translatable_calls() -> None:
    source = b'el("p", {}, t("op.none")); const s = `${t(`op.st.${x}`)}`; _("Plain text")'
    found = [msg for _, _, msg, _ in i18n_tools.extract_ts(__import__("io").BytesIO(source), {}, [], {})]
    assert found == ["op.none", "Plain text"]


WIDGET = i18n_tools.ROOT / "widget"


def _widget_tables(locale_dir: Path, out: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """What ``npm run build`` bundles: the tables scripts/messages.mjs generates from the .po files."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is needed to build the widget")
    subprocess.run(
        [node, str(WIDGET / "scripts" / "messages.mjs"), "--locale", str(locale_dir), "--out", str(out)],
        check=True,
    )
    text = out.read_text(encoding="utf-8")

    def table(name: str) -> dict[str, dict[str, str]]:
        found = re.search(rf"^export const {name}: .*? = (.*);$", text, re.M)
        assert found is not None, text
        return json.loads(found.group(1))  # type: ignore[no-any-return]

    return table("EN"), table("TRANSLATIONS")  # type: ignore[return-value]


def _widget_keys() -> set[str]:
    source = (WIDGET / "src" / "widget.ts").read_bytes()
    found = i18n_tools.extract_ts(io.BytesIO(source), {}, [], {"table_keys": "t:widget."})
    return {msg for _, _, msg, _ in found if msg.startswith("widget.")}


def test_every_widget_text_is_in_the_catalogs_with_russian() -> None:
    """The widget's texts (``t.open`` in widget.ts) are catalog entries ``widget.open``, so
    translators see them in the same .po file as the rest of Omni."""
    keys = _widget_keys()
    assert {"widget.open", "widget.tooLong", "widget.fillFirst"} <= keys
    ru = i18n.catalog("ru").keyed
    assert [k for k in sorted(keys) if not ru.get(k)] == []
    assert ru["widget.open"] == "Напишите нам"
    assert i18n.catalog("en").keyed["widget.open"] == "Chat with us"


def test_a_widget_text_without_russian_fails_the_check(tmp_path: Path) -> None:
    """``python -m omni.i18n_tools check`` lists it, and the widget shows it in English."""
    catalog = i18n_tools._read_catalog(i18n.po_path("ru"), "ru")
    catalog.get("Thank you for your rating!", context="widget.thanks").string = ""
    # As a translator's tool writes it: long lines wrapped, quotes and newlines escaped.
    long = 'Сейчас мы не в сети. "Оставьте" сообщение,\nи мы ответим позже. ' * 4
    offline = "We are offline now. Leave a message and we will answer later."
    catalog.get(offline, context="widget.offline").string = long
    i18n_tools._write_catalog(catalog, i18n.po_path("ru", tmp_path))
    assert i18n_tools.missing_translations("ru", tmp_path) == ["widget.thanks: Thank you for your rating!"]
    en, translations = _widget_tables(tmp_path, tmp_path / "messages.ts")
    assert "thanks" not in translations["ru"]  # the widget falls back to EN for it
    assert en["thanks"] == "Thank you for your rating!"
    assert translations["ru"]["open"] == "Напишите нам"
    assert translations["ru"]["offline"] == long


def test_a_widget_text_missing_from_the_catalogs_fails_the_check(tmp_path: Path) -> None:
    widget = tmp_path / "widget" / "src"
    widget.mkdir(parents=True)
    (widget / "widget.ts").write_text("el('p', '', t.open); el('p', '', t.brandNew);\n", encoding="utf-8")
    assert i18n_tools.unknown_keys(tmp_path) == ["widget/src/widget.ts:1: unknown key: widget.brandNew"]
    assert i18n_tools.unknown_keys() == []


def test_widget_build_tables_match_the_catalogs(tmp_path: Path) -> None:
    en, translations = _widget_tables(i18n.LOCALE_DIR, tmp_path / "messages.ts")
    keys = {f"widget.{k}" for k in en}
    assert _widget_keys() <= keys
    assert en["position"] == "You are number {p} in line"
    assert translations["ru"]["position"] == "Вы {p}-й в очереди"
    assert translations["ru"]["fillFirst"] == "Сначала заполните поле «{field}»."
    for key, english in en.items():  # the widget fills these placeholders itself
        assert _placeholders(translations["ru"][key]) == _placeholders(english), key


async def test_russian_rest_call_gets_a_russian_domain_error(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        boss = await f.user(s, "boss", m.Role.ADMIN)
        boss.language = "ru"
        await f.user(s, "eve", m.Role.ADMIN)  # English, asks in Russian via Accept-Language
    ru_token = await token_for(live_server, "boss")
    en_token = await token_for(live_server, "eve")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        too_long = {"name": "x" * 129, "sla_seconds": 0}
        russian = await client.post(
            "/api/v1/queues", json=too_long, headers={"Authorization": f"Bearer {ru_token}"}
        )
        assert russian.status_code == 422
        body = russian.json()
        assert body["detail"] == "name: не длиннее 128 символов"
        assert {e["field"]: e["detail"] for e in body["errors"]} == {
            "name": "name: не длиннее 128 символов",
            "sla_seconds": "sla_seconds: не меньше 1",
        }
        english = await client.post(
            "/api/v1/queues", json=too_long, headers={"Authorization": f"Bearer {en_token}"}
        )
        assert english.json()["detail"] == "name must be at most 128 characters"
        asked = await client.post(
            "/api/v1/queues",
            json=too_long,
            headers={"Authorization": f"Bearer {en_token}", "Accept-Language": "ru-RU,ru;q=0.9"},
        )
        # The user's own setting wins over the browser's; English users stay English.
        assert asked.json()["detail"] == "name must be at most 128 characters"
        anonymous = await client.get("/api/v1/me", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
        assert anonymous.status_code == 401
        assert anonymous.json()["detail"] == "войдите или передайте действующий API-токен"


async def test_russian_operator_socket_ack_has_a_russian_detail(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        olga = await f.user(s, "olga")
        olga.language = "ru"
    token = await token_for(live_server, "olga")
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(  # the namespace's answer may take longer than the default 1 s on a loaded machine
        live_server.url,
        namespaces=["/operator"],
        auth={"token": token},
        transports=["websocket"],
        wait_timeout=10,
    )
    try:
        ack = await sio.call("resume", {"after": "soon"}, namespace="/operator", timeout=10)
        assert ack["ok"] is False
        assert ack["detail"] == "'after' должно быть числом"
        taken = await sio.call("take", {"conversation_id": 999999}, namespace="/operator", timeout=10)
        assert taken["ok"] is False
        assert taken["detail"] == "обращение 999999 не найдено", taken
    finally:
        await sio.disconnect()


async def test_russian_builder_sees_scenario_problems_in_russian(live_server: LiveServer) -> None:
    from tests.bots.test_http import DOC

    async with live_server.services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        sup.language = "ru"
    token = await token_for(live_server, "sup")
    async with httpx.AsyncClient(
        base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    ) as c:
        created = await c.post("/api/v1/scenarios", json={"key": "desk", "name": "Desk", "document": DOC})
        assert created.status_code == 201, created.text
        assert {
            "node": "menu",
            "code": "port_unconnected",
            "message": "узел 'menu': порт 'opt:tech' не подключён",
            "port": "opt:tech",
        } in created.json()["problems"]
        refused = await c.post(f"/api/v1/scenarios/{created.json()['id']}/publish", json={})
        assert refused.status_code == 422
        assert refused.json()["detail"] == "нельзя опубликовать: узел 'menu': порт 'opt:tech' не подключён"


async def test_russian_widget_visitor_gets_refusals_in_russian(live_server: LiveServer) -> None:
    from channels.widget import MAX_BODY

    async with live_server.services.db.transaction() as s:
        box = await f.inbox(s, await f.queue(s, "Web"), channel="widget")
        token = box.public_token
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        live_server.url,
        namespaces=["/widget"],
        auth={"inbox": token, "lang": "ru"},
        transports=["websocket"],
        wait_timeout=10,
    )
    try:
        ack = await sio.call(
            "message", {"client_id": "c1", "body": "я" * (MAX_BODY + 1)}, namespace="/widget", timeout=10
        )
        assert ack["ok"] is False and ack["retry"] is False
        assert ack["detail"] == f"сообщение длиннее {MAX_BODY} символов"
        missing = await sio.call("message", {"body": "привет"}, namespace="/widget", timeout=10)
        assert missing["detail"] == "нужен client_id"
    finally:
        await sio.disconnect()
