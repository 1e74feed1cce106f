"""Campaigns: their settings, caller-ID pool, result-code actions and the state machine.

One set of rules for every transport (REST, the admin pages, the engine's tick): admins create,
edit and delete; supervisors start, pause and finish campaigns of the queues in their scope;
operators read the campaigns they work. Input is a plain dict of the fields the caller gave
(create and partial update alike); all of it is checked, references included, before a row is
touched, and every change writes an audit record in the caller's transaction, so a refused
request stores nothing.

States: ``draft → running ↔ paused → finished`` (``finished`` is final). A campaign runs only
when someone can work it (members of its queue or named operators) and, for voice, it has an
inbox to call from; one past its end date (in its own zone) is finished by
``do_finish_expired``, which the engine's tick calls. Each change of state is audited and emitted
as ``campaign.state_changed``. Editing a running campaign is allowed (its schedule, retry rules,
pool…) and audited with the difference; only drafts can be deleted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.outbound import CampaignChannel, CampaignState, DialMode, ResultAction
from omni.domain import audit, grants
from omni.domain.admin.checks import (
    _ID,
    _OPTIONAL_ID,
    ADMIN,
    AUDITOR,
    OPERATOR,
    SUPERVISOR,
    Checker,
    _boolean,
    _choice,
    _clean,
    _decimal,
    _ensure_unique,
    _flush,
    _id_list,
    _integer,
    _items,
    _masked,
    _new,
    _referenced,
    _text,
    clamp_limit,
)
from omni.domain.auth import Principal, check_role, visible_queue_ids
from omni.domain.calendars import check_calendar_ids
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.events import emit
from omni.domain.outbound import numbers, retry, windows
from omni.i18n import Label, _l

__all__ = [
    "ACTIVE_MODES",
    "MACHINE_ACTIONS",
    "PREDIAL_POLICIES",
    "TRANSITIONS",
    "access_campaign",
    "campaign_detail",
    "campaign_dict",
    "check_create_campaign",
    "check_delete_campaign",
    "check_set_result_codes",
    "check_set_state",
    "check_update_campaign",
    "do_finish_expired",
    "do_set_state",
    "list_campaigns",
    "result_code_dicts",
]

S = CampaignState

ACTIVE_MODES = (DialMode.PREVIEW, DialMode.PROGRESSIVE, DialMode.PREDICTIVE, DialMode.AGENTLESS)
"""Dial modes this install places."""

MACHINE_ACTIONS = ("retry", "message")
"""What an answering machine gets (``Campaign.machine_action``)."""

PREDIAL_POLICIES = ("call", "skip", "later")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.DRAFT: (S.RUNNING,),
    S.RUNNING: (S.PAUSED, S.FINISHED),
    S.PAUSED: (S.RUNNING, S.FINISHED),
    S.FINISHED: (),
}
"""Which state may follow which; anything else is a ``Conflict``."""

MAX_RETRY_MINUTES = 60 * 24 * 366
_REGION = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")


# --- field checkers -----------------------------------------------------------------------


def _dial_mode(field: str, value: Any) -> str:
    result: str = _choice(ACTIVE_MODES)(field, value)
    return result


def _zone(field: str, value: Any) -> str:
    return numbers.check_zone(_text(64)(field, value), field=field)


def _region(field: str, value: Any) -> str:
    text: str = _text(2)(field, value)
    if text.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput("'{region}' is not a country code like RU", region=text, field=field)
    return text.upper()


def _schedule(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput("the schedule must map weekdays to time ranges", field=field)
    windows.parse_windows(value)
    return {day: [list(pair) for pair in value[day]] for day in sorted(value)}


def _holidays(field: str, value: Any) -> list[str]:
    _schedule_doc, days = windows.check_schedule({}, value)
    return days


def _day(field: str, value: Any) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput("'{value}' is not a date (YYYY-MM-DD)", value=str(value), field=field)
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput("'{value}' is not a date (YYYY-MM-DD)", value=value, field=field) from exc


def _retry_rules(field: str, value: Any) -> dict[str, list[int]]:
    return retry.check_retry_rules(value)


def _predial_url(field: str, value: Any) -> str:
    text: str = _text(512, allow_empty=True)(field, value)
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(ch.isspace() for ch in text):
        raise InvalidInput("'{url}' is not an http:// or https:// address", url=text, field=field)
    return text


_ESCALATION_KEYS = {"unread_minutes", "unanswered_minutes", "campaign_id"}


def _escalation(field: str, value: Any) -> dict[str, Any] | None:
    """``{"unread_minutes": 30, "campaign_id": 7}`` (or ``unanswered_minutes``): the shape only;
    the Telegram broadcast acts on it."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInput("{field} must be null or an object", field=field)
    unknown = sorted(set(value) - _ESCALATION_KEYS)
    if unknown:
        raise InvalidInput("unknown {field} keys: {keys}", keys=", ".join(unknown), field=field)
    out: dict[str, Any] = {"campaign_id": _ID(f"{field}.campaign_id", value.get("campaign_id"))}
    minutes = [k for k in ("unread_minutes", "unanswered_minutes") if k in value]
    if not minutes:
        raise InvalidInput(
            "{field} needs unread_minutes or unanswered_minutes: after how long to call", field=field
        )
    for key in minutes:
        out[key] = _integer(1, 60 * 24 * 7)(f"{field}.{key}", value[key])
    return out


