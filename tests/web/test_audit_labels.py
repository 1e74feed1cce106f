"""The audit log viewer (issue 16, rest16): actions, entity types and results show as labels in
the reader's language with the action code beside them (what the filter takes), and a failed
sign-in for a name that is no account (``admin`` typed at the login form) is not a link to
"user #admin": only real row ids link."""

from __future__ import annotations

import re

import httpx

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_pages import post_login


async def test_audit_viewer_shows_labels_and_links_only_real_entity_ids(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        root = await f.user(s, "root", m.Role.ADMIN)
        s.add_all(
            [
                m.AuditLog(
                    user_id=None, action="auth.login", object_type="user", object_id="admin", result="denied"
                ),
                m.AuditLog(
                    user_id=root.id, action="queue.update", object_type="queue", object_id="7", input={}
                ),
            ]
        )
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as admin:
        await post_login(admin, {"username": "root", "password": f.PASSWORD})
        page = (await admin.get("/admin/audit")).text
        assert "Sign-in" in page and "Queue: changed" in page
        assert '<code class="muted" data-action-code>auth.login</code>' in page
        assert '<td data-result="denied">denied</td>' in page
        assert "User: admin" in page
        assert "object_id=admin" not in page, "a typed name is no entity to link"
        assert re.search(r'<a href="/admin/audit\?object_type=queue&amp;object_id=7">Queue #7</a>', page)
        assert '<option value="queue">Queue</option>' in page

        admin.cookies.set("omni_lang", "ru")
        ru = (await admin.get("/admin/audit")).text
        assert "Вход в систему" in ru and "Очередь: изменён(а)" in ru and "отказано" in ru
        assert "Пользователь: admin" in ru
