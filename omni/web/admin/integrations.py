"""Admin sections for the outside world's ways in and out: webhooks, API tokens, the audit log.

Webhooks: the subscription form (event types one per line, queue and channel filter as ticks,
the signing secret generated and shown once), the latest deliveries on the edit page with a
link to the whole delivery log (``omni.web.admin_logs``), and "Send a test" which POSTs one
signed ``webhook.test`` event at once and shows the receiver's answer.

API tokens: an admin issues one for a user (an integration account); the token is shown once,
right after creation (only its digest is stored). A token can't be edited, only revoked.

The audit log is a section only for the menu and the role check: its page, with filters and
paging, is ``omni.web.admin_logs`` (``/admin/audit`` is a fixed path, so the generic listing
never serves it).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import webhook_probe, webhooks
from omni.domain.admin import tokens
from omni.domain.auth import check_role
from omni.domain.errors import InvalidInput, NotFound
from omni.domain.reports.config import get_config
from omni.web.admin.forms import ADMIN, AUDITOR, CHANNELS, Cell, Field, Outcome, Section, Table, queue_names

RECENT = 10
"""Deliveries shown on a webhook's page; the log page has the rest."""
STATE_COLOURS = {"pending": "#f9a825", "succeeded": "#2e7d32", "failed": "#c62828"}


def when(value: datetime | None, tz: Any) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


class Webhooks(Section):
    slug = "webhooks"
    title = "adm.webhooks"
    view_roles = (ADMIN,)
    form_template = "admin/webhook_form.html"

    def heading(self, item: Any) -> str:
        return str(item.name)

    async def table(self, session: AsyncSession) -> Table:
        counts: dict[tuple[int, str], int] = {
            (sub, state): n
            for sub, state, n in (
                await session.execute(
                    select(m.WebhookDelivery.subscription_id, m.WebhookDelivery.state, func.count()).group_by(
                        m.WebhookDelivery.subscription_id, m.WebhookDelivery.state
                    )
                )
            ).all()
        }
        rows = []
        for w in await webhooks.list_webhooks(session, self.who, limit=1000):
            log = self.t(
                "adm.hk.counts",
                failed=counts.get((w.id, "failed"), 0),
                pending=counts.get((w.id, "pending"), 0),
                succeeded=counts.get((w.id, "succeeded"), 0),
            )
            rows.append(
                [
                    Cell(w.name, self.href(w.id)),
                    Cell(w.url),
                    Cell(", ".join(w.event_types or []) or self.t("adm.hk.all_events")),
                    Cell(self.t("adm.yes") if w.active else self.t("adm.no")),
                    Cell(log, f"/admin/webhook-deliveries?webhook={w.id}"),
                ]
            )
        cols = ["adm.f.name", "adm.f.url", "adm.f.event_types", "adm.f.active", "adm.hk.deliveries"]
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        check_role(self.who, ADMIN)
        hook = await session.get(m.WebhookSubscription, item_id)
        if hook is None:
            raise NotFound("webhook {item_id} not found", item_id=item_id)
        return hook

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        queues = [(str(k), v) for k, v in sorted((await queue_names(session)).items(), key=lambda kv: kv[1])]
        channels = [(c, t(f"enum.channel.{c}")) for c in CHANNELS]
        return [
            Field("name", t("adm.f.name"), required=True),
            Field("url", t("adm.f.url"), required=True, help=t("adm.hk.url_help")),
            Field("event_types", t("adm.f.event_types"), "lines", help=t("adm.hk.events_help")),
            Field("queue_ids", t("adm.f.queues"), "checks", queues, numeric=True,
                  help=t("adm.hk.queues_help")),
            Field("channels", t("adm.f.channels"), "checks", channels, help=t("adm.hk.channels_help")),
            Field("active", t("adm.f.active"), "checkbox"),
            Field("secret", t("adm.f.secret"), "password", omit_empty=True,
                  help=t("adm.hk.secret_help") if item is None else t("adm.hk.secret_keep")),
        ]  # fmt: skip

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        self._recent: list[dict[str, Any]] = []
        if item is None:
            return {"name": "", "url": "", "event_types": [], "queue_ids": [], "channels": [], "active": True}
        tz = (await get_config(session)).tz
        for d, e in await webhooks.list_delivery_log(session, self.who, webhook_id=item.id, limit=RECENT):
            self._recent.append(delivery_row(d, e, tz))
        flt = item.filter or {}
        return {
            "name": item.name,
            "url": item.url,
            "event_types": list(item.event_types or []),
            "queue_ids": list(flt.get("queue_ids") or []),
            "channels": list(flt.get("channels") or []),
            "active": item.active,
        }

    def extras(self, item: Any | None) -> dict[str, Any]:
        return {"deliveries": getattr(self, "_recent", [])}

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        data = dict(data)
        flt: dict[str, Any] = {}
        if data.get("queue_ids"):
            flt["queue_ids"] = data["queue_ids"]
        if data.get("channels"):
            flt["channels"] = data["channels"]
        data.pop("queue_ids", None)
        data.pop("channels", None)
        data["filter"] = flt
        try:
            if item_id is None:
                hook, secret = await webhooks.check_create_webhook(session, self.who, data)
                self.revealed = {"webhook_secret": secret}
                return hook.id
            return (await webhooks.check_update_webhook(session, self.who, item_id, data)).id
        except InvalidInput as exc:
            # The domain names the stored shape (``filter.queue_ids[0]``); the form has a field
            # per filter key, and the message belongs next to that one.
            for problem in [exc, *exc.errors]:
                field = problem.field or ""
                if field == "filter" or field.startswith("filter."):
                    problem.field = "channels" if field.startswith("filter.channels") else "queue_ids"
            raise

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await webhooks.check_delete_webhook(session, self.who, item_id)

    async def action(self, session: AsyncSession, item_id: int, name: str, form: dict[str, Any]) -> Outcome:
        if name == "test":
            req = await webhook_probe.check_prepare_test(session, self.who, item_id)

            async def send() -> Outcome:  # after the transaction: the receiver may be slow
                result = await webhook_probe.post_test(req, self.services.settings.webhook)
                async with self.services.db.transaction() as audit_session:
                    webhook_probe.record_test(audit_session, self.who, req, result)
                answer = (
                    self.t("adm.hk.test_ok", status=result.status_code)
                    if result.ok
                    else self.t("adm.hk.test_failed", error=result.error)
                )
                return Outcome(extras={"test_result": {"ok": result.ok, "text": answer}})

            return Outcome(after=send)
        return await super().action(session, item_id, name, form)


