"""Handling: what the operator does with an accepted conversation (hold, reply, transfer,
end, close) and how it ends when the customer leaves or wrap-up runs out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import deadlines
from omni.domain.auth import Principal, access_conversation
from omni.domain.conversations._common import MAX_BODY, S, _event, _message_event, insert_message_announced
from omni.domain.conversations.callbacks import _add_callback
from omni.domain.conversations.offers import _cancel_pending_offers
from omni.domain.conversations.queueing import do_enqueue
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.domain.events import emit
from omni.domain.outbound import preview
from omni.domain.presence import do_refresh_activity_of
from omni.i18n import Label


def _require_handler(conv: m.Conversation, who: Principal) -> None:
    if conv.assigned_user_id != who.id and who.role not in (m.Role.ADMIN, m.Role.SUPERVISOR):
        raise PermissionDenied("only the operator handling the conversation can do this")


async def check_hold(session: AsyncSession, who: Principal, conv_id: int, hold: bool) -> m.Conversation:
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    now = datetime.now(UTC)
    if hold:
        if conv.status != S.ACTIVE:
            raise Conflict(
                "only an active conversation can be put on hold (it is {status})",
                status=Label("status", conv.status),
            )
        conv.status = S.ON_HOLD
        conv.hold_started_at = now
        _event(session, "conversation.on_hold", conv)
    else:
        if conv.status != S.ON_HOLD:
            raise Conflict(
                "the conversation is not on hold (it is {status})", status=Label("status", conv.status)
            )
        conv.status = S.ACTIVE
        if conv.hold_started_at:
            conv.hold_seconds += int((now - conv.hold_started_at).total_seconds())
        conv.hold_started_at = None
        _event(session, "conversation.resumed", conv)
    return conv


async def do_end(session: AsyncSession, conv: m.Conversation, *, by: str) -> None:
    """Handling is over (operator ended it, or the customer left): start wrap-up."""
    now = datetime.now(UTC)
    if conv.status == S.ON_HOLD and conv.hold_started_at:
        conv.hold_seconds += int((now - conv.hold_started_at).total_seconds())
        conv.hold_started_at = None
    conv.status = S.WRAP_UP
    conv.wrap_up_at = now
    conv.closed_by = by
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    seconds = queue.wrap_up_seconds if queue else 0
    deadlines.schedule(session, deadlines.WRAP_UP, conv.id, now + timedelta(seconds=max(0, seconds)))
    _event(session, "conversation.wrap_up", conv, wrap_up_seconds=seconds)
    if conv.assigned_user_id:
        await do_refresh_activity_of(session, conv.assigned_user_id)


async def check_end(session: AsyncSession, who: Principal, conv_id: int) -> m.Conversation:
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    if conv.status not in (S.ACTIVE, S.ON_HOLD):
        raise Conflict(
            "only an active conversation can be ended (it is {status})", status=Label("status", conv.status)
        )
    await do_end(session, conv, by="operator")
    return conv


async def _validate_result_code(session: AsyncSession, conv: m.Conversation, code_id: int) -> m.ResultCode:
    code = await session.get(m.ResultCode, code_id)
    if code is None or not code.active:
        raise InvalidInput(
            "result code {code_id} does not exist or is inactive", code_id=code_id, field="result_code_id"
        )
    campaign_codes = await preview.campaign_code_ids(session, conv)
    if campaign_codes is not None:
        if code_id not in campaign_codes:
            raise InvalidInput(
                "result code '{code}' is not one of this campaign's", code=code.code, field="result_code_id"
            )
    elif conv.queue_id is not None:
        allowed = set(
            await session.scalars(
                select(m.QueueResultCode.result_code_id).where(m.QueueResultCode.queue_id == conv.queue_id)
            )
        )
        if allowed and code_id not in allowed:
            raise InvalidInput(
                "result code '{code}' is not allowed in this queue", code=code.code, field="result_code_id"
            )
    return code


async def do_close(
    session: AsyncSession, conv: m.Conversation, result_code_id: int | None, *, by: str | None = None
) -> None:
    now = datetime.now(UTC)
    if conv.status in (S.ACTIVE, S.ON_HOLD):
        await do_end(session, conv, by=by or "operator")
    conv.status = S.CLOSED
    conv.closed_at = now
    conv.result_code_id = result_code_id
    await deadlines.cancel(session, deadlines.WRAP_UP, conv.id)
    _event(session, "conversation.closed", conv, result_by=by or "operator")
    if conv.assigned_user_id:
        await do_refresh_activity_of(session, conv.assigned_user_id)


async def check_close(
    session: AsyncSession,
    who: Principal,
    conv_id: int,
    result_code_id: int,
    *,
    callback_at: datetime | None = None,
    for_me: bool = False,
) -> m.Conversation:
    """Close with a result code (from active/on-hold directly, or from wrap-up).

    A campaign conversation (placed by the outbound engine) also gives its target the code's
    campaign action; ``callback_at``/``for_me`` are the callback the operator picked
    (``omni.domain.outbound.preview.do_apply_conversation_result``)."""
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    if conv.status not in (S.ACTIVE, S.ON_HOLD, S.WRAP_UP):
        raise Conflict("a {status} conversation can't be closed", status=Label("status", conv.status))
    await _validate_result_code(session, conv, result_code_id)
    await preview.do_apply_conversation_result(
        session, conv, result_code_id, user_id=who.id, callback_at=callback_at, for_me=for_me
    )
    await do_close(session, conv, result_code_id, by="operator")
    return conv


async def do_wrap_up_expired(session: AsyncSession, conv_id: int) -> None:
    """Wrap-up ran out: close with the queue's default result code."""
    conv = await session.scalar(select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update())
    if conv is None or conv.status != S.WRAP_UP:
        return
    queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
    code_id = queue.default_result_code_id if queue else None
    await preview.do_apply_conversation_result(
        session, conv, code_id, user_id=conv.assigned_user_id, by_timeout=True
    )
    await do_close(session, conv, code_id, by="timeout")


