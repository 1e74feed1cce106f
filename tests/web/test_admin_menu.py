"""The admin menu in groups (issue 16, rest16): every section an admin may open is linked
exactly once, under its group's heading, in ru and en; a supervisor sees only the groups of the
sections they may open (and the do-not-call page under "Data & compliance")."""

from __future__ import annotations

import re

import httpx

from omni.db import models as m
from omni.web.admin.menu import GROUPS
from omni.web.admin.pages import SECTIONS
from tests import factories as f
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT
from tests.web.test_pages import post_login

NAV = re.compile(r'<nav class="admin-nav".*?</nav>', re.S)


def _menu(html: str) -> list[tuple[str, str]]:
    """(kind, value) in page order: ("group", key) headings and ("link", slug) entries."""
    nav = NAV.search(html)
    assert nav, "no admin menu"
    return [
        ("group", g) if g else ("link", s)
        for g, s in re.findall(r'data-group="([^"]+)"|data-section="([^"]+)"', nav.group(0))
    ]


async def test_admin_menu_is_grouped_and_links_every_section_once(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "root", m.Role.ADMIN)
        await f.user(s, "sup", m.Role.SUPERVISOR)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as admin:
        await post_login(admin, {"username": "root", "password": f.PASSWORD})
        page = await admin.get("/admin")
        menu = _menu(page.text)
        links = [v for k, v in menu if k == "link"]
        assert sorted(links) == sorted([*SECTIONS, "dnc"]), "every section once, nothing else"
        assert [v for k, v in menu if k == "group"] == [key for key, _ in GROUPS]
        assert (
            menu.index(("group", "people")) < menu.index(("link", "users")) < menu.index(("group", "routing"))
        )
        assert menu.index(("group", "compliance")) < menu.index(("link", "dnc"))
        assert "People &amp; access" in page.text
        admin.cookies.set("omni_lang", "ru")
        assert "Люди и доступ" in (await admin.get("/admin")).text
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as sup:
        await post_login(sup, {"username": "sup", "password": f.PASSWORD})
        menu = _menu((await sup.get("/admin")).text)
        visible = [slug for slug, cls in SECTIONS.items() if m.Role.SUPERVISOR in cls.view_roles]
        assert sorted(v for k, v in menu if k == "link") == sorted([*visible, "dnc"])
        shown_groups = [v for k, v in menu if k == "group"]
        assert "people" in shown_groups and "integrations" not in shown_groups
