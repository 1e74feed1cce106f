"""Admin pages over HTTP against the real server: lists, forms, errors next to fields, roles."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bots import service as bot_service
from omni.db import models as m
from omni.domain.auth import Principal
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_pages import csrf_of, login

SECTIONS = (
    "users",
    "groups",
    "queues",
    "statuses",
    "result-codes",
    "inboxes",
    "canned-replies",
    "card-fields",
    "scripts",
)


class _FormReader(HTMLParser):
    """The values a browser would submit from the page's admin form (its current state)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, Any] = {}
        self.in_form = False
        self.select: tuple[str, bool] | None = None
        self.textarea: str | None = None

    def _add(self, name: str, value: str, many: bool = False) -> None:
        if many:
            self.values.setdefault(name, []).append(value)
        else:
            self.values[name] = value

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "admin-form" in a.get("class", ""):
            self.in_form = True
        if not self.in_form or "disabled" in a:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind == "checkbox":
                if "checked" in a:
                    self._add(name, a.get("value", "on"), many=True)
            else:
                self._add(name, a.get("value", ""))
        elif tag == "select" and name:
            self.select = (name, "multiple" in a)
            if "multiple" in a:
                self.values.setdefault(name, [])
        elif tag == "option" and self.select and "selected" in a:
            self._add(self.select[0], a.get("value", ""), many=self.select[1])
        elif tag == "textarea" and name:
            self.textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.values[self.textarea] += data


def form_of(page: str) -> dict[str, Any]:
    reader = _FormReader()
    reader.feed(page)
    out: dict[str, Any] = {}
    for key, value in reader.values.items():
        if isinstance(value, list) and key not in ("members", "result_code_ids", "group_ids"):
            out[key] = value[0] if len(value) == 1 else value
        else:
            out[key] = value
    return out


def field_error(page: str, name: str) -> str | None:
    found = re.search(
        rf'<span class="field-error" data-field="{re.escape(name)}"[^>]*>(.*?)</span>', page, re.S
    )
    return html.unescape(found.group(1)) if found else None


def is_invalid(page: str, name: str) -> bool:
    tag = re.search(rf'<(?:input|select|textarea)[^>]*name="{re.escape(name)}"[^>]*>', page)
    return bool(tag and 'class="invalid"' in tag.group(0))


async def post_form(client: httpx.AsyncClient, url: str, page_url: str, **changes: Any) -> httpx.Response:
    """Submit the form of ``page_url`` to ``url`` the way a browser would, with ``changes``."""
    page = (await client.get(page_url)).text
    data = form_of(page)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return await client.post(url, data=data)


@dataclass
class World:
    server: LiveServer
    ids: dict[str, int]


@pytest.fixture
async def world(live_server: LiveServer) -> AsyncIterator[World]:
    async with live_server.services.db.transaction() as s:
        admin = await f.user(s, "root", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        auditor = await f.user(s, "aud", m.Role.AUDITOR)
        op_a = await f.user(s, "op_a")
        op_b = await f.user(s, "op_b")
        g_a, g_b = m.Group(name="Team A"), m.Group(name="Team B")
        s.add_all([g_a, g_b])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g_a.id, user_id=op_a.id),
                m.GroupMember(group_id=g_b.id, user_id=op_b.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id),
            ]
        )
        q_a = await f.queue(s, "QA", [op_a], group_id=g_a.id)
        q_b = await f.queue(s, "QB", [op_b], group_id=g_b.id)
        done = await f.result_code(s, "done")
        spam = await f.result_code(s, "spam")
        ids = {
            "admin": admin.id,
            "sup": sup.id,
            "auditor": auditor.id,
            "op_a": op_a.id,
            "op_b": op_b.id,
            "g_a": g_a.id,
            "q_a": q_a.id,
            "q_b": q_b.id,
            "done": done.id,
            "spam": spam.id,
        }
    yield World(live_server, ids)


@asynccontextmanager
async def client_for(world: World, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=world.server.url, timeout=HTTP_TIMEOUT) as client:
        resp = await login(client, username)
        assert resp.status_code in (302, 303), resp.text
        yield client