_CALLER_ID: dict[str, Checker] = {
    "number": _text(32),
    "region": _text(8, allow_empty=True),
    "active": _boolean,
}


def _caller_ids(field: str, value: Any) -> list[dict[str, Any]]:
    """E.164 numbers (written any way ``phonenumbers`` reads with the region's prefix), each
    with an optional region (``RU``, ``RU-MOW``); a number listed twice is refused."""
    items = _items(field, value, _CALLER_ID, ("number",))
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        try:
            number = numbers.parse_number(item["number"], "RU")
        except InvalidInput as exc:
            exc.field = f"{where}.number"
            raise
        if number.e164 in seen:
            raise InvalidInput("{number} is listed twice", number=number.e164, field=f"{where}.number")
        seen.add(number.e164)
        region = item.get("region", "").upper()
        if region and not _REGION.fullmatch(region):
            raise InvalidInput(
                "'{region}' is not a region like RU or RU-MOW", region=region, field=f"{where}.region"
            )
        out.append({"number": number.e164, "region": region, "active": item.get("active", True)})
    return out


_RESULT_CODE: dict[str, Checker] = {
    "result_code_id": _ID,
    "action": _choice(ResultAction),
    "retry_minutes": lambda f, v: None if v is None else _integer(1, MAX_RETRY_MINUTES)(f, v),
    "global_dnc": _boolean,
}


def _result_codes(field: str, value: Any) -> list[dict[str, Any]]:
    items = _items(field, value, _RESULT_CODE, ("result_code_id", "action"))
    seen: set[int] = set()
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if item["result_code_id"] in seen:
            raise InvalidInput(
                "result code {code} is listed twice",
                code=item["result_code_id"],
                field=f"{where}.result_code_id",
            )
        seen.add(item["result_code_id"])
        action = item["action"]
        minutes = item.get("retry_minutes")
        if action == ResultAction.RETRY and minutes is None:
            raise InvalidInput("the retry action needs retry_minutes", field=f"{where}.retry_minutes")
        if action != ResultAction.RETRY and minutes is not None:
            raise InvalidInput("retry_minutes is for the retry action only", field=f"{where}.retry_minutes")
        if item.get("global_dnc") and action != ResultAction.DNC:
            raise InvalidInput("global_dnc is for the dnc action only", field=f"{where}.global_dnc")
        item.setdefault("retry_minutes", None)
        item.setdefault("global_dnc", False)
    return items


