"""Agentless notifications: an answered campaign call runs a voice bot scenario, no operator.

The voice adapter reports the answer (``do_start_agentless``): the call becomes a voice
conversation in status ``bot`` for the contact found (or created) by the number dialled, with
the target's name and card fields as conversation variables, and the campaign's published
scenario starts on it with an *outbound start* (``BotRunner.start(variables=…)``: the fields
are known to the scenario from its first node, so a template says ``{{debt}}``). The IVR then
plays it on the call (``channels/voice/agi``, route ``outbound``) with the same machinery as an
inbound IVR: prompts, the TTS application, DTMF, hand-off to the queue, the ``record`` node.

When the scenario ends — or the call does — the IVR stores the contact's result
(``do_store_result``): ``campaign_targets.result`` gets what the customer did (confirmed or
not, the last digits, the recording, the node it ended on, the scenario's variables) and the
attempt closes: ``answered`` with the target ``done`` when the scenario ran to its end (or
handed the customer to an operator), ``dropped`` — so the campaign's retry rule for dropped
calls decides, on the contact's next number — when the customer hung up before the end.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.models.outbound import DialMode, Outcome, TargetState
from omni.domain import calls, deadlines
from omni.domain.auth import Principal
from omni.domain.contacts import do_resolve_contact
from omni.domain.conversations import bot_gateway
from omni.domain.errors import Conflict, InvalidInput, NotFound
from omni.domain.events import emit
from omni.domain.outbound.dialing import do_attempt_answered, locked_attempt
from omni.domain.outbound.lifecycle import do_apply_result, do_close_attempt
from omni.domain.serialize import conversation_dict, message_dict

__all__ = [
    "CALL_GUARD",
    "COMPLETED",
    "CONFIRM_OPTION",
    "OUTBOUND_START",
    "collect_result",
    "contact_results",
    "do_call_guard",
    "do_start_agentless",
    "do_store_result",
    "target_variables",
]

OUTBOUND_START = "_outbound_start"
"""The conversation variable that marks an outbound start (``bots.runner.OUTBOUND_START``)."""
CALL_GUARD = "agentless_guard"
"""A persisted deadline per answered agentless attempt: the IVR's session stores the result
when the call ends; if it never ran (FastAGI unreachable, the node died) the guard does."""
GUARD_SECONDS = 300
"""How often the guard looks at a call that is still with the scenario."""
COMPLETED = frozenset({"closed", "ended", "handed_off", "moved"})
"""Bot session statuses of a scenario that ran to its end (the customer heard it all)."""
CONFIRM_OPTION = "confirm"
"""A menu option with this id, when chosen, is the customer's confirmation (``confirmed``);
a scenario may also set a ``confirmed`` variable itself."""
_HIDDEN = frozenset(
    {"last_input", "http_status", "lang", "linkedid", "direction", "campaign_id", "target_id", "attempt_id"}
)
_NOT_NAME = re.compile(r"[^a-z0-9_]+")


def _var_name(raw: str) -> str:
    """A card field's name as a scenario variable (``Debt amount`` → ``debt_amount``)."""
    name = _NOT_NAME.sub("_", str(raw).strip().lower()).strip("_")[:64]
    if not name or not name[0].isalpha():
        name = f"f_{name}"[:64]
    return name


def target_variables(target: m.CampaignTarget) -> dict[str, Any]:
    """What the scenario knows of the contact from its start: ``name``, ``phone`` and every
    card field from the list under a variable-safe name."""
    out: dict[str, Any] = {_var_name(k): v for k, v in (target.fields or {}).items()}
    out["name"] = target.name
    return out