async def test_admin_sees_every_section_in_their_language_and_bad_ids_are_404(world: World) -> None:
    async with client_for(world, "root") as c:
        index = await c.get("/admin")
        assert index.status_code == 200
        for slug in SECTIONS:
            assert f'href="/admin/{slug}"' in index.text
            listing = await c.get(f"/admin/{slug}")
            assert listing.status_code == 200, (slug, listing.text)
            if slug != "scripts":
                new = await c.get(f"/admin/{slug}/new")
                assert new.status_code == 200, (slug, new.text)
        assert "QA" in (await c.get("/admin/queues")).text
        assert (await c.get("/admin/queues/999999")).status_code == 404
        assert (await c.get("/admin/nothing-here")).status_code == 404
        assert (await c.get("/admin/scripts/new")).status_code == 403

    # Pages follow the user's own language.
    async with world.server.services.db.transaction() as s:
        root = await s.get(m.User, world.ids["admin"])
        assert root is not None
        root.language = "ru"
    async with client_for(world, "root") as c:
        index = await c.get("/admin")
        assert "Очереди" in index.text and "Шаблоны ответов" in index.text
        bad = await post_form(c, "/admin/queues/new", "/admin/queues/new", name="Продажи", priority="много")
        assert field_error(bad.text, "priority") == "Введите целое число."
        assert "Исправьте отмеченные поля." in bad.text


async def test_queue_form_shows_errors_next_to_fields_and_keeps_values(world: World) -> None:
    ids = world.ids
    async with client_for(world, "root") as c:
        bad = await post_form(
            c, "/admin/queues/new", "/admin/queues/new", name="Sales", sla_seconds="soon", priority="7"
        )
        assert bad.status_code == 400
        assert field_error(bad.text, "sla_seconds") == "Enter a whole number."
        assert is_invalid(bad.text, "sla_seconds") and not is_invalid(bad.text, "name")
        kept = form_of(bad.text)
        assert kept["name"] == "Sales" and kept["priority"] == "7" and kept["sla_seconds"] == "soon"

        no_target = await post_form(
            c, "/admin/queues/new", "/admin/queues/new", name="Sales", overflow_action="queue"
        )
        assert no_target.status_code == 400
        assert "needs overflow_queue_id" in (field_error(no_target.text, "overflow_queue_id") or "")

        bad_hours = await post_form(
            c,
            "/admin/queues/new",
            "/admin/queues/new",
            name="Sales",
            business_hours='{"timezone": "Mars/Base"}',
        )
        assert bad_hours.status_code == 400
        assert "unknown time zone 'Mars/Base'" in (field_error(bad_hours.text, "business_hours") or "")
        assert "Mars/Base" in form_of(bad_hours.text)["business_hours"]
        not_json = await post_form(
            c, "/admin/queues/new", "/admin/queues/new", name="Sales", business_hours="{nope"
        )
        assert (field_error(not_json.text, "business_hours") or "").startswith("Not valid JSON")

        taken = await post_form(c, "/admin/queues/new", "/admin/queues/new", name="QA")
        assert taken.status_code == 400 and "already exists" in (field_error(taken.text, "name") or "")

        hours = '{"timezone": "Europe/Moscow", "days": {"0": [["09:00", "18:00"]]}}'
        ok = await post_form(
            c,
            "/admin/queues/new",
            "/admin/queues/new",
            name="Sales",
            strategy="round_robin",
            group_id=str(ids["g_a"]),
            members=[str(ids["op_a"]), str(ids["op_b"])],
            result_code_ids=[str(ids["done"])],
            default_result_code_id=str(ids["done"]),
            business_hours=hours,
            auto_accept="1",
        )
        assert ok.status_code in (302, 303), ok.text
        location = ok.headers["location"]
        assert location.endswith("?saved=1")
        saved = await c.get(location)
        assert "Saved." in saved.text and form_of(saved.text)["name"] == "Sales"

        queue_id = int(location.split("/")[3].split("?")[0])
        async with world.server.services.db.transaction() as s:
            q = await s.get(m.Queue, queue_id)
            assert (
                q is not None and q.strategy == "round_robin" and q.auto_accept and q.group_id == ids["g_a"]
            )
            assert q.business_hours == {"timezone": "Europe/Moscow", "days": {"0": [["09:00", "18:00"]]}}
            assert q.default_result_code_id == ids["done"]
            members = set(
                await s.scalars(select(m.QueueMember.user_id).where(m.QueueMember.queue_id == q.id))
            )
            assert members == {ids["op_a"], ids["op_b"]}

        # Editing keeps members (and their order) and checks the default against allowed codes.
        wrong_default = await post_form(
            c,
            f"/admin/queues/{queue_id}",
            f"/admin/queues/{queue_id}",
            default_result_code_id=str(ids["spam"]),
        )
        assert wrong_default.status_code == 400
        assert "not among the queue's result codes" in (
            field_error(wrong_default.text, "default_result_code_id") or ""
        )
        off_hours = await post_form(
            c, f"/admin/queues/{queue_id}", f"/admin/queues/{queue_id}", business_hours="", auto_accept=None
        )
        assert off_hours.status_code in (302, 303)
        async with world.server.services.db.transaction() as s:
            q = await s.get(m.Queue, queue_id)
            assert q is not None and q.business_hours is None and not q.auto_accept

        csrf = csrf_of((await c.get(f"/admin/queues/{queue_id}")).text)
        gone = await c.post(f"/admin/queues/{queue_id}/delete", data={"_csrf": csrf})
        assert gone.status_code in (302, 303) and gone.headers["location"] == "/admin/queues?deleted=1"
        assert "Deleted." in (await c.get(gone.headers["location"])).text


