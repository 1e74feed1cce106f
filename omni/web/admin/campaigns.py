"""Admin section for outbound campaigns: the list, the form, start / pause / finish buttons.

The form turns its inputs into the body ``omni.domain.outbound.campaigns`` takes (the REST API's
body): a weekday window editor (one line of ``09:00-13:00, 14:00-21:00`` per weekday) posts the
``schedule`` document, retry rules are ``15;60;1440`` per outcome, the caller-ID pool is one
number a line, result codes are a table of actions. Admins edit; supervisors of the campaign's
queue see it and start, pause or finish it (the domain checks both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.outbound import CampaignChannel, CampaignState, ResultAction
from omni.domain import admin, calendars
from omni.domain.errors import InvalidInput, NotFound
from omni.domain.outbound import campaigns
from omni.domain.outbound.retry import DEFAULT_RETRY_RULES, RETRYABLE
from omni.web.admin.forms import (
    ADMIN,
    LIMIT,
    SUPERVISOR,
    Cell,
    Field,
    Outcome,
    Section,
    Table,
    model_defaults,
    queue_names,
    queue_options,
)
from omni.web.i18n import enum_label, enum_options

WEEKDAYS = tuple(str(d) for d in range(1, 8))
_SPAN = re.compile(r"\s*(\S+?)\s*[-–—]\s*(\S+)\s*")

ACTIONS = {
    "start": CampaignState.RUNNING,
    "resume": CampaignState.RUNNING,
    "pause": CampaignState.PAUSED,
    "finish": CampaignState.FINISHED,
}
"""Buttons of the form → the state they ask for."""


@dataclass
class ScheduleField(Field):
    """One line per ISO weekday (``schedule.1`` … ``schedule.7``): ``09:00-13:00, 14:00-21:00``;
    an empty line is a day without calls. Posts the ``schedule`` document."""

    def raw(self, form: Mapping[str, Any]) -> Any:
        return {d: str(form.get(f"{self.name}.{d}", "") or "") for d in WEEKDAYS}

    def show(self, value: Any) -> Any:
        doc = value or {}
        return {d: ", ".join(f"{a}-{b}" for a, b in doc.get(d, [])) for d in WEEKDAYS}

    def parse(self, raw: Any, t: Any) -> Any:
        doc: dict[str, list[list[str]]] = {}
        for day, text in raw.items():
            spans = [s for s in re.split(r"[,;]", text) if s.strip()]
            if not spans:
                continue
            pairs = []
            for span in spans:
                found = _SPAN.fullmatch(span)
                if found is None:
                    raise InvalidInput(
                        "'{span}' is not a time range like 09:00-21:00", span=span.strip(), field=self.name
                    )
                pairs.append([found.group(1), found.group(2)])
            doc[day] = pairs
        return doc


@dataclass
class RetryField(Field):
    """``retry_rules.<outcome>``: ``15;60;1440`` minutes per outcome; empty = no retry."""

    def raw(self, form: Mapping[str, Any]) -> Any:
        return {o: str(form.get(f"{self.name}.{o}", "") or "") for o in RETRYABLE}

    def show(self, value: Any) -> Any:
        rules = value or {}
        return {o: ";".join(str(v) for v in rules.get(o, [])) for o in RETRYABLE}

    def parse(self, raw: Any, t: Any) -> Any:
        return {o: text.strip() for o, text in raw.items() if text.strip()}


@dataclass
class CallerIdsField(Field):
    """One number a line, optionally ``, REGION`` after it; ``off`` after that parks it."""

    def show(self, value: Any) -> Any:
        lines = []
        for row in value or []:
            parts = [row["number"]]
            if row.get("region") or not row.get("active", True):
                parts.append(row.get("region", ""))
            if not row.get("active", True):
                parts.append("off")
            lines.append(", ".join(parts))
        return "\n".join(lines)

    def parse(self, raw: Any, t: Any) -> Any:
        out = []
        for line in str(raw).splitlines():
            parts = [p.strip() for p in line.split(",")]
            if not parts[0]:
                continue
            item: dict[str, Any] = {"number": parts[0]}
            if len(parts) > 1 and parts[1]:
                item["region"] = parts[1]
            if len(parts) > 2 and parts[2].lower() == "off":
                item["active"] = False
            out.append(item)
        return out


@dataclass
class ResultCodesField(Field):
    """A row per active result code (``options``): action, minutes (retry), global (dnc)."""

    def raw(self, form: Mapping[str, Any]) -> Any:
        return {
            code: {
                "action": str(form.get(f"rc.{code}.action", "") or ""),
                "minutes": str(form.get(f"rc.{code}.minutes", "") or ""),
                "global": form.get(f"rc.{code}.global") is not None,
            }
            for code, _label in self.options
        }

    def show(self, value: Any) -> Any:
        given = {str(r["result_code_id"]): r for r in value or []}
        shown = {}
        for code, _label in self.options:
            r = given.get(code)
            shown[code] = {
                "action": r["action"] if r else "",
                "minutes": str(r["retry_minutes"]) if r and r["retry_minutes"] is not None else "",
                "global": bool(r and r["global_dnc"]),
            }
        return shown

    def parse(self, raw: Any, t: Any) -> Any:
        out = []
        for code, row in raw.items():
            if not row["action"]:
                continue
            item: dict[str, Any] = {"result_code_id": int(code), "action": row["action"]}
            if row["minutes"].strip():
                try:
                    item["retry_minutes"] = int(row["minutes"].strip())
                except ValueError as exc:
                    raise InvalidInput(t("adm.invalid_number"), field=self.name) from exc
            if row["global"]:
                item["global_dnc"] = True
            out.append(item)
        return out


class Campaigns(Section):
    slug = "campaigns"
    title = "adm.campaigns"
    view_roles = (ADMIN, SUPERVISOR)
    edit_roles = (ADMIN, SUPERVISOR)
    """Supervisors reach the start / pause / finish actions; the form itself is admins' (``editable``)."""
    form_template: ClassVar[str] = "admin/campaign_form.html"

    async def table(self, session: AsyncSession) -> Table:
        rows = await campaigns.list_campaigns(session, self.who, limit=LIMIT)
        queues = await queue_names(session)
        lang = self.ctx.lang
        table_rows = [
            [
                Cell(c.name, self.href(c.id)),
                Cell(enum_label(lang, "campaign_state", c.state)),
                Cell(enum_label(lang, "channel", c.channel)),
                Cell(enum_label(lang, "dial_mode", c.dial_mode)),
                Cell(queues.get(c.queue_id, "")),
                Cell(str(c.priority)),
            ]
            for c in rows
        ]
        cols = [
            "adm.f.name",
            "adm.camp.state",
            "adm.f.channel",
            "adm.camp.dial_mode",
            "adm.camp.queue",
            "adm.f.priority",
        ]
        return Table([self.t(c) for c in cols], table_rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await campaigns.access_campaign(session, self.who, item_id)

    def editable(self, item: Any | None) -> bool:
        if not self.is_admin:
            return False
        return item is None or item.state != CampaignState.FINISHED

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t, lang = self.t, self.ctx.lang
        none = [("", t("adm.none"))]
        if self.is_admin:
            inbox_rows = [
                i
                for i in await admin.list_inboxes(session, self.who, limit=LIMIT)
                if i.channel in (CampaignChannel.VOICE, CampaignChannel.TELEGRAM)
            ]
            user_rows = [
                u
                for u in await admin.list_users(session, self.who, limit=LIMIT)
                if u.role == m.Role.OPERATOR and u.is_active
            ]
        else:  # a supervisor reads the campaign: show what it has, not the whole install
            inbox = await session.get(m.Inbox, item.inbox_id) if item is not None and item.inbox_id else None
            inbox_rows = [inbox] if inbox is not None else []
            named = select(m.CampaignOperator.user_id).where(
                m.CampaignOperator.campaign_id == (item.id if item else 0)
            )
            user_rows = list(await session.scalars(select(m.User).where(m.User.id.in_(named))))
        inboxes = [(str(i.id), f"{i.name} ({enum_label(lang, 'channel', i.channel)})") for i in inbox_rows]
        operators = [(str(u.id), u.display_name or u.username) for u in user_rows]
        codes = [
            (str(c.id), f"{c.name_in(lang)} ({c.code})")
            for c in await admin.list_result_codes(session, self.who, limit=LIMIT)
            if c.active
        ]
        prompts = [
            (str(p.id), f"{p.folder}/{p.name}" if p.folder else p.name)
            for p in await session.scalars(
                select(m.Prompt).order_by(m.Prompt.folder, m.Prompt.name).limit(LIMIT)
            )
        ]
        scenarios = [
            (s.key, f"{s.name} ({s.key})")
            for s in await session.scalars(
                select(m.Scenario).where(m.Scenario.active_revision_id.is_not(None)).order_by(m.Scenario.name)
            )
        ]
        return [
            Field("name", t("adm.f.name"), required=True),
            Field(
                "queue_id",
                t("adm.camp.queue"),
                "select",
                await queue_options(session, self.who),
                numeric=True,
            ),
            Field(
                "operator_ids",
                t("adm.camp.operators"),
                "checks",
                operators,
                numeric=True,
                help=t("adm.camp.operators_help"),
            ),
            Field(
                "channel",
                t("adm.f.channel"),
                "select",
                enum_options(lang, "channel", CampaignChannel),
                readonly=item is not None and item.state != CampaignState.DRAFT,
            ),
            Field(
                "dial_mode",
                t("adm.camp.dial_mode"),
                "select",
                enum_options(lang, "dial_mode", campaigns.ACTIVE_MODES),
                help=t("adm.camp.dial_mode_help"),
            ),
            Field(
                "inbox_id",
                t("adm.camp.inbox"),
                "select",
                none + inboxes,
                numeric=True,
                help=t("adm.camp.inbox_help"),
            ),
            Field("priority", t("adm.f.priority"), "number"),
            ScheduleField(
                "schedule",
                t("adm.camp.schedule"),
                "weekdays",
                [(d, enum_label(lang, "weekday", d)) for d in WEEKDAYS],
                help=t("adm.camp.schedule_help"),
            ),
            Field("holidays", t("adm.camp.holidays"), "lines", help=t("adm.camp.holidays_help"), rows=3),
            Field(
                "calendar_ids",
                t("adm.hours.calendars"),
                "checks",
                [(str(c.id), c.name) for c in await calendars.list_calendars(session, self.who)],
                numeric=True,
                help=t("adm.camp.calendars_help"),
            ),
            Field("starts_on", t("adm.camp.starts_on"), "date", nullable=True),
            Field("ends_on", t("adm.camp.ends_on"), "date", nullable=True, help=t("adm.camp.ends_on_help")),
            Field("timezone", t("adm.camp.timezone"), help=t("adm.camp.timezone_help")),
            Field("default_region", t("adm.camp.default_region")),
            Field("max_attempts", t("adm.camp.max_attempts"), "number"),
            Field("max_concurrency", t("adm.camp.max_concurrency"), "number"),
            RetryField(
                "retry_rules",
                t("adm.camp.retry_rules"),
                "retry",
                [(o, enum_label(lang, "outcome", o)) for o in RETRYABLE],
                help=t("adm.camp.retry_help"),
            ),
            CallerIdsField(
                "caller_ids", t("adm.camp.caller_ids"), "textarea", help=t("adm.camp.caller_ids_help")
            ),
            Field("preview_seconds", t("adm.camp.preview_seconds"), "number"),
            Field("preview_auto_dial", t("adm.camp.preview_auto_dial"), "checkbox"),
            Field("ring_seconds", t("adm.camp.ring_seconds"), "number"),
            Field("inbound_priority", t("adm.camp.inbound_priority"), "checkbox"),
            Field(
                "target_abandon_pct",
                t("adm.camp.target_abandon_pct"),
                "decimal",
                help=t("adm.camp.target_abandon_pct_help"),
            ),
            Field("max_lines_per_operator", t("adm.camp.max_lines_per_operator"), "decimal"),
            Field("drop_seconds", t("adm.camp.drop_seconds"), "number"),
            Field("drop_prompt_id", t("adm.camp.drop_prompt"), "select", none + prompts, numeric=True),
            Field(
                "drop_text", t("adm.camp.drop_text"), "textarea", rows=2, help=t("adm.camp.drop_text_help")
            ),
            Field("amd_enabled", t("adm.camp.amd_enabled"), "checkbox"),
            Field(
                "machine_action",
                t("adm.camp.machine_action"),
                "select",
                enum_options(lang, "machine_action", campaigns.MACHINE_ACTIONS),
            ),
            Field("machine_prompt_id", t("adm.camp.machine_prompt"), "select", none + prompts, numeric=True),
            Field("machine_text", t("adm.camp.machine_text"), "textarea", rows=2),
            Field(
                "scenario",
                t("adm.camp.scenario"),
                "select",
                [("", t("adm.none")), *scenarios],
                help=t("adm.camp.scenario_help"),
            ),
            Field("script", t("adm.camp.script"), "textarea", rows=5),
            Field(
                "message_template",
                t("adm.camp.message_template"),
                "textarea",
                help=t("adm.camp.message_template_help"),
            ),
            Field("escalation", t("adm.camp.escalation"), "json", help=t("adm.camp.escalation_help"), rows=3),
            Field("predial_url", t("adm.camp.predial_url"), help=t("adm.camp.predial_url_help")),
            Field("predial_timeout_ms", t("adm.camp.predial_timeout_ms"), "number"),
            Field(
                "predial_on_timeout",
                t("adm.camp.predial_on_timeout"),
                "select",
                enum_options(lang, "predial", campaigns.PREDIAL_POLICIES),
            ),
            ResultCodesField(
                "result_codes",
                t("adm.camp.result_codes"),
                "codes",
                codes,
                help=t("adm.camp.result_codes_help"),
            ),
        ]

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {
                **model_defaults(m.Campaign),
                "schedule": {d: [["09:00", "21:00"]] for d in WEEKDAYS[:5]},
                "holidays": [],
                "calendar_ids": [],
                "retry_rules": {k: list(v) for k, v in DEFAULT_RETRY_RULES.items()},
                "operator_ids": [],
                "caller_ids": [],
                "result_codes": [],
                "escalation": None,
            }
        return await campaigns.campaign_detail(session, item)

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is None:
            return (await campaigns.check_create_campaign(session, self.who, data)).id
        return (await campaigns.check_update_campaign(session, self.who, item_id, data)).id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await campaigns.check_delete_campaign(session, self.who, item_id)

    def extras(self, item: Any | None) -> dict[str, Any]:
        actions = enum_options(self.ctx.lang, "result_action", ResultAction)
        if item is None:
            return {"result_actions": actions}
        buttons = []
        for name, state in ACTIONS.items():
            if state not in campaigns.TRANSITIONS[item.state]:
                continue
            if (name == "start") != (item.state == CampaignState.DRAFT) and state == CampaignState.RUNNING:
                continue
            buttons.append((name, self.t(f"adm.camp.{name}")))
        return {
            "result_actions": actions,
            "state": item.state,
            "state_label": enum_label(self.ctx.lang, "campaign_state", item.state),
            "state_actions": buttons,
        }

    async def action(self, session: AsyncSession, item_id: int, name: str, form: dict[str, Any]) -> Outcome:
        state = ACTIONS.get(name)
        if state is None:
            if name == "delete":
                return await super().action(session, item_id, name, form)
            raise NotFound("no action '{name}'", name=name)
        await campaigns.check_set_state(session, self.who, item_id, state)
        return Outcome(redirect=f"{self.href(item_id)}?saved=1")


__all__ = ["CallerIdsField", "Campaigns", "ResultCodesField", "RetryField", "ScheduleField"]