async def do_start_agentless(session: AsyncSession, attempt_id: int, now: datetime) -> int:
    """The customer of an agentless attempt answered: create the voice conversation (status
    ``bot``), tie it to the attempt and start the campaign's scenario on it; returns its id.

    Refused (``Conflict``/``InvalidInput``, nothing stored) when the attempt already ended,
    is not agentless or its scenario has no published revision: the adapter hangs up and the
    attempt ends ``dropped``."""
    attempt = await locked_attempt(session, attempt_id)
    if attempt is None:
        raise NotFound("attempt {attempt_id} not found", attempt_id=attempt_id)
    if attempt.ended_at is not None:
        raise Conflict("attempt {attempt_id} is not open", attempt_id=attempt_id)
    if attempt.conversation_id is not None:
        return attempt.conversation_id  # reported twice: the first answer made it
    campaign = await session.get(m.Campaign, attempt.campaign_id)
    target = await session.get(m.CampaignTarget, attempt.target_id)
    assert campaign is not None and target is not None, "an attempt's campaign and target exist (FK)"
    if campaign.dial_mode != DialMode.AGENTLESS or not campaign.scenario:
        raise InvalidInput("campaign '{name}' has no scenario to play", name=campaign.name, field="scenario")
    inbox = await session.get(m.Inbox, campaign.inbox_id) if campaign.inbox_id is not None else None
    if inbox is None or inbox.channel != m.Medium.VOICE:
        inbox = await calls.outgoing_voice_inbox(session, campaign.queue_id)
    bot = bot_gateway(session)
    if bot is None:
        raise Conflict("no bot runner is installed to play the scenario")
    contact = await do_resolve_contact(session, "phone", attempt.phone, name=target.name, phone=attempt.phone)
    leg = f"omni-a{attempt.id}"
    variables = {
        **target_variables(target),
        "campaign_id": campaign.id,
        "target_id": target.id,
        "attempt_id": attempt.id,
        "linkedid": leg,
        "direction": "out",
        OUTBOUND_START: True,
    }
    conv = m.Conversation(
        contact_id=contact.id,
        inbox_id=inbox.id,
        queue_id=campaign.queue_id,
        channel=inbox.channel,
        medium=m.Medium.VOICE,
        status=m.ConversationStatus.BOT,
        subject=campaign.name[:256],
        variables=variables,
        extra_queue_ids=[],
        created_at=now,
        last_message_at=now,
    )
    session.add(conv)
    await session.flush()
    # The call's first message carries its Linkedid, as an inbound call's does: the waiting
    # context's ``OmniEnqueue`` (after a hand-off) then finds this conversation, never a new one.
    first = m.Message(
        conversation_id=conv.id,
        inbox_id=inbox.id,
        direction="in",
        body=f"Campaign call to {attempt.phone} answered",
        external_id=leg,
        delivery="stored",
        created_at=now,
    )
    session.add(first)
    await session.flush()
    target.contact_id = contact.id
    await do_attempt_answered(session, attempt, conversation_id=conv.id, now=now)
    deadlines.schedule(session, CALL_GUARD, attempt.id, now + timedelta(seconds=GUARD_SECONDS))
    emit(session, "conversation.created", conversation_dict(conv), conversation_id=conv.id,
         queue_id=conv.queue_id)  # fmt: skip
    emit(session, "message.created", message_dict(first) | {"channel": conv.channel},
         conversation_id=conv.id, queue_id=conv.queue_id)  # fmt: skip
    if not await bot.start(session, conv, campaign.scenario, variables=target_variables(target)):
        raise Conflict("scenario '{scenario}' has no published revision", scenario=campaign.scenario)
    return conv.id


async def collect_result(session: AsyncSession, conversation_id: int) -> dict[str, Any]:
    """What the customer did in the scenario, read from the conversation: whether they
    confirmed, the last digits pressed, the last recording, the node the scenario is (or
    ended) on, its status and its non-technical variables."""
    bot = await session.get(m.BotSession, conversation_id)
    state: dict[str, Any] = dict(bot.state or {}) if bot is not None else {}
    variables = {
        k: v
        for k, v in dict(state.get("variables") or {}).items()
        if not k.startswith("_") and k not in _HIDDEN
    }
    chosen = await session.scalar(
        select(m.BotStep.id)
        .where(
            m.BotStep.conversation_id == conversation_id, m.BotStep.outcome == f"left:opt:{CONFIRM_OPTION}"
        )
        .limit(1)
    )
    rows = (
        await session.execute(
            select(m.Message.body, m.Message.attachments)
            .where(m.Message.conversation_id == conversation_id, m.Message.direction == "in")
            .order_by(m.Message.id)
        )
    ).all()
    digits = ""
    recording = ""
    for _body, attachments in rows:
        for a in attachments or []:
            if a.get("kind") == "dtmf":
                digits = str(a.get("digits") or "")
            elif a.get("kind") == "recording" and a.get("id"):
                recording = str(a["id"])
    confirmed = variables.get("confirmed")
    status = str(state.get("status") or (bot.status if bot is not None else ""))
    return {
        "confirmed": bool(confirmed) if confirmed is not None else chosen is not None,
        "digits": digits,
        "recording_file_id": recording or None,
        "node": state.get("node"),
        "status": status,
        "handed_off": status == "handed_off",
        "variables": variables,
    }