_FIELDS: dict[str, Checker] = {
    "name": _text(128),
    "queue_id": _ID,
    "operator_ids": _id_list,
    "channel": _choice(CampaignChannel),
    "dial_mode": _dial_mode,
    "inbox_id": _OPTIONAL_ID,
    "priority": _integer(0, 1000),
    "timezone": _zone,
    "default_region": _region,
    "schedule": _schedule,
    "holidays": _holidays,
    "calendar_ids": _id_list,
    "starts_on": _day,
    "ends_on": _day,
    "max_attempts": _integer(1, 100),
    "retry_rules": _retry_rules,
    "max_concurrency": _integer(1, 10000),
    "preview_seconds": _integer(5, 3600),
    "preview_auto_dial": _boolean,
    "ring_seconds": _integer(5, 300),
    "script": _text(20000, allow_empty=True, strip=False),
    "message_template": _text(4096, allow_empty=True, strip=False),
    "escalation": _escalation,
    "predial_url": _predial_url,
    "predial_timeout_ms": _integer(100, 10000),
    "predial_on_timeout": _choice(PREDIAL_POLICIES),
    "inbound_priority": _boolean,
    "target_abandon_pct": _decimal(0.0, 50.0),
    "max_lines_per_operator": _decimal(1.0, 10.0),
    "drop_seconds": _integer(1, 30),
    "drop_prompt_id": _OPTIONAL_ID,
    "drop_text": _text(2000, allow_empty=True),
    "amd_enabled": _boolean,
    "machine_action": _choice(MACHINE_ACTIONS),
    "machine_prompt_id": _OPTIONAL_ID,
    "machine_text": _text(2000, allow_empty=True),
    "scenario": _text(64, allow_empty=True),
    "caller_ids": _caller_ids,
    "result_codes": _result_codes,
}
"""Every field a campaign body may carry; ``state`` changes only through ``check_set_state``."""

_RELATED = ("operator_ids", "caller_ids", "result_codes")
"""Fields stored in rows of their own rather than columns of ``campaigns``."""

_DRAFT_ONLY = ("channel",)
"""What can't change once a campaign has run: its attempts and targets were made for it."""


# --- reading ------------------------------------------------------------------------------


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def campaign_dict(c: m.Campaign) -> dict[str, Any]:
    """The campaign's own columns, JSON-ready (what events, the API and the engine read)."""
    return {
        "id": c.id,
        "name": c.name,
        "state": c.state,
        "channel": c.channel,
        "dial_mode": c.dial_mode,
        "queue_id": c.queue_id,
        "inbox_id": c.inbox_id,
        "priority": c.priority,
        "timezone": c.timezone,
        "default_region": c.default_region,
        "schedule": dict(c.schedule or {}),
        "holidays": list(c.holidays or []),
        "calendar_ids": list(c.calendar_ids or []),
        "starts_on": _iso(c.starts_on),
        "ends_on": _iso(c.ends_on),
        "max_attempts": c.max_attempts,
        "retry_rules": dict(c.retry_rules or {}),
        "max_concurrency": c.max_concurrency,
        "preview_seconds": c.preview_seconds,
        "preview_auto_dial": c.preview_auto_dial,
        "ring_seconds": c.ring_seconds,
        "script": c.script,
        "message_template": c.message_template,
        "escalation": dict(c.escalation) if c.escalation else None,
        "predial_url": c.predial_url,
        "predial_timeout_ms": c.predial_timeout_ms,
        "predial_on_timeout": c.predial_on_timeout,
        "inbound_priority": c.inbound_priority,
        "target_abandon_pct": c.target_abandon_pct,
        "max_lines_per_operator": c.max_lines_per_operator,
        "drop_seconds": c.drop_seconds,
        "drop_prompt_id": c.drop_prompt_id,
        "drop_text": c.drop_text,
        "amd_enabled": c.amd_enabled,
        "machine_action": c.machine_action,
        "machine_prompt_id": c.machine_prompt_id,
        "machine_text": c.machine_text,
        "scenario": c.scenario,
        "created_by": c.created_by,
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
        "started_at": _iso(c.started_at),
        "finished_at": _iso(c.finished_at),
    }


