"""Bitrix24 connector over its incoming-webhook REST API (``https://<portal>/rest/<user>/<token>/``).

A closed conversation creates a lead or a deal (``crm.lead.add`` / ``crm.deal.add``), or
updates the one the contact's earlier conversation created (``crm.*.update``); a call is
attached with ``telephony.externalcall.register`` + ``telephony.externalcall.finish``
(duration, status, recording link); the result and transcript go to the entity's timeline
(``crm.timeline.comment.add``).

Each step is recorded in ``crm_links`` as it succeeds, so the webhook machinery's retry after
a failure (Bitrix24 answers 503 ``QUERY_LIMIT_EXCEEDED`` above two requests a second) resumes
at the failed step instead of creating a second lead. Bitrix24 errors come as JSON
``{"error": "...", "error_description": "..."}`` with a 4xx/5xx (sometimes 200) status; each
becomes the delivery's ``last_error`` naming the method.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.crm.config import get_settings
from omni.domain.crm.push import facts
from omni.domain.events import DomainEvent
from omni.settings import WebhookSettings

MAX_COMMENT = 20_000


class BitrixError(Exception):
    def __init__(self, method: str, status: int | None, message: str) -> None:
        super().__init__(f"Bitrix24 {method}: {message}")
        self.status = status


async def call(client: httpx.AsyncClient, base_url: str, method: str, params: dict[str, Any]) -> Any:
    """One REST method: its ``result``, or ``BitrixError`` with Bitrix24's own error code."""
    try:
        resp = await client.post(f"{base_url}{method}.json", json=params)
    except httpx.HTTPError as exc:
        raise BitrixError(method, None, f"{type(exc).__name__}: {exc}"[:300]) from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        # crm.* methods answer a bad field with an empty code: the description says it all.
        detail = ": ".join(str(p) for p in (body["error"], body.get("error_description", "")) if p)
        raise BitrixError(method, resp.status_code, f"{detail} (HTTP {resp.status_code})"[:300])
    if not 200 <= resp.status_code < 300 or not isinstance(body, dict) or "result" not in body:
        raise BitrixError(method, resp.status_code, f"HTTP {resp.status_code}: {resp.text[:200]}")
    return body["result"]


def _comment(data: dict[str, Any]) -> str:
    conv = data["conversation"]
    lines = [f"Omni #{conv['id']} ({conv['channel']}): {conv['url']}"]
    if data["result"]:
        lines.append(f"Result: {data['result']['name']} ({data['result']['code']})")
    if data["operator"]:
        lines.append(f"Operator: {data['operator']['name']}")
    if data["recording_url"]:
        lines.append(f"Recording: {data['recording_url']}")
    for msg in data["transcript"]:
        who = "Customer" if msg["direction"] == "in" else "Operator"
        lines.append(f"[{msg['at']}] {who}: {msg['body']}")
    return "\n".join(lines)[:MAX_COMMENT]


def _entity_fields(data: dict[str, Any], entity: str, user_id: int) -> dict[str, Any]:
    contact = data["contact"]
    conv = data["conversation"]
    title = f"Omni: {contact['name'] or contact['phone'] or contact['email'] or conv['channel']}"
    fields: dict[str, Any] = {
        "TITLE": title[:255],
        "ASSIGNED_BY_ID": user_id,
        "SOURCE_ID": "CALL" if conv["medium"] == "voice" else "WEB",
        "SOURCE_DESCRIPTION": f"Omni #{conv['id']} ({conv['channel']})",
    }
    if entity == "lead":
        fields["NAME"] = contact["name"]
        if contact["phone"]:
            fields["PHONE"] = [{"VALUE": contact["phone"], "VALUE_TYPE": "WORK"}]
        if contact["email"]:
            fields["EMAIL"] = [{"VALUE": contact["email"], "VALUE_TYPE": "WORK"}]
    return fields


