"""Automation rules after hand-off: event → conditions → actions, with a log of every run.

The outbox relay runs them (``RuleRunner`` is one of its transaction sinks, no loop of its
own): a batch of committed events is matched against the active rules inside the relay's
transaction, so a rule's actions, its ``RuleRun`` row and the events being marked dispatched
commit together. That makes a run happen once per (rule, event): a relay that dies before its
commit runs the batch again from scratch, two nodes never hold the relay lock at once, and the
unique key of ``rule_runs`` refuses a second row anyway. Events a rule's actions emit are
recorded in ``rule_caused_events`` and never trigger rules: a rule can't feed itself (or
another rule) in a loop. Each action runs in a savepoint; the first refusal stops the run and
is logged with what was done before it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.admin.changes import _changed
from omni.domain.admin.checks import (
    ADMIN,
    AUDITOR,
    Checker,
    _audit,
    _boolean,
    _clean,
    _flush,
    _id_list,
    _integer,
    _iso,
    _mapping,
    _strings,
    _text,
    clamp_limit,
)
from omni.domain.auth import Principal, check_role
from omni.domain.automation import safe_regex
from omni.domain.automation.actions import ACTIONS, RULE, ActionContext, action_summary, check_actions
from omni.domain.errors import DomainError, InvalidInput, NotFound
from omni.domain.events import DomainEvent, recording

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trigger:
    event_type: str
    accepts: Callable[[DomainEvent], bool] = lambda e: True


TRIGGERS: dict[str, Trigger] = {
    "message_in": Trigger("message.created", lambda e: e.payload.get("direction") == "in"),
    "queued": Trigger("conversation.queued"),
    "assigned": Trigger("conversation.accepted"),
    "closed": Trigger("conversation.closed"),
    "sla_breached": Trigger("sla.breached"),
}
"""What a rule can start on; another feature's event plugs in with ``register_trigger``."""


def register_trigger(name: str, trigger: Trigger) -> None:
    TRIGGERS[name] = trigger


_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _hhmm(field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not _HHMM.fullmatch(value):
        raise InvalidInput("{field} must be a time as HH:MM", field=field_name)
    return value


def _zone(field_name: str, value: Any) -> str:
    text: str = _text(64)(field_name, value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("{field}: unknown time zone '{zone}'", field=field_name, zone=text) from None
    return text


def _pattern(field_name: str, value: Any) -> str:
    text: str = _text(safe_regex.MAX_PATTERN)(field_name, value)
    try:
        re.compile(text)
    except re.error as exc:
        raise InvalidInput(
            "{field} is not a valid regular expression: {error}", field=field_name, error=str(exc)
        ) from None
    return text


def _time_of_day(field_name: str, value: Any) -> dict[str, Any]:
    return _clean(
        value, {"from": _hhmm, "to": _hhmm, "timezone": _zone}, ("from", "to"), prefix=f"{field_name}."
    )


def _contact_field(field_name: str, value: Any) -> dict[str, Any]:
    return _clean(
        value,
        {"key": _text(64), "value": _text(1000, allow_empty=True)},
        ("key", "value"),
        prefix=f"{field_name}.",
    )


_CONDITIONS: dict[str, Checker] = {
    "queue_ids": _id_list,
    "channels": _strings(32),
    "text_contains": _strings(200),
    "text_regex": _pattern,
    "contact_field": _contact_field,
    "time_of_day": _time_of_day,
}
_TEXT_CONDITIONS = ("text_contains", "text_regex")

_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "event": lambda f, v: v,  # checked against TRIGGERS below (it can grow at import time)
    "conditions": _mapping,
    "actions": lambda f, v: v,  # checked with the session (``check_actions``)
    "active": _boolean,
    "position": _integer(0, 10_000),
}


def rule_dict(row: m.AutomationRule) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "event": row.event,
        "conditions": row.conditions,
        "actions": row.actions,
        "active": row.active,
        "position": row.position,
        "created_at": _iso(row.created_at),
    }


def run_dict(row: m.RuleRun) -> dict[str, Any]:
    return {
        "id": row.id,
        "rule_id": row.rule_id,
        "event_id": row.event_id,
        "conversation_id": row.conversation_id,
        "state": row.state,
        "done": row.done,
        "error": row.error,
        "created_at": _iso(row.created_at),
    }