async def result_code_dicts(session: AsyncSession, campaign_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(m.CampaignResultCode, m.ResultCode)
        .join(m.ResultCode, m.ResultCode.id == m.CampaignResultCode.result_code_id)
        .where(m.CampaignResultCode.campaign_id == campaign_id)
        .order_by(m.ResultCode.id)
    )
    return [
        {
            "result_code_id": rc.result_code_id,
            "code": code.code,
            "name": code.name,
            "action": rc.action,
            "retry_minutes": rc.retry_minutes,
            "global_dnc": rc.global_dnc,
        }
        for rc, code in rows.all()
    ]


async def campaign_detail(session: AsyncSession, c: m.Campaign) -> dict[str, Any]:
    """The campaign with its named operators, caller-ID pool and result-code actions."""
    body = campaign_dict(c)
    body["operator_ids"] = list(
        await session.scalars(
            select(m.CampaignOperator.user_id)
            .where(m.CampaignOperator.campaign_id == c.id)
            .order_by(m.CampaignOperator.user_id)
        )
    )
    body["caller_ids"] = [
        {"number": r.number, "region": r.region, "active": r.active, "last_used_at": _iso(r.last_used_at)}
        for r in await session.scalars(
            select(m.CampaignCallerId)
            .where(m.CampaignCallerId.campaign_id == c.id)
            .order_by(m.CampaignCallerId.id)
        )
    ]
    body["result_codes"] = await result_code_dicts(session, c.id)
    return body


async def _scope_filter(session: AsyncSession, who: Principal) -> list[Any]:
    """SQL conditions for the campaigns the caller may read: admins all, supervisors those of
    the queues in their scope, operators those they work (queue member or named)."""
    if who.role == AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")
    queues = await visible_queue_ids(session, who)
    if queues is None:
        return []
    if who.role == OPERATOR:
        named = select(m.CampaignOperator.campaign_id).where(m.CampaignOperator.user_id == who.id)
        return [or_(m.Campaign.queue_id.in_(queues), m.Campaign.id.in_(named))]
    return [m.Campaign.queue_id.in_(queues)]


async def list_campaigns(
    session: AsyncSession,
    who: Principal,
    *,
    state: str | None = None,
    channel: str | None = None,
    limit: int = 1000,
) -> list[m.Campaign]:
    stmt = select(m.Campaign).where(*await _scope_filter(session, who))
    if state:
        stmt = stmt.where(m.Campaign.state == _choice(CampaignState)("state", state))
    if channel:
        stmt = stmt.where(m.Campaign.channel == _choice(CampaignChannel)("channel", channel))
    stmt = stmt.order_by(m.Campaign.priority.desc(), m.Campaign.id).limit(clamp_limit(limit))
    return list(await session.scalars(stmt))


async def access_campaign(
    session: AsyncSession, who: Principal, campaign_id: int, *, for_update: bool = False
) -> m.Campaign:
    """A campaign the caller may read, or ``NotFound`` (out of scope reads as missing)."""
    stmt = select(m.Campaign).where(m.Campaign.id == campaign_id, *await _scope_filter(session, who))
    if for_update:
        stmt = stmt.with_for_update()
    campaign = await session.scalar(stmt)
    if campaign is None:
        raise NotFound("campaign {campaign_id} not found", campaign_id=campaign_id)
    return campaign


# --- checks over the whole row ------------------------------------------------------------


def _local_today(c: m.Campaign, now: datetime) -> date:
    return now.astimezone(ZoneInfo(c.timezone)).date()