async def push(
    session: AsyncSession,
    sub: m.WebhookSubscription,
    event: DomainEvent,
    cfg: WebhookSettings,
    client: httpx.AsyncClient | None,
    base_url: str,
) -> tuple[int | None, str]:
    """The steps for one closed conversation, resuming after those already done."""
    data = await facts(session, event.conversation_id, base_url) if event.conversation_id else None
    if data is None:
        return None, "conversation gone"
    settings = await get_settings(session)
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=cfg.timeout_seconds) as own:
                await _steps(session, own, sub.url, data, settings)
        else:
            await _steps(session, client, sub.url, data, settings)
    except BitrixError as exc:
        return exc.status, str(exc)
    return 200, ""


async def _steps(
    session: AsyncSession, client: httpx.AsyncClient, url: str, data: dict[str, Any], cfg: m.CrmSettings
) -> None:
    conv, contact = data["conversation"], data["contact"]
    entity = cfg.bitrix_entity
    link = await session.scalar(select(m.CrmLink).where(m.CrmLink.conversation_id == conv["id"]))
    if link is None:
        earlier = await session.scalar(
            select(m.CrmLink)
            .where(m.CrmLink.contact_id == contact["id"], m.CrmLink.entity_type == entity)
            .order_by(m.CrmLink.id.desc())
            .limit(1)
        )
        fields = _entity_fields(data, entity, cfg.bitrix_user_id)
        if earlier is not None:
            await call(client, url, f"crm.{entity}.update", {"id": earlier.entity_id, "fields": fields})
            entity_id, updated = earlier.entity_id, True
        else:
            result = await call(
                client, url, f"crm.{entity}.add", {"fields": fields, "params": {"REGISTER_SONET_EVENT": "Y"}}
            )
            if isinstance(result, bool) or not isinstance(result, int | str) or not str(result).isdigit():
                raise BitrixError(f"crm.{entity}.add", 200, f"unexpected result {result!r}"[:200])
            entity_id, updated = int(result), False
        link = m.CrmLink(
            conversation_id=conv["id"],
            contact_id=contact["id"],
            entity_type=entity,
            entity_id=entity_id,
            call_id="",
            steps=["entity"],
            updated=updated,
        )
        session.add(link)
        await session.flush()
    owner = {"CRM_ENTITY_TYPE": link.entity_type.upper(), "CRM_ENTITY_ID": link.entity_id}
    call_facts = data["call"]
    if call_facts is not None and "call" not in link.steps:
        result = await call(
            client,
            url,
            "telephony.externalcall.register",
            {
                "USER_ID": cfg.bitrix_user_id,
                "PHONE_NUMBER": call_facts["number"] or contact["phone"] or "",
                "CALL_START_DATE": call_facts["started_at"],
                "TYPE": 1 if call_facts["direction"] == "out" else 2,
                "CRM_CREATE": 0,
                "SHOW": 0,
                **owner,
            },
        )
        call_id = result.get("CALL_ID") if isinstance(result, dict) else None
        if not isinstance(call_id, str) or not call_id:
            raise BitrixError("telephony.externalcall.register", 200, f"no CALL_ID in {result!r}"[:200])
        link.call_id = call_id
        link.steps = [*link.steps, "call"]
        await session.flush()
    if call_facts is not None and "finish" not in link.steps:
        finish: dict[str, Any] = {
            "CALL_ID": link.call_id,
            "USER_ID": cfg.bitrix_user_id,
            "DURATION": call_facts["talk_seconds"],
            "STATUS_CODE": "200" if call_facts["answered"] else "304",
            "ADD_TO_CHAT": 0,
        }
        if data["recording_url"]:
            finish["RECORD_URL"] = data["recording_url"]
        await call(client, url, "telephony.externalcall.finish", finish)
        link.steps = [*link.steps, "finish"]
        await session.flush()
    if "comment" not in link.steps:
        await call(
            client,
            url,
            "crm.timeline.comment.add",
            {
                "fields": {
                    "ENTITY_ID": link.entity_id,
                    "ENTITY_TYPE": link.entity_type,
                    "COMMENT": _comment(data),
                }
            },
        )
        link.steps = [*link.steps, "comment"]
        await session.flush()
