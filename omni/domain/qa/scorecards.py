"""Scorecards: the questions a grader answers, with weights, kinds and critical items.

Built by whoever holds ``qa.scorecards`` (supervisors and admins by default). Items:

* ``yesno`` — yes scores the item's weight, no scores 0; a **critical** item answered "no"
  zeroes the whole evaluation (only yes/no items can be critical);
* ``scale`` — 0..``scale_max`` (2–10), scoring ``weight × value / scale_max``.

Once an evaluation uses a scorecard it is frozen: a change writes a new version (same
``family_id``, ``version`` + 1) and retires the old one, so old grades keep their meaning.
Every change is audited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit, grants
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, NotFound

KINDS = ("yesno", "scale")
MAX_ITEMS = 50
MAX_WEIGHT = 100
KEY_RE = re.compile(r"^[a-z0-9_]{1,32}$")


def scorecard_dict(card: m.QaScorecard) -> dict[str, Any]:
    return {
        "id": card.id,
        "family_id": card.family_id or card.id,
        "version": card.version,
        "name": card.name,
        "description": card.description,
        "items": list(card.items or []),
        "active": card.active,
        "created_at": card.created_at.isoformat(),
    }


def _text(value: object, field: str, limit: int, *, required: bool) -> str:
    if not isinstance(value, str):
        raise InvalidInput("{field} must be text", field=field)
    text = value.strip()
    if required and not text:
        raise InvalidInput("{field} is required", field=field)
    if len(text) > limit:
        raise InvalidInput("{field} must be at most {max_len} characters", max_len=limit, field=field)
    return text


def _int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            "{field} must be a whole number from {low} to {high}", low=low, high=high, field=field
        )
    return value


def clean_items(raw: object) -> list[dict[str, Any]]:
    """The items as stored, or ``InvalidInput`` naming the item (``items[2].weight``)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("a scorecard needs at least one question", field="items")
    if len(raw) > MAX_ITEMS:
        raise InvalidInput("a scorecard has at most {max} questions", max=MAX_ITEMS, field="items")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"items[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput("{field} must be an object", field=where)
        text = _text(item.get("text", ""), f"{where}.text", 500, required=True)
        kind = item.get("kind", "yesno")
        if kind not in KINDS:
            raise InvalidInput("{field} must be yesno or scale", field=f"{where}.kind")
        weight = _int(item.get("weight", 1), f"{where}.weight", 0, MAX_WEIGHT)
        critical = item.get("critical", False)
        if not isinstance(critical, bool):
            raise InvalidInput("'{field}' must be true or false", field=f"{where}.critical")
        if critical and kind != "yesno":
            raise InvalidInput("only a yes/no question can be critical", field=f"{where}.critical")
        scale_max = _int(item.get("scale_max", 5), f"{where}.scale_max", 2, 10) if kind == "scale" else None
        key = item.get("key") or f"q{i + 1}"
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise InvalidInput("{field} must be 1-32 lower-case letters, digits or _", field=f"{where}.key")
        if key in seen:
            key = f"q{i + 1}_{len(seen)}"
        seen.add(key)
        out.append(
            {
                "key": key,
                "text": text,
                "kind": kind,
                "weight": weight,
                "critical": critical,
                "scale_max": scale_max,
            }
        )
    if not any(it["weight"] > 0 for it in out):
        raise InvalidInput("at least one question needs a weight above 0", field="items")
    return out


async def list_scorecards(
    session: AsyncSession, who: Principal, *, include_retired: bool = False
) -> list[m.QaScorecard]:
    """Scorecards for graders and builders (the newest version of each, unless retired asked)."""
    await check_read_scorecards(session, who)
    stmt = select(m.QaScorecard).order_by(m.QaScorecard.name, m.QaScorecard.version)
    if not include_retired:
        stmt = stmt.where(m.QaScorecard.active.is_(True))
    return list(await session.scalars(stmt))


async def check_read_scorecards(session: AsyncSession, who: Principal) -> None:
    """Graders and builders read scorecards; anyone else is refused as lacking the grade grant."""
    if not (
        await grants.allowed(session, who, grants.QA_GRADE)
        or await grants.allowed(session, who, grants.QA_SCORECARDS)
    ):
        await grants.check(session, who, grants.QA_GRADE)


async def get_scorecard(session: AsyncSession, card_id: int) -> m.QaScorecard:
    card = await session.get(m.QaScorecard, card_id)
    if card is None:
        raise NotFound("scorecard {scorecard_id} not found", scorecard_id=card_id)
    return card


async def check_create_scorecard(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.QaScorecard:
    await grants.check(session, who, grants.QA_SCORECARDS)
    card = m.QaScorecard(
        name=_text(data.get("name", ""), "name", 128, required=True),
        description=_text(data.get("description", ""), "description", 2000, required=False),
        items=clean_items(data.get("items")),
        version=1,
        active=True,
        created_by=who.id,
    )
    session.add(card)
    await session.flush()
    card.family_id = card.id
    await session.flush()
    audit.record(
        session,
        who,
        "qa.scorecard.create",
        object_type="qa_scorecard",
        object_id=card.id,
        data={"name": card.name},
    )
    return card


async def is_used(session: AsyncSession, card_id: int) -> bool:
    return bool(await session.scalar(select(exists().where(m.QaEvaluation.scorecard_id == card_id))))


async def check_update_scorecard(
    session: AsyncSession, who: Principal, card_id: int, data: Mapping[str, Any]
) -> m.QaScorecard:
    """Change a scorecard; a used one is frozen, so its change becomes a new version (returned)."""
    await grants.check(session, who, grants.QA_SCORECARDS)
    card = await get_scorecard(session, card_id)
    name = _text(data["name"], "name", 128, required=True) if "name" in data else card.name
    description = (
        _text(data["description"], "description", 2000, required=False)
        if "description" in data
        else card.description
    )
    items = clean_items(data["items"]) if "items" in data else list(card.items)
    active = data.get("active", card.active)
    if not isinstance(active, bool):
        raise InvalidInput("'{field}' must be true or false", field="active")
    content_changed = (name, description, items) != (card.name, card.description, list(card.items))
    if content_changed and await is_used(session, card.id):
        if not card.active:
            raise InvalidInput(
                "a retired scorecard version cannot be changed: change its newest version", field="id"
            )
        newer = m.QaScorecard(
            family_id=card.family_id or card.id,
            version=card.version + 1,
            name=name,
            description=description,
            items=items,
            active=active,
            created_by=who.id,
        )
        card.active = False
        session.add(newer)
        await session.flush()
        audit.record(
            session,
            who,
            "qa.scorecard.version",
            object_type="qa_scorecard",
            object_id=newer.id,
            data={"previous_id": card.id, "version": newer.version},
        )
        return newer
    card.name, card.description, card.items, card.active = name, description, items, active
    await session.flush()
    audit.record(
        session,
        who,
        "qa.scorecard.update",
        object_type="qa_scorecard",
        object_id=card.id,
        data={"active": active},
    )
    return card


async def scorecard_rows(session: AsyncSession, ids: set[int]) -> list[m.QaScorecard]:
    """The scorecard versions some evaluations were made with (retired ones included)."""
    if not ids:
        return []
    return list(await session.scalars(select(m.QaScorecard).where(m.QaScorecard.id.in_(ids))))
