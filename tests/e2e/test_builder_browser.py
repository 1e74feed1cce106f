"""The scenario builder in real Chromium: build message → menu → set → hand-off → close from
the palette, connect ports by dragging, see the publish problem on its node, fix it, test-run
in the simulator by clicking a button, publish."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from omni.db import models as m
from tests import factories as f
from tests.conftest import LiveServer
from tests.e2e.conftest import screenshot_path, staff_page


async def connect(page: Page, source: str, port: str, target: str) -> None:
    """Drag from a port's handle onto a node, as a supervisor does."""
    handle = await page.locator(f'[data-node="{source}"] [data-port="{port}"]').bounding_box()
    box = await page.locator(f'[data-node="{target}"] rect.box').bounding_box()
    assert handle is not None and box is not None
    await page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(box["x"] + 40, box["y"] + 25, steps=6)
    await page.mouse.up()
    edge = page.locator(f'[data-testid=edge][data-from="{source}"][data-port="{port}"]')
    await expect(edge).to_have_attribute("data-to", target)


async def test_builder_builds_tests_and_publishes(live_server: LiveServer, browser: Browser) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "sup", m.Role.SUPERVISOR)
        await f.result_code(s, "done")
    context, page = await staff_page(browser, live_server.url, "sup")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto("/supervisor/bots")
        await page.get_by_test_id("new-key").fill("desk")
        await page.get_by_test_id("new-name").fill("Front desk")
        await page.get_by_test_id("create").click()
        await page.wait_for_url("**/supervisor/bots/*")
        nodes = page.get_by_test_id("node")
        await expect(nodes).to_have_count(1)

        await page.locator('[data-node="start"] rect.box').click()
        await page.get_by_test_id("content-text").fill("Hello!")
        await page.get_by_test_id("palette-menu").click()
        await expect(page.get_by_test_id("node-form")).to_have_attribute("data-node", "menu1")
        await page.get_by_test_id("content-text").fill("What is it about?")
        await page.get_by_test_id("option-add").click()
        await expect(page.get_by_test_id("option")).to_have_count(2)
        await page.get_by_test_id("option-label").first.fill("Billing")
        await page.get_by_test_id("option-label").nth(1).fill("Other")
        await page.get_by_test_id("palette-set").click()
        await page.get_by_test_id("palette-handoff").click()
        await page.get_by_test_id("palette-close").click()
        await page.get_by_test_id("result-code").select_option("done")
        await expect(nodes).to_have_count(5)
        await expect(page.locator('[data-testid=variable][data-name="answer"]')).to_have_count(1)

        await connect(page, "start", "next", "menu1")
        await connect(page, "menu1", "opt:opt1", "set1")
        await connect(page, "menu1", "opt:opt2", "handoff1")
        await connect(page, "set1", "next", "handoff1")
        await connect(page, "handoff1", "on_no_agents", "close1")
        await connect(page, "handoff1", "on_closed", "close1")

        # The menu's "out of retries" exit is still open: publishing is refused, on that node.
        await page.get_by_test_id("publish").click()
        menu = page.locator('[data-testid=node][data-node="menu1"]')
        await expect(menu).to_have_class("bn kind-menu has-problem")
        await expect(menu.get_by_test_id("node-problem")).to_contain_text("on_max_retries")
        await expect(page.get_by_test_id("problem")).to_have_count(1)
        await expect(page.get_by_test_id("active-revision")).to_have_text("not published")

        await connect(page, "menu1", "on_max_retries", "handoff1")
        await page.get_by_test_id("save").click()
        await expect(page.get_by_test_id("status")).to_have_text("Draft saved, ready to publish.")
        await expect(menu).not_to_have_class("bn kind-menu has-problem")

        # Test run: click the bot's button, see the path on the canvas and the variable.
        await page.get_by_test_id("tab-test").click()
        await page.get_by_test_id("sim-start").click()
        bot = page.get_by_test_id("sim-bot")
        await expect(bot).to_have_count(2)
        await expect(bot.first).to_have_text("Hello!")
        await bot.nth(1).get_by_test_id("sim-button").filter(has_text="Billing").click()
        await expect(page.get_by_test_id("sim-customer")).to_have_text("▸ Billing")
        await expect(page.get_by_test_id("sim-path")).to_have_text("Path: start → menu1 → set1 → handoff1")
        await expect(page.locator('[data-testid=sim-var][data-name="answer"]')).to_contain_text("opt1")
        await expect(page.get_by_test_id("sim-ending")).to_contain_text("Handed to an operator")
        await expect(page.locator('[data-node="set1"]')).to_have_class("bn kind-set on-path")
        await expect(page.locator('[data-node="close1"]')).to_have_class("bn kind-close")

        await page.get_by_test_id("publish").click()
        await expect(page.get_by_test_id("active-revision")).to_have_text("published: revision 1")
        await page.get_by_test_id("tab-versions").click()
        await expect(page.get_by_test_id("revision")).to_have_count(1)
        await page.screenshot(path=screenshot_path("builder.png"), full_page=True)
        assert errors == []
    finally:
        await context.close()

    async with live_server.services.db.transaction() as s:
        row = await s.scalar(select(m.Scenario).where(m.Scenario.key == "desk"))
        assert row is not None and row.active_revision_id is not None
        doc: dict[str, Any] = row.draft
        assert {n["id"] for n in doc["nodes"]} == {"start", "menu1", "set1", "handoff1", "close1"}
        assert set(doc["layout"]) == {"start", "menu1", "set1", "handoff1", "close1"}
