"""The scenario builder's keyboard in real Chromium (issue 18, docs/bots.md "Keyboard").

Shift+click picks two connected nodes, Ctrl+C / Ctrl+V pastes them with new ids (the arrow
between them kept, the arrow to a node left behind dropped), shifted so they show beside the
originals; saving keeps them (the reloaded draft and the database have them). A second builder
tab pastes the same nodes into another scenario, with the variable they use. Ctrl+F finds
nodes by text and by variable, centres the hit, Enter goes to the next one. "?" lists the keys.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.axe import axe_serious
from tests.e2e.conftest import screenshot_path, staff_page
from tests.e2e.test_operator_browser import DESK

TIMEOUT = 15_000
SAVED = re.compile("Draft saved|Черновик сохранён")
TEXT = {
    "en": {
        "copied": "Copied: 2 node(s)",
        "count": "2 of 4: ",
        "none": "Nothing found",
        "title": "Keyboard shortcuts",
    },
    "ru": {
        "copied": "Скопировано узлов: 2",
        "count": "2 из 4: ",
        "none": "Ничего не найдено",
        "title": "Горячие клавиши",
    },
}


def node(page: Page, node_id: str) -> Locator:
    return page.locator(f'[data-testid=node][data-node="{node_id}"]')


async def pick(page: Page, node: str, *, add: bool = False) -> None:
    await page.locator(f'[data-node="{node}"] rect.box').click(
        position={"x": 30, "y": 56}, modifiers=["Shift"] if add else None
    )


async def inside_canvas(page: Page, node: str) -> bool:
    box = await page.locator(".bld-canvas").bounding_box()
    hit = await page.locator(f'[data-node="{node}"] rect.box').bounding_box()
    assert box is not None and hit is not None
    return (
        box["x"] <= hit["x"]
        and hit["x"] + hit["width"] <= box["x"] + box["width"]
        and box["y"] <= hit["y"]
        and hit["y"] + hit["height"] <= box["y"] + box["height"]
    )


async def draft_of(server: LiveServer, scenario_id: int) -> dict[str, Any]:
    async with server.services.db.transaction() as s:
        row = await s.get_one(m.Scenario, scenario_id)
        return dict(row.draft)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_copy_paste_across_tabs_and_search_nodes_from_the_keyboard(
    live_server: LiveServer, browser: Browser, lang: str
) -> None:
    from bots import service
    from omni.domain.auth import Principal

    text = TEXT[lang]
    async with live_server.services.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        sup.language = lang
        desk = await service.create(s, Principal.of(sup), "desk", "Front desk", DESK)
        other = await service.create(
            s,
            Principal.of(sup),
            "other",
            "Other",
            {
                "name": "Other",
                "start": "hi",
                "nodes": [{"id": "hi", "type": "message", "content": {"text": "Hi"}}],
            },
        )
        ids = (desk.id, other.id)
    context, page = await staff_page(
        browser, live_server.url, "sup", locale="ru-RU" if lang == "ru" else "en-US"
    )
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"/supervisor/bots/{ids[0]}")
    nodes = page.get_by_test_id("node")
    await expect(nodes).to_have_count(4, timeout=TIMEOUT)

    # "?" lists the builder's keys in a dialog.
    await page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name=text["title"])
    await expect(dialog.locator('[data-keys="mod+c"] kbd')).to_have_text(["Ctrl", "C"])
    assert await axe_serious(page, "[data-testid=shortcuts]") == []
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    # Shift+click picks two nodes; Ctrl+C, Ctrl+V: two new nodes beside the originals.
    await pick(page, "remember")
    await pick(page, "agent", add=True)
    await expect(page.locator(".bn.picked")).to_have_count(2)
    await page.keyboard.press("Control+c")
    await expect(page.get_by_test_id("status")).to_have_text(text["copied"])
    await page.keyboard.press("Control+v")
    await expect(nodes).to_have_count(6)
    for new, old in (("remember1", "remember"), ("agent1", "agent")):
        assert await inside_canvas(page, new), new
        moved = await node(page, new).get_attribute("transform")
        assert moved != await node(page, old).get_attribute("transform")
    await expect(page.locator(".bn.picked")).to_have_count(2)
    edge = page.locator('[data-testid=edge][data-from="remember1"]')
    await expect(edge).to_have_attribute("data-to", "agent1")
    await expect(page.locator('[data-testid=edge][data-from="agent1"]')).to_have_count(
        0
    )  # "bye" stayed behind

    # Saved, reloaded: still there.
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("status")).to_have_text(SAVED, timeout=TIMEOUT)
    await page.reload()
    await expect(nodes).to_have_count(6, timeout=TIMEOUT)
    await expect(edge).to_have_attribute("data-to", "agent1")
    draft = await draft_of(live_server, ids[0])
    by_id = {n["id"]: n for n in draft["nodes"]}
    assert by_id["remember1"]["ports"] == {"next": "agent1"}
    assert by_id["agent1"]["type"] == "handoff" and by_id["agent1"]["ports"] == {}
    assert by_id["remember1"]["assign"] == by_id["remember"]["assign"]

    # Another tab, another scenario: Ctrl+V brings the nodes there, with the variable "topic".
    second = await context.new_page()
    await second.goto(f"/supervisor/bots/{ids[1]}")
    await expect(second.get_by_test_id("node")).to_have_count(1, timeout=TIMEOUT)
    await second.locator("body").click(position={"x": 5, "y": 300})
    await second.keyboard.press("Control+v")
    await expect(second.get_by_test_id("node")).to_have_count(3)
    await expect(second.locator('[data-testid=edge][data-from="remember1"]')).to_have_attribute(
        "data-to", "agent1"
    )
    await expect(second.locator('[data-testid=variable][data-name="topic"]')).to_have_count(1)
    assert await inside_canvas(second, "remember1")
    await second.get_by_test_id("save").click()
    await expect(second.get_by_test_id("status")).to_have_text(SAVED, timeout=TIMEOUT)
    assert [n["id"] for n in (await draft_of(live_server, ids[1]))["nodes"]] == ["hi", "remember1", "agent1"]

    # Ctrl+F: the search box; a text finds its node, selected and centred.
    await page.locator("body").click(position={"x": 5, "y": 300})
    await page.keyboard.press("Control+f")
    search = page.get_by_test_id("node-search")
    await expect(search).to_be_focused()
    await page.keyboard.type("nobody is free")
    await expect(page.get_by_test_id("node-form")).to_have_attribute("data-node", "bye")
    await expect(node(page, "bye")).to_have_class(re.compile("search-current"))
    assert await inside_canvas(page, "bye")
    # A variable: four nodes use "topic"; Enter goes to the second.
    await search.fill("topic")
    count = page.get_by_test_id("node-search-count")
    await expect(count).to_contain_text(text["count"].replace("2", "1", 1))
    await expect(page.locator(".bn.search-hit")).to_have_count(4)
    await page.keyboard.press("Enter")
    await expect(count).to_contain_text(text["count"])
    second_hit = (await count.inner_text()).split(": ")[-1]
    await expect(page.get_by_test_id("node-form")).to_have_attribute("data-node", second_hit)
    assert await inside_canvas(page, second_hit)
    await search.fill("no such words")
    await expect(count).to_have_text(text["none"])
    await page.screenshot(path=screenshot_path(f"builder-keys-{lang}.png"))
    await page.keyboard.press("Escape")
    await expect(search).to_have_value("")
    await expect(page.locator(".bn.search-hit")).to_have_count(0)
    assert errors == []