async def do_customer_left(
    session: AsyncSession, conv_id: int, *, locked: m.Conversation | None = None
) -> m.Conversation | None:
    """The customer went away (hung up, closed the chat): abandoned if still waiting.

    ``locked``: the conversation, when the caller already holds its row ``FOR UPDATE``."""
    conv = locked if locked is not None and locked.id == conv_id else None
    if conv is None:
        conv = await session.scalar(
            select(m.Conversation).where(m.Conversation.id == conv_id).with_for_update()
        )
    if conv is None:
        return None
    if conv.status in (S.QUEUED, S.OFFERED, S.BOT):
        was_waiting = conv.status != S.BOT
        if conv.status == S.OFFERED:
            # Only an offered conversation has pending offers: every way back to ``queued``
            # ends them first (``_offer_ended``, ``_cancel_pending_offers``).
            await _cancel_pending_offers(session, conv)
        now = datetime.now(UTC)
        conv.status = S.ABANDONED
        conv.assigned_user_id = None
        conv.closed_at = now
        conv.closed_by = "customer"
        await deadlines.cancel(session, deadlines.QUEUE_TIMEOUT, conv.id, deadlines.ESCALATION)
        wait = (now - (conv.first_enqueued_at or conv.created_at)).total_seconds()
        _event(session, "conversation.abandoned", conv, wait_seconds=round(wait, 3))
        if was_waiting:
            await _add_callback(session, conv, reason="abandoned")
    elif conv.status in (S.ACTIVE, S.ON_HOLD):
        await do_end(session, conv, by="customer")
    return conv


async def check_transfer(
    session: AsyncSession,
    who: Principal,
    conv_id: int,
    *,
    to_user_id: int | None = None,
    to_queue_id: int | None = None,
    note: str = "",
) -> m.Conversation:
    """Hand the conversation to another operator or queue; the note goes to the next handler."""
    if (to_user_id is None) == (to_queue_id is None):
        raise InvalidInput("transfer needs exactly one of to_user_id or to_queue_id", field="to_user_id")
    conv = await access_conversation(session, who, conv_id, for_update=True)
    _require_handler(conv, who)
    if conv.status not in (S.ACTIVE, S.ON_HOLD, S.QUEUED, S.OFFERED):
        raise Conflict("a {status} conversation can't be transferred", status=Label("status", conv.status))
    from_user = conv.assigned_user_id
    if to_queue_id is not None:
        queue = await session.get(m.Queue, to_queue_id)
        if queue is None:
            raise InvalidInput(
                "queue {to_queue_id} does not exist", to_queue_id=to_queue_id, field="to_queue_id"
            )
    else:
        assert to_user_id is not None
        target = await session.get(m.User, to_user_id)
        if target is None or not target.is_active or target.role != m.Role.OPERATOR:
            raise InvalidInput(
                "operator {to_user_id} does not exist", to_user_id=to_user_id, field="to_user_id"
            )
        if to_user_id == conv.assigned_user_id:
            raise InvalidInput("the conversation is already with this operator", field="to_user_id")
        queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id else None
        if queue is None:
            raise InvalidInput("the conversation has no queue", field="to_user_id")
    await _cancel_pending_offers(session, conv)
    if note.strip():
        session.add(
            m.Message(
                conversation_id=conv.id,
                inbox_id=conv.inbox_id,
                direction="note",
                author_user_id=who.id,
                body=note[:MAX_BODY],
                attachments=[],
                delivery="stored",
            )
        )
    await do_enqueue(session, conv, queue, now=datetime.now(UTC), keep_place=True)
    conv.preferred_user_id = to_user_id
    _event(
        session,
        "conversation.transferred",
        conv,
        from_user_id=from_user,
        to_user_id=to_user_id,
        to_queue_id=to_queue_id,
        note=note[:MAX_BODY],
    )
    if from_user is not None:
        await do_refresh_activity_of(session, from_user)
    return conv