async def list_rules(session: AsyncSession, who: Principal, *, limit: int = 1000) -> list[m.AutomationRule]:
    check_role(who, ADMIN, AUDITOR)
    stmt = select(m.AutomationRule).order_by(m.AutomationRule.position, m.AutomationRule.id)
    return list(await session.scalars(stmt.limit(clamp_limit(limit))))


async def access_rule(session: AsyncSession, who: Principal, rule_id: int) -> m.AutomationRule:
    check_role(who, ADMIN, AUDITOR)
    row = await session.get(m.AutomationRule, rule_id)
    if row is None:
        raise NotFound("automation rule {rule_id} not found", rule_id=rule_id)
    return row


async def list_rule_runs(
    session: AsyncSession, who: Principal, *, rule_id: int | None = None, limit: int = 100
) -> list[m.RuleRun]:
    """The newest runs first: what each rule did, on which conversation, and where it stopped."""
    check_role(who, ADMIN, AUDITOR)
    stmt = select(m.RuleRun).order_by(m.RuleRun.id.desc()).limit(clamp_limit(limit))
    if rule_id is not None:
        stmt = stmt.where(m.RuleRun.rule_id == rule_id)
    return list(await session.scalars(stmt))


async def _save(
    session: AsyncSession, row: m.AutomationRule, data: Mapping[str, Any], required: tuple[str, ...]
) -> None:
    clean = _clean(data, _FIELDS, required)
    if "event" in clean and clean["event"] not in TRIGGERS:
        raise InvalidInput(
            "unknown event '{event}'; use one of: {events}",
            event=str(clean["event"]),
            events=", ".join(TRIGGERS),
            field="event",
        )
    if "conditions" in clean:
        clean["conditions"] = _clean(clean["conditions"], _CONDITIONS, prefix="conditions.")
    if "actions" in clean:
        clean["actions"] = await check_actions(session, clean["actions"], where=RULE)
    event = clean.get("event", row.event)
    conditions = clean.get("conditions", row.conditions or {})
    for key in _TEXT_CONDITIONS:
        if key in conditions and event != "message_in":
            raise InvalidInput("a text condition needs the event 'message_in'", field=f"conditions.{key}")
    for key, value in clean.items():
        setattr(row, key, value)


