"""The action registry macros and automation rules share.

An action is ``{"kind": ..., <params>}``. Each kind registers an ``ActionSpec``: a ``check`` that
validates the params when an admin saves a macro or a rule, and a ``run`` that performs it on
one conversation through the existing domain services (``check_*`` with the operator for a
macro, ``do_*`` as the system for a rule): never a back door. ``where`` says which of the two
may use it. Another feature plugs its own kind in with ``register_action`` (labels: organise18's
``label`` kind registers here with ``{"kind": "label", "label_id": ...}``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain.admin.checks import INT_MAX, _clean, _mapping, _text
from omni.domain.auth import Principal
from omni.domain.automated import do_send_automated
from omni.domain.conversations.offers import _cancel_pending_offers
from omni.domain.errors import InvalidInput
from omni.domain.events import DomainEvent
from omni.domain.labels import check_set_labels, do_set_labels, labels_by_id
from omni.domain.presence import do_refresh_activity_of
from omni.domain.webhooks import check_subscription
from omni.domain.workspace.canned import placeholder_values, render_placeholders
from omni.domain.workspace.cards import check_update_card

MACRO = "macro"
RULE = "rule"
MAX_ACTIONS = 20
MAX_PRIORITY = 1000


@dataclass
class ActionContext:
    """What one run of a list of actions works with."""

    session: AsyncSession
    conversation: m.Conversation
    who: Principal | None
    """The operator running a macro; ``None`` for a rule (the system acts)."""
    event: DomainEvent | None = None
    """The event a rule runs for (a rule's webhook sends it)."""
    deliveries: list[int] = field(default_factory=list)
    """Webhook deliveries created by this run, enqueued after commit."""


Check = Callable[[str, Mapping[str, Any]], dict[str, Any]]
Run = Callable[[ActionContext, Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class ActionSpec:
    check: Check
    """Params without ``kind`` → the clean params (raise ``InvalidInput`` with ``field``)."""
    run: Run
    where: frozenset[str] = frozenset({MACRO, RULE})
    prepare: Callable[[AsyncSession, dict[str, Any]], Awaitable[None]] | None = None
    """Runs when the list is saved (a webhook action gets its signing subscription)."""


ACTIONS: dict[str, ActionSpec] = {}


def register_action(kind: str, spec: ActionSpec) -> None:
    """Plug an action kind in (at import time of the feature that owns it)."""
    ACTIONS[kind] = spec


async def check_actions(
    session: AsyncSession, value: Any, *, where: str, field_name: str = "actions"
) -> list[dict[str, Any]]:
    """A saved list of actions: 1 to ``MAX_ACTIONS`` items, each of a kind allowed ``where``."""
    if not isinstance(value, list) or not value:
        raise InvalidInput(
            "{field} must be a list of 1 to {max_actions} actions", field=field_name, max_actions=MAX_ACTIONS
        )
    if len(value) > MAX_ACTIONS:
        raise InvalidInput(
            "{field} must be a list of 1 to {max_actions} actions", field=field_name, max_actions=MAX_ACTIONS
        )
    clean: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        prefix = f"{field_name}[{i}]"
        params = _mapping(prefix, item)
        kind = params.pop("kind", None)
        spec = ACTIONS.get(kind) if isinstance(kind, str) else None
        if spec is None or where not in spec.where:
            allowed = sorted(k for k, s in ACTIONS.items() if where in s.where)
            raise InvalidInput(
                "unknown action '{kind}'; use one of: {kinds}",
                kind=str(kind),
                kinds=", ".join(allowed),
                field=f"{prefix}.kind",
            )
        action = {"kind": kind, **spec.check(f"{prefix}.", params)}
        if spec.prepare is not None:
            await spec.prepare(session, action)
        clean.append(action)
    return clean


def action_summary(action: Mapping[str, Any]) -> str:
    """How the run log and a refusal name one action (``kind`` plus its main parameter)."""
    params = ", ".join(f"{k}={v}" for k, v in action.items() if k not in ("kind", "subscription_id"))
    return f"{action.get('kind')}({params})"


# --- the built-in kinds ------------------------------------------------------------------------


def _int(field_name: str, value: Any, low: int = 1, high: int = INT_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            "{field} must be a whole number from {low} to {high}", field=field_name, low=low, high=high
        )
    return value


def _id_param(name: str) -> Check:
    def check(prefix: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return _clean(params, {name: lambda f, v: _int(f, v)}, (name,), prefix=prefix)

    return check


async def _run_canned(ctx: ActionContext, params: Mapping[str, Any]) -> None:
    session, conv = ctx.session, ctx.conversation
    reply = await session.get(m.CannedReply, params["reply_id"])
    if reply is None or (reply.queue_id is not None and reply.queue_id != conv.queue_id):
        raise InvalidInput(
            "canned reply {reply_id} is not available in this conversation's queue",
            reply_id=params["reply_id"],
            field="reply_id",
        )
    if reply.owner_user_id is not None and (ctx.who is None or reply.owner_user_id != ctx.who.id):
        raise InvalidInput(
            "canned reply {reply_id} is not available in this conversation's queue",
            reply_id=params["reply_id"],
            field="reply_id",
        )
    if ctx.who is not None:
        values = await placeholder_values(session, ctx.who, conv)
        await c.check_send_message(session, ctx.who, conv.id, render_placeholders(reply.body, values))
        return
    values = await _system_placeholders(session, conv)
    await do_send_automated(session, conv.id, render_placeholders(reply.body, values), locked=conv)


async def _system_placeholders(session: AsyncSession, conv: m.Conversation) -> dict[str, str]:
    """What a rule's reply fills in: the customer reads it, so nothing is masked for them."""
    contact = await session.get(m.Contact, conv.contact_id)
    operator = await session.get(m.User, conv.assigned_user_id) if conv.assigned_user_id else None
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id is not None else None
    return {
        "contact.name": (contact.name if contact else "") or "",
        "contact.email": (contact.email if contact else "") or "",
        "contact.phone": (contact.phone if contact else "") or "",
        "operator.name": (operator.display_name or operator.username) if operator else "",
        "queue.name": queue.name if queue else "",
    }


def _check_field(prefix: str, params: Mapping[str, Any]) -> dict[str, Any]:
    def value(f: str, v: Any) -> Any:
        if v is not None and not isinstance(v, str | int | float | bool):
            raise InvalidInput("{field} must be a text, a number, true/false or null", field=f)
        if isinstance(v, str) and len(v) > 1000:
            raise InvalidInput("{field} must be at most {max_len} characters", field=f, max_len=1000)
        return v

    return _clean(params, {"key": _text(64), "value": value}, ("key", "value"), prefix=prefix)


async def _run_field(ctx: ActionContext, params: Mapping[str, Any]) -> None:
    assert ctx.who is not None  # macro only
    await check_update_card(ctx.session, ctx.who, ctx.conversation.id, {params["key"]: params["value"]})


async def _run_transfer(ctx: ActionContext, params: Mapping[str, Any]) -> None:
    if ctx.who is not None:
        await c.check_transfer(ctx.session, ctx.who, ctx.conversation.id, to_queue_id=params["queue_id"])
        return
    await do_transfer_to_queue(ctx.session, ctx.conversation, params["queue_id"])


async def do_transfer_to_queue(session: AsyncSession, conv: m.Conversation, queue_id: int) -> None:
    """A rule moves a waiting or handled conversation to another queue, as ``check_transfer``
    does for an operator (same offers cancelled, same place kept, same event)."""
    S = m.ConversationStatus
    if conv.status not in (S.ACTIVE, S.ON_HOLD, S.QUEUED, S.OFFERED):
        raise InvalidInput(
            "a {status} conversation can't be transferred", status=conv.status, field="queue_id"
        )
    if conv.queue_id == queue_id:
        return
    queue = await session.get(m.Queue, queue_id)
    if queue is None:
        raise InvalidInput("queue {to_queue_id} does not exist", to_queue_id=queue_id, field="queue_id")
    from_user = conv.assigned_user_id
    await _cancel_pending_offers(session, conv)
    await c.do_enqueue(session, conv, queue, now=datetime.now(UTC), keep_place=True)
    conv.preferred_user_id = None
    c._event(
        session,
        "conversation.transferred",
        conv,
        from_user_id=from_user,
        to_user_id=None,
        to_queue_id=queue_id,
        note="",
    )
    if from_user is not None:
        await do_refresh_activity_of(session, from_user)


async def _run_close(ctx: ActionContext, params: Mapping[str, Any]) -> None:
    assert ctx.who is not None  # macro only
    await c.check_close(ctx.session, ctx.who, ctx.conversation.id, params["result_code_id"])


def _check_priority(prefix: str, params: Mapping[str, Any]) -> dict[str, Any]:
    return _clean(
        params, {"priority": lambda f, v: _int(f, v, 0, MAX_PRIORITY)}, ("priority",), prefix=prefix
    )


async def _run_priority(ctx: ActionContext, params: Mapping[str, Any]) -> None:
    """Raise only: a rule never pushes a conversation back behind others."""
    conv = ctx.conversation
    if conv.priority >= params["priority"]:
        return
    conv.priority = params["priority"]
    await ctx.session.flush()
    c._event(ctx.session, "conversation.priority_changed", conv)


def _check_webhook(prefix: str, params: Mapping[str, Any]) -> dict[str, Any]:
    clean = _clean(
        params, {"url": _text(2048), "subscription_id": lambda f, v: _int(f, v)}, ("url",), prefix=prefix
    )
    try:
        check_subscription(clean["url"], [], {})
    except InvalidInput as exc:
        exc.field = f"{prefix}url"
        raise
    return clean


async def _prepare_webhook(session: AsyncSession, action: dict[str, Any]) -> None:
    """The signing subscription of this URL, made once: its event type matches no real event,
    so the relay's webhook fan-out never sends to it; only a rule's run does."""
    sub = (
        await session.get(m.WebhookSubscription, action["subscription_id"])
        if "subscription_id" in action
        else None
    )
    if sub is not None and sub.url == action["url"]:
        return
    sub = m.WebhookSubscription(
        name=f"automation rule → {action['url']}"[:128],
        url=action["url"],
        secret=secrets.token_urlsafe(32),
        event_types=["automation/rule"],
        filter={},
        active=True,
        kind="generic",
        created_at=datetime.now(UTC),
    )
    session.add(sub)
    await session.flush()
    action["subscription_id"] = sub.id


async def _run_webhook(ctx: ActionContext, params: Mapping[str, Any]) -> None:
    """The triggering event, signed and retried by the webhook delivery machinery."""
    assert ctx.event is not None  # rule only
    ctx.deliveries.append(await add_delivery(ctx.session, params["subscription_id"], ctx.event.id))


async def add_delivery(session: AsyncSession, subscription_id: int, event_id: int) -> int:
    """One pending delivery of ``event_id`` to a subscription (idempotent per pair)."""
    found = await session.scalar(
        select(m.WebhookDelivery.id).where(
            m.WebhookDelivery.subscription_id == subscription_id, m.WebhookDelivery.event_id == event_id
        )
    )
    if found is not None:
        return int(found)
    now = datetime.now(UTC)
    row = m.WebhookDelivery(
        subscription_id=subscription_id,
        event_id=event_id,
        state="pending",
        attempts=0,
        next_attempt_at=now,
        last_error="",
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row.id


async def _run_label(ctx: ActionContext, params: Mapping[str, Any]) -> None:
    """A macro labels as the operator (their scope and handling rule); a rule as the system,
    with the same fit rule: a queue's label only on that queue's conversations."""
    label_id = int(params["label_id"])
    if ctx.who is not None:
        await check_set_labels(ctx.session, ctx.who, ctx.conversation.id, add=[label_id])
        return
    label = (await labels_by_id(ctx.session, [label_id])).get(label_id)
    if label is None:
        raise InvalidInput("label {label_id} does not exist", label_id=label_id, field="label_id")
    if label.queue_id is not None and label.queue_id != ctx.conversation.queue_id:
        raise InvalidInput("label '{name}' belongs to another queue", name=label.name, field="label_id")
    await do_set_labels(ctx.session, ctx.conversation, add=[label_id])


register_action("canned_reply", ActionSpec(_id_param("reply_id"), _run_canned))
register_action("set_field", ActionSpec(_check_field, _run_field, frozenset({MACRO})))
register_action("transfer", ActionSpec(_id_param("queue_id"), _run_transfer))
register_action("close", ActionSpec(_id_param("result_code_id"), _run_close, frozenset({MACRO})))
register_action("label", ActionSpec(_id_param("label_id"), _run_label))
register_action("priority", ActionSpec(_check_priority, _run_priority, frozenset({RULE})))
register_action("webhook", ActionSpec(_check_webhook, _run_webhook, frozenset({RULE}), _prepare_webhook))
