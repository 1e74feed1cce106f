"""Admin section for Telegram bots: connect one with its token, set its queue, mode and texts.

Until now a bot was an inbox edited as raw ``config`` JSON. This form calls what
``/api/v1/telegram/bots`` calls (``channels.telegram.bots``): the token is checked with
``getMe`` and stored encrypted, never shown again; a changed token or mode restarts the bot on
this node at once (the others follow at their next reconcile).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from channels.telegram import DEFAULT_QUEUE_MESSAGE, KIND, TelegramChannel, bots
from omni.domain import inboxes
from omni.domain.errors import InvalidInput
from omni.web.admin.forms import ADMIN, Cell, Field, Section, Table, queue_names, yes_no


class TelegramBots(Section):
    slug = "telegram-bots"
    title = "adm.tg"
    view_roles = (ADMIN,)

    def _channel(self) -> TelegramChannel:
        channel = self.services.adapters.get(KIND)
        if not isinstance(channel, TelegramChannel):
            raise InvalidInput("the Telegram channel is not enabled on this server", field="token")
        return channel

    async def table(self, session: AsyncSession) -> Table:
        queues = await queue_names(session)
        rows = [
            [
                Cell(i.name, self.href(i.id)),
                Cell("@" + str((i.config or {}).get("bot_username") or "?")),
                Cell(self.t(f"adm.tg.mode.{(i.config or {}).get('mode', 'webhook')}")),
                Cell(queues.get(i.queue_id, "") if i.queue_id else ""),
                Cell(yes_no(self.ctx, i.active)),
            ]
            for i in await inboxes.channel_inboxes(session, KIND, active_only=False)
        ]
        cols = ["adm.f.name", "adm.tg.username", "adm.tg.mode", "adm.f.queue_id", "adm.f.active"]
        return Table([self.t(c) for c in cols], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        return await bots.bot_inbox(session, self.who, item_id)

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        queues = [(str(qid), name) for qid, name in sorted((await queue_names(session)).items())]
        fields = [
            Field("name", t("adm.f.name"), required=True),
            Field(
                "token",
                t("adm.tg.token"),
                "password",
                required=item is None,
                omit_empty=item is not None,
                help=t("adm.tg.token_help") if item is None else t("adm.tg.token_keep"),
            ),
            # Selects are read as text here (never a parse error): a bad pick is the domain's to refuse.
            Field("queue_id", t("adm.f.queue_id"), "select", [("", t("adm.none")), *queues]),
            Field("mode", t("adm.tg.mode"), "select", [(v, t(f"adm.tg.mode.{v}")) for v in bots.MODES]),
            Field(
                "queue_message",
                t("adm.tg.queue_message"),
                "textarea",
                help=t("adm.tg.queue_message_help"),
                rows=2,
            ),
            Field("closing_message", t("adm.tg.closing_message"), "textarea", rows=2),
            Field("csat_question", t("adm.tg.csat_question"), help=t("adm.tg.csat_help")),
            Field("csat_labels", t("adm.tg.csat_labels"), "lines", help=t("adm.tg.csat_labels_help"), rows=5),
        ]
        if item is not None:
            fields.insert(4, Field("active", t("adm.f.active"), "checkbox"))
            fields.insert(1, Field("bot_username", t("adm.tg.username"), readonly=True))
            fields.append(Field("webhook_url", t("adm.tg.webhook_url"), readonly=True))
        return fields

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"mode": "webhook", "active": True, "queue_message": DEFAULT_QUEUE_MESSAGE}
        config = dict(item.config or {})
        csat = config.get("csat") if isinstance(config.get("csat"), dict) else {}
        channel = self.services.adapters.get(KIND)
        hook = ""
        if isinstance(channel, TelegramChannel) and config.get("mode", "webhook") == "webhook":
            hook = channel.webhook_url(item.public_token)
        return {
            "name": item.name,
            "bot_username": "@" + str(config.get("bot_username") or ""),
            "queue_id": item.queue_id,
            "mode": config.get("mode", "webhook"),
            "active": item.active,
            "queue_message": config.get("queue_message", DEFAULT_QUEUE_MESSAGE),
            "closing_message": config.get("closing_message", ""),
            "csat_question": (csat or {}).get("question", ""),
            "csat_labels": (csat or {}).get("labels", []),
            "webhook_url": hook,
        }

    def _payload(self, data: dict[str, Any]) -> dict[str, Any]:
        queue = str(data.pop("queue_id", "") or "").strip()
        try:
            data["queue_id"] = int(queue) if queue else None
        except ValueError as exc:
            raise InvalidInput("queue {qid} does not exist", qid=queue, field="queue_id") from exc
        question = str(data.pop("csat_question", "")).strip()
        labels: list[str] = data.pop("csat_labels", [])
        if question:
            data["csat"] = {"question": question, "labels": labels}
        elif labels:
            raise InvalidInput("the answer labels need a question", field="csat_question")
        else:
            data["csat"] = None
        return data

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        channel = self._channel()
        payload = self._payload(data)
        try:
            if item_id is None:
                inbox = await bots.check_create_bot(session, channel, self.who, payload)
            else:
                inbox = await bots.check_update_bot(session, channel, self.who, item_id, payload)
        except InvalidInput as exc:
            for problem in exc.errors or [exc]:
                if problem.field == "csat":
                    problem.field = "csat_labels" if "label" in problem.template else "csat_question"
            raise
        await session.flush()
        await channel.follow(inbox.id, inbox)  # before the commit: the token is in hand now
        return inbox.id

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await bots.check_delete_bot(session, self.who, item_id)
        channel = self.services.adapters.get(KIND)
        if isinstance(channel, TelegramChannel):
            await channel.follow(item_id, None)