async def do_store_result(session: AsyncSession, conversation_id: int, result: dict[str, Any]) -> None:
    """Store an agentless call's result on its target and close its attempt.

    ``result["completed"]`` says the scenario ran to its end (closed, ran out of nodes or
    handed the customer to an operator): the attempt closes ``answered`` and the target is
    ``done`` (no operator result code). Otherwise the customer hung up before the end: the
    attempt closes ``dropped`` and the campaign's retry rule for dropped calls decides (the
    next attempt dials the contact's next number). Idempotent: once the attempt has ended a
    later call only refreshes the stored result."""
    attempt_id = await session.scalar(
        select(m.CampaignAttempt.id).where(m.CampaignAttempt.conversation_id == conversation_id).limit(1)
    )
    if attempt_id is None:
        raise NotFound("conversation {conversation_id} is no campaign call", conversation_id=conversation_id)
    attempt = await locked_attempt(session, attempt_id)
    assert attempt is not None
    target = await session.get(m.CampaignTarget, attempt.target_id)
    assert target is not None
    completed = bool(result.get("completed"))
    stored = {
        **result,
        "completed": completed,
        "attempt_id": attempt.id,
        "phone": attempt.phone,
        "conversation_id": conversation_id,
    }
    now = datetime.now(UTC)
    if attempt.ended_at is not None:
        if target.result.get("attempt_id") == attempt.id:
            target.result = {
                **target.result,
                **stored,
                "completed": target.result.get("completed") or completed,
            }
        return
    target.result = stored
    target.updated_at = now
    if completed:
        cause = "handed to an operator" if result.get("handed_off") else "notification played"
        await do_close_attempt(session, attempt, Outcome.ANSWERED, cause=cause, now=now)
        if target.state == TargetState.IN_PROGRESS:
            await do_apply_result(session, target, None, user_id=None, now=now)
    else:
        node = result.get("node") or "?"
        await do_close_attempt(
            session, attempt, Outcome.DROPPED, cause=f"hung up during the scenario (at {node})", now=now
        )


async def contact_results(
    session: AsyncSession, who: Principal, campaign_id: int, *, limit: int = 200
) -> list[dict[str, Any]]:
    """The supervisor's per-contact view of an agentless campaign (the live view's "Results"):
    contacts with a stored result, most recently changed first, each with its state, what the
    customer did and the voice reply's link. Scope as the campaign's live figures."""
    from omni.domain.outbound.stats import access_campaign

    campaign = await access_campaign(session, who, campaign_id)
    t = m.CampaignTarget
    rows = await session.scalars(
        select(t)
        .where(t.campaign_id == campaign.id, t.attempts > 0)
        .order_by(t.updated_at.desc(), t.id.desc())
        .limit(max(1, min(limit, 1000)))
    )
    out: list[dict[str, Any]] = []
    for target in rows:
        result = dict(target.result or {})
        if not result:
            continue
        recording = result.get("recording_file_id")
        out.append(
            {
                "target_id": target.id,
                "name": target.name,
                "phone": str(result.get("phone") or target.phone),
                "state": target.state,
                "attempts": target.attempts,
                "confirmed": bool(result.get("confirmed")),
                "completed": bool(result.get("completed")),
                "handed_off": bool(result.get("handed_off")),
                "digits": str(result.get("digits") or ""),
                "node": str(result.get("node") or ""),
                "recording_url": f"/api/v1/files/{recording}" if recording else None,
                "conversation_id": result.get("conversation_id"),
                "updated_at": target.updated_at.isoformat(),
            }
        )
    return out


async def do_call_guard(session: AsyncSession, deadline: m.Deadline) -> None:
    """The guard of an answered agentless attempt (``CALL_GUARD``): while the conversation is
    still with the scenario it looks again later; once it is not (the customer hung up, the
    scenario ended) and the attempt is still open — nobody stored the result — it stores what
    the conversation shows, so the attempt closes and the target is retried or done."""
    attempt = await session.get(m.CampaignAttempt, deadline.ref_id)
    if attempt is None or attempt.ended_at is not None or attempt.conversation_id is None:
        return
    conv = await session.get(m.Conversation, attempt.conversation_id)
    if conv is not None and conv.status == m.ConversationStatus.BOT:
        deadlines.schedule(
            session, CALL_GUARD, attempt.id, deadline.due_at + timedelta(seconds=GUARD_SECONDS)
        )
        return
    result = await collect_result(session, attempt.conversation_id)
    # Without a call session the scenario may still have run to its end on its persisted
    # timers (no input, retries, goodbye): what nobody played was not heard.
    unheard = await session.scalar(
        select(m.Message.id)
        .where(
            m.Message.conversation_id == attempt.conversation_id,
            m.Message.direction == "out",
            m.Message.author_user_id.is_(None),
            m.Message.delivery != "delivered",
        )
        .limit(1)
    )
    result["completed"] = result["status"] in COMPLETED and unheard is None
    await do_store_result(session, attempt.conversation_id, result)