async def _check_references(
    session: AsyncSession, clean: Mapping[str, Any], c: m.Campaign, own_id: int | None
) -> None:
    """Uniqueness, references and rules across fields, on the row as it would be."""
    if "name" in clean:
        await _ensure_unique(
            session,
            m.Campaign.name,
            m.Campaign.id,
            clean["name"],
            own_id=own_id,
            field="name",
            message=_l("a campaign named '{value}' already exists"),
        )
    if "queue_id" in clean:
        await _referenced(session, m.Queue, clean["queue_id"], "queue_id", "queue")
    if clean.get("calendar_ids"):
        await check_calendar_ids(session, clean["calendar_ids"], "calendar_ids")
    channel = clean.get("channel", c.channel)
    inbox_id = clean.get("inbox_id", c.inbox_id)
    if inbox_id is not None and ("inbox_id" in clean or "channel" in clean):
        inbox = await _referenced(session, m.Inbox, inbox_id, "inbox_id", "inbox")
        assert inbox is not None
        if inbox.channel != channel:
            raise InvalidInput(
                "inbox '{inbox}' is a {inbox_channel} inbox; this campaign places from a {channel} inbox",
                inbox=inbox.name,
                inbox_channel=Label("channel", inbox.channel),
                channel=Label("channel", channel),
                field="inbox_id",
            )
    for i, uid in enumerate(clean.get("operator_ids", [])):
        user = await _referenced(session, m.User, uid, f"operator_ids[{i}]", "user")
        assert user is not None
        if user.role != OPERATOR or not user.is_active:
            raise InvalidInput(
                "user '{username}' is not an active operator",
                username=user.username,
                field=f"operator_ids[{i}]",
            )
    for i, item in enumerate(clean.get("result_codes", [])):
        field = f"result_codes[{i}].result_code_id"
        code = await _referenced(session, m.ResultCode, item["result_code_id"], field, "result code")
        assert code is not None
        if not code.active:
            raise InvalidInput("result code '{code}' is inactive", code=code.code, field=field)
    escalation = clean.get("escalation")
    if escalation:
        target = await session.get(m.Campaign, escalation["campaign_id"])
        if target is None or target.id == own_id:
            raise InvalidInput(
                "escalation needs another campaign to place the call in", field="escalation.campaign_id"
            )
        if target.channel != CampaignChannel.VOICE:
            raise InvalidInput(
                "escalation places a call: campaign '{name}' is not a voice campaign",
                name=target.name,
                field="escalation.campaign_id",
            )
    for key in ("drop_prompt_id", "machine_prompt_id"):
        if clean.get(key) is not None:
            await _referenced(session, m.Prompt, clean[key], key, "prompt")
    starts = clean.get("starts_on", c.starts_on)
    ends = clean.get("ends_on", c.ends_on)
    if starts is not None and ends is not None and ends < starts:
        raise InvalidInput("the end date is before the start date", field="ends_on")


_NOT_READY = {
    "operators": _l("nobody works this campaign: add operators to its queue or name them"),
    "inbox": _l("a voice campaign needs an inbox to call from"),
    "inbox_off": _l("the campaign's inbox '{inbox}' is switched off"),
    "template": _l("a Telegram campaign needs a message template"),
    "ended": _l("the campaign ended on {ends_on}"),
    "scenario": _l("an agentless campaign needs a published voice scenario to play"),
    "scenario_unpublished": _l("scenario '{scenario}' is not published"),
    "scenario_voice": _l("scenario '{scenario}' can't run on a call: {problem}"),
    "agentless_voice": _l("agentless campaigns call by phone: pick the voice channel"),
}