async def test_users_groups_statuses_and_result_codes(world: World) -> None:
    ids = world.ids
    async with client_for(world, "root") as c:
        group = await post_form(c, "/admin/groups/new", "/admin/groups/new", name="Night shift")
        assert group.status_code in (302, 303)
        group_id = int(group.headers["location"].split("/")[3].split("?")[0])

        no_password = await post_form(c, "/admin/users/new", "/admin/users/new", username="nina", password="")
        assert no_password.status_code == 400 and field_error(no_password.text, "password")
        heavy = await post_form(
            c,
            "/admin/users/new",
            "/admin/users/new",
            username="nina",
            password="pw-12345678",
            chat_weight="9",
        )
        assert heavy.status_code == 400 and "exceeds capacity" in (
            field_error(heavy.text, "chat_weight") or ""
        )
        assert form_of(heavy.text)["username"] == "nina"
        created = await post_form(
            c,
            "/admin/users/new",
            "/admin/users/new",
            username="nina",
            password="pw-12345678",
            display_name="Nina <b>",
            group_ids=[str(group_id)],
        )
        assert created.status_code in (302, 303), created.text
        user_page = await c.get(created.headers["location"])
        assert "Nina &lt;b&gt;" in user_page.text and "Nina <b>" not in user_page.text
        # This server can't ring a browser (no OMNI_VOICE_WEBRTC_WS_URL): said next to the
        # phone choice, before an admin picks "browser" and leaves the operator without calls.
        warning = re.search(r'data-warning="phone_endpoint">([^<]*)<', user_page.text)
        assert warning is not None and "OMNI_VOICE_WEBRTC_WS_URL is empty" in warning.group(1)
        user_id = int(created.headers["location"].split("/")[3].split("?")[0])
        renamed = await post_form(
            c, f"/admin/users/{user_id}", f"/admin/users/{user_id}", display_name="Nina K"
        )
        assert renamed.status_code in (302, 303)
        async with world.server.services.db.transaction() as s:
            nina = await s.get(m.User, user_id)
            assert nina is not None and nina.display_name == "Nina K" and nina.password_hash  # password kept
            groups = list(
                await s.scalars(select(m.GroupMember.group_id).where(m.GroupMember.user_id == user_id))
            )
            assert groups == [group_id]
        self_off = await c.post(
            f"/admin/users/{ids['admin']}/delete", data={"_csrf": csrf_of(user_page.text)}
        )
        assert self_off.status_code == 400 and "cannot deactivate yourself" in self_off.text

        status = await post_form(
            c,
            "/admin/statuses/new",
            "/admin/statuses/new",
            code="lunch",
            name="Lunch",
            colour="#AA00aa",
            kind="pause",
        )
        assert status.status_code in (302, 303), status.text
        status_id = int(status.headers["location"].split("/")[3].split("?")[0])
        bad_colour = await post_form(
            c, f"/admin/statuses/{status_id}", f"/admin/statuses/{status_id}", colour="red"
        )
        assert bad_colour.status_code == 400 and "colour like" in (
            field_error(bad_colour.text, "colour") or ""
        )
        async with world.server.services.db.transaction() as s:
            lunch = await s.get(m.OperatorStatus, status_id)
            assert lunch is not None
            s.add(m.OperatorPresence(user_id=ids["op_a"], status_id=lunch.id))
        csrf = csrf_of(bad_colour.text)
        in_use = await c.post(f"/admin/statuses/{status_id}/delete", data={"_csrf": csrf})
        assert in_use.status_code == 400 and "is in use right now" in in_use.text

        code = await post_form(
            c,
            "/admin/result-codes/new",
            "/admin/result-codes/new",
            code="sold",
            name="Sold",
            colour="#00aa00",
        )
        assert code.status_code in (302, 303)
        dup = await post_form(
            c, "/admin/result-codes/new", "/admin/result-codes/new", code="sold", name="Sold again"
        )
        assert dup.status_code == 400 and "already exists" in (field_error(dup.text, "code") or "")
        code_id = int(code.headers["location"].split("/")[3].split("?")[0])
        off = await c.post(f"/admin/result-codes/{code_id}/delete", data={"_csrf": csrf})
        assert off.status_code in (302, 303)
        async with world.server.services.db.transaction() as s:
            sold = await s.get(m.ResultCode, code_id)
            assert sold is not None and not sold.active


