"""The admin menu in groups (People & access, Routing, …) instead of one flat list of sections.

Each section slug belongs to one group here; a section added later without a group shows under
"Other", so nothing registered is ever missing from the menu. Links are unchanged
(``/admin/<slug>``, ``data-section``); only the headings are new."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("people", ("users", "groups", "skills", "grants", "ldap", "tokens")),
    ("routing", ("queues", "statuses", "result-codes", "hours", "calendars", "escalation", "sla")),
    ("channels", ("inboxes", "telegram-bots", "voice-lines")),
    (
        "workspace",
        (
            "canned-replies",
            "card-fields",
            "scripts",
            "operator-scripts",
            "labels",
            "macros",
            "automation-rules",
            "rule-runs",
            "contacts",
        ),
    ),
    ("outbound", ("campaigns",)),
    ("integrations", ("webhooks", "crm")),
    ("compliance", ("audit", "retention")),
    ("system", ("install", "wallboards")),
)
"""Group key (its title is ``adm.menu.<key>``) → the section slugs in it, in menu order."""

OTHER = "other"
DNC_GROUP = "compliance"
"""The group the do-not-call page (not a ``Section``) is listed under."""


def grouped(nav: Sequence[dict[str, str]], t: Any) -> list[dict[str, Any]]:
    """The caller's visible sections (``nav``) in groups, empty groups left out."""
    by_slug = {item["slug"]: item for item in nav}
    placed: set[str] = set()
    out: list[dict[str, Any]] = []
    for key, slugs in GROUPS:
        items = [by_slug[s] for s in slugs if s in by_slug]
        placed.update(s for s in slugs if s in by_slug)
        out.append({"key": key, "title": t(f"adm.menu.{key}"), "items": items})
    rest = [item for item in nav if item["slug"] not in placed]
    if rest:
        out.append({"key": OTHER, "title": t(f"adm.menu.{OTHER}"), "items": rest})
    return out