def delivery_row(d: m.WebhookDelivery, e: m.Event | None, tz: Any) -> dict[str, Any]:
    """One delivery as the pages show it (the event's payload pretty-printed for the payload view)."""
    return {
        "id": d.id,
        "subscription_id": d.subscription_id,
        "event_type": e.type if e is not None else "",
        "state": d.state,
        "colour": STATE_COLOURS.get(d.state, ""),
        "attempts": d.attempts,
        "status_code": d.last_status_code,
        "error": d.last_error,
        "created_at": when(d.created_at, tz),
        "delivered_at": when(d.delivered_at, tz),
        "payload": pretty(webhooks.delivery_detail_dict(d, e)["event"]) if e is not None else "",
    }


class ApiTokens(Section):
    slug = "tokens"
    title = "adm.tokens"
    view_roles = (ADMIN,)
    delete_label = "adm.tk.revoke"
    form_template = "admin/token_form.html"

    def heading(self, item: Any) -> str:
        return str(item.name)

    async def _users(self, session: AsyncSession) -> dict[int, str]:
        rows = (await session.execute(select(m.User.id, m.User.username, m.User.is_active))).all()
        self._active = {uid for uid, _, active in rows if active}
        return {uid: name for uid, name, _ in rows}

    async def table(self, session: AsyncSession) -> Table:
        tz = (await get_config(session)).tz
        users = await self._users(session)
        rows = []
        for r in await tokens.list_tokens(session, self.who, limit=1000):
            state = (
                Cell(self.t("adm.tk.revoked"), colour="#9e9e9e")
                if r.revoked
                else Cell(self.t("adm.tk.active"), colour="#2e7d32")
            )
            rows.append(
                [
                    Cell(r.name, self.href(r.id)),
                    Cell(users.get(r.user_id, str(r.user_id))),
                    Cell(when(r.created_at, tz)),
                    Cell(when(r.last_used_at, tz) or self.t("adm.tk.unused")),
                    state,
                ]
            )
        cols = ["adm.f.name", "adm.f.user", "adm.f.created_at", "adm.f.last_used_at", "adm.f.state"]
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        check_role(self.who, ADMIN)
        row = await session.get(m.ApiToken, item_id)
        if row is None:
            raise NotFound("API token {token_id} not found", token_id=item_id)
        return row

    def editable(self, item: Any | None) -> bool:
        """New tokens are made here; an existing one can only be revoked (once)."""
        if item is not None and item.revoked:
            return False
        return super().editable(item)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        users = await self._users(session)
        fixed = item is not None
        options = [("", "—")] + [
            (str(uid), name)
            for uid, name in sorted(users.items(), key=lambda kv: kv[1])
            if uid in self._active or fixed
        ]
        return [
            Field("name", t("adm.f.name"), required=True, readonly=fixed, help=t("adm.tk.name_help")),
            Field("user_id", t("adm.f.user"), "select", options, numeric=True, readonly=fixed,
                  help=t("adm.tk.user_help")),
        ]  # fmt: skip

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"name": "", "user_id": self.who.id}
        return {"name": item.name, "user_id": item.user_id}

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        if item_id is not None:  # nothing of a token changes; the form shows it read-only
            return int((await self.load(session, item_id)).id)
        data = dict(data)
        if data.get("user_id") is None:
            data.pop("user_id", None)  # "required" comes back from the domain, next to the field
        row, secret = await tokens.check_create_token(session, self.who, data)
        self.revealed = {"api_token": secret}
        return row.id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await tokens.check_revoke_token(session, self.who, item_id)


class AuditLog(Section):
    slug = "audit"
    title = "adm.audit"
    view_roles = (ADMIN, AUDITOR)
    create_roles = ()
    edit_roles = ()
    delete_roles = ()
    can_delete = False