async def test_inbox_shows_the_snippet_and_a_new_secret_once(world: World) -> None:
    async with client_for(world, "root") as c:
        bad = await post_form(
            c,
            "/admin/inboxes/new",
            "/admin/inboxes/new",
            name="Site",
            channel="widget",
            queue_id=str(world.ids["q_a"]),
            colour="blue",
            allowed_origins="https://shop.example\nftp://nope",
        )
        assert bad.status_code == 400 and field_error(bad.text, "colour")
        ok = await post_form(
            c,
            "/admin/inboxes/new",
            "/admin/inboxes/new",
            name="Site",
            channel="widget",
            queue_id=str(world.ids["q_a"]),
            greeting="Hello!",
            colour="#1E88E5",
            prechat_name="required",
            prechat_email="optional",
            allowed_origins="https://shop.example/\n",
        )
        assert ok.status_code in (302, 303), ok.text
        page = await c.get(ok.headers["location"])
        inbox_id = int(ok.headers["location"].split("/")[3].split("?")[0])
        async with world.server.services.db.transaction() as s:
            inbox = await s.get(m.Inbox, inbox_id)
            assert inbox is not None
            assert inbox.config == {
                "greeting": "Hello!",
                "colour": "#1e88e5",
                "prechat": [{"name": "name", "required": True}, {"name": "email", "required": False}],
                "allowed_origins": ["https://shop.example"],
            }
            token = inbox.public_token
        snippet = (
            f"&lt;script src=&#34;{world.server.settings.public_base_url}/widget/omni-widget.js&#34; "
            f"data-inbox=&#34;{token}&#34; async&gt;&lt;/script&gt;"
        )
        assert snippet in page.text
        rotated = await c.post(f"/admin/inboxes/{inbox_id}/secret", data={"_csrf": csrf_of(page.text)})
        assert rotated.status_code == 200
        secret = re.search(r"<code data-secret>([^<]+)</code>", rotated.text)
        assert secret and len(secret.group(1)) > 30
        assert "data-secret" not in (await c.get(f"/admin/inboxes/{inbox_id}")).text


async def test_inbox_picks_the_bot_scenario_that_runs_first(world: World) -> None:
    async with world.server.services.db.transaction() as s:
        root = await s.scalar(select(m.User).where(m.User.username == "root"))
        assert root is not None
        doc = {"name": "Desk", "start": "bye", "nodes": [{"id": "bye", "type": "close"}]}
        await bot_service.create(s, Principal.of(root), "desk", "Desk", doc)
    async with client_for(world, "root") as c:
        page = await c.get("/admin/inboxes/new")
        assert '<option value="desk">desk</option>' in page.text
        bad = await post_form(
            c, "/admin/inboxes/new", "/admin/inboxes/new", name="Bot site", channel="widget", scenario="nope"
        )
        assert bad.status_code == 400
        assert field_error(bad.text, "scenario") == "No scenario with the key 'nope'."
        ok = await post_form(
            c, "/admin/inboxes/new", "/admin/inboxes/new", name="Bot site", channel="widget", scenario="desk"
        )
        assert ok.status_code in (302, 303), ok.text
        inbox_id = int(ok.headers["location"].split("/")[3].split("?")[0])
        async with world.server.services.db.transaction() as s:
            inbox = await s.get(m.Inbox, inbox_id)
            assert inbox is not None and inbox.config == {"scenario": "desk"}
        edit = await c.get(f"/admin/inboxes/{inbox_id}")
        assert form_of(edit.text)["scenario"] == "desk"
        # Back to none: the key leaves the config.
        cleared = await post_form(c, f"/admin/inboxes/{inbox_id}", f"/admin/inboxes/{inbox_id}", scenario="")
        assert cleared.status_code in (302, 303), cleared.text
        async with world.server.services.db.transaction() as s:
            inbox = await s.get(m.Inbox, inbox_id)
            assert inbox is not None and inbox.config == {}