async def _agentless_not_ready(
    session: AsyncSession, c: m.Campaign
) -> tuple[str, str, dict[str, Any]] | None:
    """Agentless needs no operators, but a published scenario that can run on a call."""
    from bots.checks import check
    from bots.scenario import ScenarioFormatError, load

    if c.channel != CampaignChannel.VOICE:
        return _NOT_READY["agentless_voice"], "channel", {}
    if not c.scenario:
        return _NOT_READY["scenario"], "scenario", {}
    row = await session.scalar(select(m.Scenario).where(m.Scenario.key == c.scenario))
    revision = (
        await session.get(m.ScenarioRevision, row.active_revision_id)
        if row and row.active_revision_id
        else None
    )
    if revision is None:
        return _NOT_READY["scenario_unpublished"], "scenario", {"scenario": c.scenario}
    try:
        problems = [p for p in check(load(revision.document), "voice") if p.code == "channel"]
    except ScenarioFormatError as exc:
        problems = list(exc.problems)
    if problems:
        return _NOT_READY["scenario_voice"], "scenario", {"scenario": c.scenario, "problem": str(problems[0])}
    return None


async def _not_ready(
    session: AsyncSession, c: m.Campaign, now: datetime
) -> tuple[str, str, dict[str, Any]] | None:
    """Why the campaign can't run as it is (message, field, params), or ``None``."""
    if c.dial_mode == DialMode.AGENTLESS and (problem := await _agentless_not_ready(session, c)):
        return problem
    named = await session.scalar(
        select(func.count())
        .select_from(m.CampaignOperator)
        .join(m.User, m.User.id == m.CampaignOperator.user_id)
        .where(m.CampaignOperator.campaign_id == c.id, m.User.is_active.is_(True))
    )
    members = await session.scalar(
        select(func.count())
        .select_from(m.QueueMember)
        .join(m.User, m.User.id == m.QueueMember.user_id)
        .where(m.QueueMember.queue_id == c.queue_id, m.User.is_active.is_(True), m.User.role == OPERATOR)
    )
    if not named and not members and c.dial_mode != DialMode.AGENTLESS:
        return _NOT_READY["operators"], "operator_ids", {}
    if c.channel == CampaignChannel.VOICE:
        if c.inbox_id is None:
            return _NOT_READY["inbox"], "inbox_id", {}
        inbox = await session.get(m.Inbox, c.inbox_id)
        if inbox is None:
            return _NOT_READY["inbox"], "inbox_id", {}
        if not inbox.active:
            return _NOT_READY["inbox_off"], "inbox_id", {"inbox": inbox.name}
    if c.channel == CampaignChannel.TELEGRAM and not c.message_template.strip():
        return _NOT_READY["template"], "message_template", {}
    if c.ends_on is not None and _local_today(c, now) > c.ends_on:
        return _NOT_READY["ended"], "ends_on", {"ends_on": c.ends_on.isoformat()}
    return None


# --- writing ------------------------------------------------------------------------------


def _audit(
    session: AsyncSession, who: Principal | None, action: str, c: m.Campaign, data: Mapping[str, Any]
) -> None:
    audit.record(session, who, action, object_type="campaign", object_id=c.id, data=_masked(dict(data)))


def _columns_of(clean: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in clean.items() if k not in _RELATED}


async def _store_related(session: AsyncSession, c: m.Campaign, clean: Mapping[str, Any]) -> None:
    """Replace the named operators, caller IDs and result-code actions that were given.

    Caller IDs kept in the pool keep their ``last_used_at``: rotation goes on where it was."""
    if "operator_ids" in clean:
        await session.execute(delete(m.CampaignOperator).where(m.CampaignOperator.campaign_id == c.id))
        session.add_all(m.CampaignOperator(campaign_id=c.id, user_id=uid) for uid in clean["operator_ids"])
    if "caller_ids" in clean:
        existing = {
            r.number: r
            for r in await session.scalars(
                select(m.CampaignCallerId).where(m.CampaignCallerId.campaign_id == c.id)
            )
        }
        wanted = {item["number"]: item for item in clean["caller_ids"]}
        for number, row in existing.items():
            if number not in wanted:
                await session.delete(row)
        for number, item in wanted.items():
            kept = existing.get(number)
            if kept is None:
                session.add(m.CampaignCallerId(campaign_id=c.id, **item))
            else:
                kept.region, kept.active = item["region"], item["active"]
    if "result_codes" in clean:
        await session.execute(delete(m.CampaignResultCode).where(m.CampaignResultCode.campaign_id == c.id))
        session.add_all(m.CampaignResultCode(campaign_id=c.id, **item) for item in clean["result_codes"])
    await _flush(session)