async def check_send_message(
    session: AsyncSession,
    who: Principal,
    conv_id: int,
    body: str,
    *,
    client_id: str | None = None,
    private: bool = False,
    attachments: list[dict[str, Any]] | None = None,
) -> m.Message:
    """An operator reply (or a private note): stored, then delivered by the channel adapter."""
    if not body.strip() and not attachments:
        raise InvalidInput("message is empty", field="body")
    if len(body) > MAX_BODY:
        raise InvalidInput("message is longer than {max_body} characters", max_body=MAX_BODY, field="body")
    conv = await access_conversation(session, who, conv_id, for_update=True)
    if not private:
        _require_handler(conv, who)
        if conv.status not in (S.ACTIVE, S.ON_HOLD, S.WRAP_UP):
            raise Conflict("can't reply in a {status} conversation", status=Label("status", conv.status))
    now = datetime.now(UTC)
    message = m.Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="note" if private else "out",
        author_user_id=who.id,
        body=body,
        attachments=attachments or [],
        client_id=client_id,
        delivery="stored" if private else "pending",
        created_at=now,
    )
    if client_id:
        # One statement: stored (INSERT … ON CONFLICT: a resend with the same client id returns
        # the stored reply), the conversation touched (not for a note) and the event written.
        inserted = await insert_message_announced(session, conv, message, touch=not private)
        if inserted is None:
            same = (m.Message.conversation_id == conv.id, m.Message.client_id == client_id)
            existing = await session.scalar(select(m.Message).where(*same))
            assert existing is not None  # the only unique key this insert can collide on
            return existing
        return inserted
    session.add(message)
    await session.flush()
    if not private:
        conv.last_message_at = now
    _message_event(session, conv, message)
    return message


async def do_mark_deliveries(session: AsyncSession, marks: Sequence[tuple[int, str, str]]) -> None:
    """``do_mark_delivery`` for each ``(message_id, state, error)`` in order, with the same
    rows and events, but the messages and their conversations read in one statement: the
    outbound dispatcher records a relay batch's receipts at once (two reads per reply were
    most of that transaction)."""
    for _, state, _ in marks:
        if state not in ("sent", "delivered", "read", "failed"):
            raise InvalidInput("unknown delivery state '{state}'", state=state, field="delivery")
    ids = sorted({message_id for message_id, _, _ in marks})
    rows = await session.execute(
        select(m.Message, m.Conversation)
        .join(m.Conversation, m.Conversation.id == m.Message.conversation_id)
        .where(m.Message.id.in_(ids))
    )
    found = {msg.id: (msg, conv) for msg, conv in rows}
    for message_id, state, error in marks:
        if message_id not in found:
            raise NotFound("message {message_id} not found", message_id=message_id)
        msg, conv = found[message_id]
        msg.delivery = state
        emit(
            session,
            "message.delivery",
            {"message_id": msg.id, "delivery": state, "error": error},
            conversation_id=conv.id,
            queue_id=conv.queue_id,
            user_id=conv.assigned_user_id,
        )


async def do_mark_delivery(session: AsyncSession, message_id: int, state: str, error: str = "") -> None:
    """Channel adapters report delivered / read / failed; operators see the mark."""
    if state not in ("sent", "delivered", "read", "failed"):
        raise InvalidInput("unknown delivery state '{state}'", state=state, field="delivery")
    msg = await session.get(m.Message, message_id)
    if msg is None:
        raise NotFound("message {message_id} not found", message_id=message_id)
    msg.delivery = state
    conv = await session.get(m.Conversation, msg.conversation_id)
    assert conv is not None
    emit(
        session,
        "message.delivery",
        {"message_id": msg.id, "delivery": state, "error": error},
        conversation_id=conv.id,
        queue_id=conv.queue_id,
        user_id=conv.assigned_user_id,
    )