async def test_canned_replies_and_card_fields(world: World) -> None:
    async with client_for(world, "root") as c:
        unknown = await post_form(
            c,
            "/admin/canned-replies/new",
            "/admin/canned-replies/new",
            shortcut="hello",
            title="Hello",
            body="Hi {{contact.name}}, I am {{ operator.surname }}.",
        )
        assert unknown.status_code == 400
        message = field_error(unknown.text, "body") or ""
        assert "unknown placeholder {{operator.surname}}" in message
        assert form_of(unknown.text)["body"] == "Hi {{contact.name}}, I am {{ operator.surname }}."
        bad_shortcut = await post_form(
            c,
            "/admin/canned-replies/new",
            "/admin/canned-replies/new",
            shortcut="Hi there",
            title="x",
            body="x",
        )
        assert field_error(bad_shortcut.text, "shortcut")
        ok = await post_form(
            c,
            "/admin/canned-replies/new",
            "/admin/canned-replies/new",
            shortcut="hello",
            title="Hello",
            body="Hi {{contact.name}}, this is {{operator.name}} from {{queue.name}}.",
            queue_id=str(world.ids["q_a"]),
        )
        assert ok.status_code in (302, 303), ok.text
        again = await post_form(
            c,
            "/admin/canned-replies/new",
            "/admin/canned-replies/new",
            shortcut="hello",
            title="Again",
            body="x",
            queue_id=str(world.ids["q_a"]),
        )
        assert again.status_code == 400 and "already used" in (field_error(again.text, "shortcut") or "")
        listing = await c.get("/admin/canned-replies")
        assert "/hello" in listing.text and "QA" in listing.text

        no_options = await post_form(
            c, "/admin/card-fields/new", "/admin/card-fields/new", key="tariff", label="Tariff", kind="select"
        )
        assert no_options.status_code == 400 and field_error(no_options.text, "options")
        bad_key = await post_form(c, "/admin/card-fields/new", "/admin/card-fields/new", key="1st", label="x")
        assert field_error(bad_key.text, "key")
        field = await post_form(
            c,
            "/admin/card-fields/new",
            "/admin/card-fields/new",
            key="tariff",
            label="Tariff",
            label_ru="Тариф",
            kind="select",
            options="Basic\nPro\n",
            required="1",
        )
        assert field.status_code in (302, 303), field.text
        clash = await post_form(
            c,
            "/admin/card-fields/new",
            "/admin/card-fields/new",
            key="tariff",
            label="Tariff",
            queue_id=str(world.ids["q_a"]),
        )
        assert clash.status_code == 400 and "every queue" in (field_error(clash.text, "key") or "")
        async with world.server.services.db.transaction() as s:
            row = await s.scalar(select(m.CardField).where(m.CardField.key == "tariff"))
            assert (
                row is not None and row.options == ["Basic", "Pro"] and row.required and row.queue_id is None
            )
            audit = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "card_field.create"))
            assert audit is not None


async def test_scripts_are_sanitised_on_save_and_preview(world: World) -> None:
    qid = world.ids["q_a"]
    dirty = (
        '<p onclick="steal()">Greet <b>warmly</b></p><script>alert(1)</script>'
        '<img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a>'
    )
    async with client_for(world, "root") as c:
        page = await c.get(f"/admin/scripts/{qid}")
        preview = await c.post(
            f"/admin/scripts/{qid}/preview", data={"_csrf": csrf_of(page.text), "script": dirty}
        )
        assert preview.status_code == 200
        shown = preview.text.split("data-preview>")[1].split("</div>")[0]
        assert "<b>warmly</b>" in shown
        for bad in ("<script", "onerror", "onclick", "javascript:"):
            assert bad not in shown
        async with world.server.services.db.transaction() as s:
            q = await s.get(m.Queue, qid)
            assert q is not None and q.script == ""  # a preview saves nothing

        saved = await c.post(f"/admin/scripts/{qid}", data={"_csrf": csrf_of(page.text), "script": dirty})
        assert saved.status_code in (302, 303)
        async with world.server.services.db.transaction() as s:
            q = await s.get(m.Queue, qid)
            assert q is not None and "<b>warmly</b>" in q.script
            for bad in ("<script", "onerror", "onclick", "javascript:", "alert(1)"):
                assert bad not in q.script
        assert (
            "data-preview><p>Greet <b>warmly</b></p>" in (await c.get(f"/admin/scripts/{qid}?saved=1")).text
        )