def _comparable(detail: Mapping[str, Any]) -> dict[str, Any]:
    body = dict(detail)
    for key in ("updated_at", "created_at", "started_at", "finished_at", "state"):
        body.pop(key, None)
    body["caller_ids"] = [
        {k: v for k, v in r.items() if k != "last_used_at"} for r in body.get("caller_ids", [])
    ]
    body["result_codes"] = [
        {k: r[k] for k in ("result_code_id", "action", "retry_minutes", "global_dnc")}
        for r in body.get("result_codes", [])
    ]
    return body


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"from": old, "to": new}}`` for every field that changed."""
    a, b = _comparable(before), _comparable(after)
    return {k: {"from": a.get(k), "to": b[k]} for k in b if a.get(k) != b[k]}


async def check_create_campaign(session: AsyncSession, who: Principal, data: Mapping[str, Any]) -> m.Campaign:
    """A new campaign in ``draft``; retry rules default to ``retry.DEFAULT_RETRY_RULES``."""
    check_role(who, ADMIN)
    clean = _clean(data, _FIELDS, ("name", "queue_id"))
    campaign = _new(m.Campaign)
    campaign.retry_rules = {k: list(v) for k, v in retry.DEFAULT_RETRY_RULES.items()}
    campaign.schedule = {}
    campaign.holidays = []
    campaign.calendar_ids = []
    await _check_references(session, clean, campaign, None)
    for name, value in _columns_of(clean).items():
        setattr(campaign, name, value)
    campaign.state = S.DRAFT
    campaign.created_by = who.id
    session.add(campaign)
    await _flush(session)
    await _store_related(session, campaign, clean)
    _audit(session, who, "campaign.create", campaign, data)
    return campaign


async def check_update_campaign(
    session: AsyncSession, who: Principal, campaign_id: int, data: Mapping[str, Any]
) -> m.Campaign:
    """Any field of a draft; of a running or paused campaign all but the channel (audited
    with the difference); a finished campaign is final."""
    check_role(who, ADMIN)
    campaign = await access_campaign(session, who, campaign_id, for_update=True)
    clean = _clean(data, _FIELDS)
    if campaign.state == S.FINISHED:
        raise Conflict("campaign '{name}' is finished and can't be changed", name=campaign.name)
    if campaign.state != S.DRAFT:
        for name in _DRAFT_ONLY:
            if name in clean and clean[name] != getattr(campaign, name):
                raise InvalidInput("{field} can't change once the campaign has started", field=name)
    await _check_references(session, clean, campaign, campaign.id)
    before = await campaign_detail(session, campaign)
    for name, value in _columns_of(clean).items():
        setattr(campaign, name, value)
    campaign.updated_at = datetime.now(UTC)
    await _flush(session)
    await _store_related(session, campaign, clean)
    if campaign.state == S.RUNNING:
        problem = await _not_ready(session, campaign, datetime.now(UTC))
        if problem is not None:
            message, field, params = problem
            raise InvalidInput(message, field=field, **params)
    changes = _diff(before, await campaign_detail(session, campaign))
    _audit(session, who, "campaign.update", campaign, {"state": campaign.state, "changes": changes})
    return campaign


async def check_set_result_codes(
    session: AsyncSession, who: Principal, campaign_id: int, data: Mapping[str, Any]
) -> m.Campaign:
    """Replace the campaign's result codes and their actions (``{"result_codes": [...]}``)."""
    clean = _clean(data, {"result_codes": _result_codes}, ("result_codes",))
    return await check_update_campaign(session, who, campaign_id, clean)