async def check_create_rule(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.AutomationRule:
    check_role(who, ADMIN)
    row = m.AutomationRule(name="", event="", conditions={}, actions=[], active=True, position=0)
    await _save(session, row, data, ("name", "event", "actions"))
    session.add(row)
    await _flush(session)
    _audit(session, who, "automation_rule.create", "automation_rule", row.id, data)
    _changed(session, "automation_rule", row.id, "created")
    return row


async def check_update_rule(
    session: AsyncSession, who: Principal, rule_id: int, data: Mapping[str, Any]
) -> m.AutomationRule:
    check_role(who, ADMIN)
    row = await access_rule(session, who, rule_id)
    await _save(session, row, data, ())
    await _flush(session)
    _audit(session, who, "automation_rule.update", "automation_rule", row.id, data)
    _changed(session, "automation_rule", row.id, "updated")
    return row


async def check_delete_rule(session: AsyncSession, who: Principal, rule_id: int) -> None:
    check_role(who, ADMIN)
    row = await access_rule(session, who, rule_id)
    await session.delete(row)
    await _flush(session)
    _audit(session, who, "automation_rule.delete", "automation_rule", rule_id, {"name": row.name})
    _changed(session, "automation_rule", rule_id, "deleted")


# --- matching ------------------------------------------------------------------------------


async def matches(
    session: AsyncSession, rule: m.AutomationRule, event: DomainEvent, conv: m.Conversation
) -> bool:
    """Every condition given must hold (an empty set of conditions always does)."""
    cond: Mapping[str, Any] = rule.conditions or {}
    if cond.get("queue_ids") and conv.queue_id not in cond["queue_ids"]:
        return False
    if cond.get("channels") and conv.channel not in cond["channels"]:
        return False
    text = str(event.payload.get("body") or "")
    if cond.get("text_contains"):
        lowered = text.casefold()
        if not any(word.casefold() in lowered for word in cond["text_contains"]):
            return False
    if cond.get("time_of_day"):
        tod = cond["time_of_day"]
        local = event.created_at.astimezone(ZoneInfo(tod.get("timezone") or "UTC")).time()
        start, end = time.fromisoformat(tod["from"]), time.fromisoformat(tod["to"])
        inside = start <= local < end if start <= end else (local >= start or local < end)
        if not inside:
            return False
    if cond.get("contact_field"):
        want = cond["contact_field"]
        contact = await session.get(m.Contact, conv.contact_id)
        if contact is None:
            return False
        builtin = {"name": contact.name, "email": contact.email, "phone": contact.phone}
        have = (
            builtin[want["key"]] if want["key"] in builtin else (contact.custom_fields or {}).get(want["key"])
        )
        if str(have if have is not None else "") != want["value"]:
            return False
    if cond.get("text_regex"):
        try:
            return await safe_regex.search(cond["text_regex"], text)
        except safe_regex.RegexTimeout:
            log.warning(
                "automation rule %s: pattern ran out of time on event %s; no match", rule.id, event.id
            )
            return False
    return True


# --- the relay sink ------------------------------------------------------------------------


@dataclass
class RuleRunner:
    """The relay's transaction sink (see the module docstring). ``enqueue`` sends the webhook
    deliveries a run created, after the relay's commit (as the webhook fan-out does)."""

    enqueue: Callable[[list[int]], None]
    probe: ClassVar[ColumnElement[bool]] = exists().where(m.AutomationRule.active.is_(True))
    """Read by the relay with each batch (``omni.domain.events.probed``): with no active rule
    the runner is skipped without a statement; a rule saved on any node is in the snapshot of
    the next batch read after its commit."""

    async def __call__(
        self, session: AsyncSession, events: Sequence[DomainEvent]
    ) -> Callable[[], None] | None:
        by_type: dict[str, list[str]] = {}
        for name, trigger in TRIGGERS.items():
            by_type.setdefault(trigger.event_type, []).append(name)
        relevant = [e for e in events if e.type in by_type and e.conversation_id is not None]
        if not relevant:
            return None
        rules = list(
            await session.scalars(
                select(m.AutomationRule)
                .where(m.AutomationRule.active.is_(True))
                .order_by(m.AutomationRule.position, m.AutomationRule.id)
            )
        )
        if not rules:
            return None
        caused = set(
            await session.scalars(
                select(m.RuleCausedEvent.event_id).where(
                    m.RuleCausedEvent.event_id.in_([e.id for e in relevant])
                )
            )
        )
        deliveries: list[int] = []
        for event in relevant:
            if event.id in caused:
                continue
            names = by_type[event.type]
            for rule in rules:
                if rule.event in names and TRIGGERS[rule.event].accepts(event):
                    deliveries.extend(await self._run(session, rule, event))
        if not deliveries:
            return None
        return lambda: self.enqueue(deliveries)

    async def _run(self, session: AsyncSession, rule: m.AutomationRule, event: DomainEvent) -> list[int]:
        assert event.conversation_id is not None
        conv = await session.scalar(
            select(m.Conversation).where(m.Conversation.id == event.conversation_id).with_for_update()
        )
        if conv is None or not await matches(session, rule, event, conv):
            return []
        if (
            await session.scalar(
                select(m.RuleRun.id).where(m.RuleRun.rule_id == rule.id, m.RuleRun.event_id == event.id)
            )
            is not None
        ):
            return []
        run = m.RuleRun(
            rule_id=rule.id, event_id=event.id, conversation_id=conv.id, state="done", done=[], error=""
        )
        try:
            async with session.begin_nested():
                session.add(run)
                await session.flush()
        except IntegrityError:  # another relay pass got here first: its run stands
            return []
        ctx = ActionContext(session, conv, None, event=event)
        done: list[str] = []
        with recording(session) as emitted:
            for action in rule.actions or []:
                spec = ACTIONS.get(str(action.get("kind")))
                try:
                    if spec is None:
                        raise InvalidInput("this kind of action is not available any more", field="actions")
                    async with session.begin_nested():
                        await spec.run(ctx, action)
                except DomainError as exc:
                    run.state = "failed"
                    run.error = f"{action_summary(action)}: {exc.message}"[:1000]
                    break
                done.append(action_summary(action))
        run.done = done
        await session.flush()
        for row in emitted:
            if row.id is not None:
                session.add(m.RuleCausedEvent(event_id=row.id, rule_run_id=run.id))
        await session.flush()
        return ctx.deliveries
