"""axe-core in a Playwright page (the copy pinned in widget/package-lock.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE_JS = Path(__file__).resolve().parents[2] / "widget" / "node_modules" / "axe-core" / "axe.min.js"


async def axe_serious(page: Page, include: str | None = None) -> list[str]:
    """The serious and critical violations in ``include`` (a CSS selector) or the whole page,
    as "rule: target" lines; an empty list is the pass."""
    assert AXE_JS.exists(), "cd widget && npm ci (axe-core is a devDependency)"
    # Evaluated, not a <script> tag: the console's CSP (script-src 'self') refuses inline tags.
    await page.evaluate(AXE_JS.read_text() + "\n;0")
    context = f"{{include: [[{include!r}]]}}" if include else "document"
    found: list[dict[str, Any]] = await page.evaluate(
        f"async () => (await axe.run({context}, {{resultTypes: ['violations']}})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => ({id: v.id, nodes: v.nodes.map(n => JSON.stringify(n.target) + ' ' + n.failureSummary)}))"
    )
    return [f"{v['id']}: {'; '.join(v['nodes'])}" for v in found]