async def test_supervisor_is_kept_to_their_queues(world: World) -> None:
    ids = world.ids
    async with client_for(world, "sup") as c:
        index = await c.get("/admin")
        assert 'href="/admin/queues"' in index.text and 'href="/admin/statuses"' in index.text
        queues = await c.get("/admin/queues")
        assert ">QA<" in queues.text and ">QB<" not in queues.text
        assert 'data-action="new"' not in queues.text

        assert (await c.get(f"/admin/queues/{ids['q_b']}")).status_code == 404
        csrf = csrf_of(queues.text)
        foreign = await c.post(f"/admin/queues/{ids['q_b']}", data={"_csrf": csrf, "name": "Mine now"})
        assert foreign.status_code == 404
        assert (
            await c.post(f"/admin/scripts/{ids['q_b']}", data={"_csrf": csrf, "script": "x"})
        ).status_code == 404
        assert (await c.post("/admin/queues/new", data={"_csrf": csrf, "name": "New"})).status_code == 403
        async with world.server.services.db.transaction() as s:
            qb = await s.get(m.Queue, ids["q_b"])
            assert qb is not None and qb.name == "QB" and qb.script == ""

        own = await post_form(
            c, f"/admin/queues/{ids['q_a']}", f"/admin/queues/{ids['q_a']}", sla_seconds="45"
        )
        assert own.status_code in (302, 303), own.text
        async with world.server.services.db.transaction() as s:
            qa = await s.get(m.Queue, ids["q_a"])
            assert qa is not None and qa.sla_seconds == 45 and qa.group_id == ids["g_a"]

        global_reply = await post_form(
            c,
            "/admin/canned-replies/new",
            "/admin/canned-replies/new",
            shortcut="hi",
            title="Hi",
            body="Hi",
            queue_id="",
        )
        assert global_reply.status_code == 400 and "only an admin" in (
            field_error(global_reply.text, "queue_id") or ""
        )
        own_reply = await post_form(
            c,
            "/admin/canned-replies/new",
            "/admin/canned-replies/new",
            shortcut="hi",
            title="Hi",
            body="Hi",
            queue_id=str(ids["q_a"]),
        )
        assert own_reply.status_code in (302, 303), own_reply.text
        assert (await c.get("/admin/inboxes/new")).status_code == 403


async def test_auditor_reads_but_cannot_save_and_forms_need_the_token(world: World) -> None:
    async with client_for(world, "aud") as c:
        index = await c.get("/admin")
        assert 'href="/admin/statuses"' in index.text and 'href="/admin/queues"' not in index.text
        statuses = await c.get("/admin/statuses")
        assert statuses.status_code == 200 and "available" in statuses.text
        status_id = int(re.search(r'href="/admin/statuses/(\d+)"', statuses.text).group(1))  # type: ignore[union-attr]
        page = await c.get(f"/admin/statuses/{status_id}")
        assert (
            page.status_code == 200
            and "data-readonly" in page.text
            and 'type="submit"' not in page.text.split('class="admin-form"')[1].split("</form>")[0]
        )
        refused = await c.post(
            f"/admin/statuses/{status_id}", data={"_csrf": csrf_of(page.text), "name": "x"}
        )
        assert refused.status_code == 403
        assert (await c.get("/admin/queues")).status_code == 403
        assert (await c.get("/admin/canned-replies")).status_code == 200

    async with client_for(world, "root") as c:
        page = await c.get("/admin/groups/new")
        forged = await c.post("/admin/groups/new", data={"name": "Forged"})
        assert forged.status_code == 403 and "form has expired" in forged.text
        assert (
            await c.post("/admin/groups/new", data={"name": "Forged", "_csrf": "0" * 40})
        ).status_code == 403
        async with world.server.services.db.transaction() as s:
            assert await s.scalar(select(m.Group).where(m.Group.name == "Forged")) is None
        assert page.status_code == 200

    async with client_for(world, "op_a") as c:
        assert (await c.get("/admin")).status_code == 403
        assert (await c.get("/admin/statuses")).status_code == 403