async def check_delete_campaign(session: AsyncSession, who: Principal, campaign_id: int) -> None:
    """Drafts only: a campaign that has run keeps its attempts for reports."""
    check_role(who, ADMIN)
    campaign = await access_campaign(session, who, campaign_id, for_update=True)
    if campaign.state != S.DRAFT:
        raise Conflict(
            "campaign '{name}' is {state}; only drafts can be deleted (finish it instead)",
            name=campaign.name,
            state=Label("campaign_state", campaign.state),
        )
    _audit(session, who, "campaign.delete", campaign, {"name": campaign.name})
    await session.delete(campaign)
    await _flush(session)


async def do_set_state(
    session: AsyncSession, campaign: m.Campaign, state: str, who: Principal | None, now: datetime
) -> m.Campaign:
    """Move the campaign to ``state`` (a legal transition, checked by the caller), audit it and
    emit ``campaign.state_changed`` (``user_id`` ``None``: the system, e.g. its end date)."""
    previous = campaign.state
    campaign.state = state
    campaign.updated_at = now
    if state == S.RUNNING and campaign.started_at is None:
        campaign.started_at = now
    if state == S.FINISHED:
        campaign.finished_at = now
    await _flush(session)
    _audit(session, who, "campaign.state", campaign, {"from": previous, "to": state})
    emit(
        session,
        "campaign.state_changed",
        {
            "id": campaign.id,
            "name": campaign.name,
            "state": state,
            "previous_state": previous,
            "user_id": who.id if who else None,
        },
        queue_id=campaign.queue_id,
        user_id=who.id if who else None,
    )
    return campaign


async def check_set_state(
    session: AsyncSession, who: Principal, campaign_id: int, state: CampaignState
) -> m.Campaign:
    """Start, pause, resume or finish: admins any campaign, supervisors those of the queues in
    their scope. An illegal transition (or one to the same state) is a ``Conflict``; starting
    one that can't run says why."""
    check_role(who, ADMIN, SUPERVISOR)
    await grants.check(session, who, grants.CAMPAIGN_MANAGE)
    wanted = _choice(CampaignState)("state", state)
    campaign = await access_campaign(session, who, campaign_id, for_update=True)
    if wanted not in TRANSITIONS[campaign.state]:
        if campaign.state == S.FINISHED:
            raise Conflict("campaign '{name}' is finished; that is final", name=campaign.name, field="state")
        raise Conflict(
            "campaign '{name}' is {state}: it can't become {wanted}",
            name=campaign.name,
            state=Label("campaign_state", campaign.state),
            wanted=Label("campaign_state", wanted),
            field="state",
        )
    now = datetime.now(UTC)
    if wanted == S.RUNNING:
        problem = await _not_ready(session, campaign, now)
        if problem is not None:
            message, field, params = problem
            raise Conflict(message, field=field, **params)
    return await do_set_state(session, campaign, wanted, who, now)


async def do_finish_expired(session: AsyncSession, now: datetime) -> int:
    """Finish running and paused campaigns whose end date has passed in their own zone (the
    engine's tick calls this); returns how many were finished."""
    # A zone is at most a day ahead of UTC, so the local date is past ``ends_on`` only if the
    # UTC date has at least reached it: the index-friendly prefilter, then the exact check.
    candidates = await session.scalars(
        select(m.Campaign)
        .where(
            m.Campaign.state.in_((S.RUNNING, S.PAUSED)),
            m.Campaign.ends_on.is_not(None),
            m.Campaign.ends_on <= now.astimezone(UTC).date(),
        )
        .with_for_update(skip_locked=True)
    )
    finished = 0
    for campaign in candidates.all():
        assert campaign.ends_on is not None
        if _local_today(campaign, now) > campaign.ends_on:
            await do_set_state(session, campaign, S.FINISHED, None, now)
            finished += 1
    return finished
