"""The transcript of a chat mailed to the customer, on request (an operator, the API) or when
the conversation closes (the queue's ``SlaPolicy.transcript_at_close``).

The mail goes through the one SMTP setting (``Settings.smtp``, the same server as scheduled
reports) as ``text/plain`` with an ``text/html`` alternative; every message body is escaped
(customer text is never markup). Private notes and system lines are left out: the customer
gets what was said to them. A request is a persisted deadline (``TRANSCRIPT_MAIL``, due at
once): a send that fails is retried after ``smtp.retry_seconds`` (doubling) up to
``smtp.max_attempts``, and a restart loses nothing. No PDF: a mail client prints the HTML part.
"""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.db.unit_of_work import DeadlineHandler
from omni.domain import audit, deadlines
from omni.domain.auth import Principal, access_conversation
from omni.domain.errors import InvalidInput
from omni.domain.reports.mailing import deliver
from omni.domain.reports.schedules import EMAIL, EMAIL_MAX
from omni.i18n import _l, gettext, normalize
from omni.settings import SmtpSettings

log = logging.getLogger(__name__)

__all__ = ["TRANSCRIPT_MAIL", "build_message", "check_request", "do_request", "handler"]

TRANSCRIPT_MAIL = "transcript_mail"
"""Deadline kind: mail a conversation's transcript (``payload``: to, lang, attempt)."""

SUBJECT = _l("Your conversation #{id}")
INTRO = _l("Here is the transcript of your conversation with us.")
CUSTOMER = _l("You")
OPERATOR = _l("Operator")


async def do_request(
    session: AsyncSession, conv: m.Conversation, to: str | None, *, by: str
) -> m.Deadline | None:
    """Plan the mail to ``to`` (default: the address on the customer's card); ``None`` when
    there is no address to send to."""
    if to is None:
        contact = await session.get(m.Contact, conv.contact_id)
        to = (contact.email or "").strip() if contact is not None else ""
        if not to or len(to) > EMAIL_MAX or not EMAIL.match(to):
            return None
    lang = normalize(str((conv.variables or {}).get("lang") or ""))
    return deadlines.schedule(
        session, TRANSCRIPT_MAIL, conv.id, datetime.now(UTC), {"to": to, "lang": lang, "attempt": 0, "by": by}
    )


async def check_request(
    session: AsyncSession, who: Principal, conversation_id: int, email: str | None, smtp: SmtpSettings
) -> str:
    """An operator (or supervisor) sends the customer the transcript; audited. Returns the address."""
    conv = await access_conversation(session, who, conversation_id)
    if not smtp.host:
        raise InvalidInput("mail is not configured (OMNI_SMTP_HOST)", field="email")
    if conv.medium != m.Medium.CHAT:
        raise InvalidInput("only a chat has a transcript", field="conversation_id")
    address = (email or "").strip() or None
    if address is not None and (len(address) > EMAIL_MAX or not EMAIL.match(address)):
        raise InvalidInput("{field}: {address} is not an e-mail address", field="email", address=address[:80])
    row = await do_request(session, conv, address, by="operator")
    if row is None:
        raise InvalidInput("the customer's card has no e-mail address; give one", field="email")
    sent_to = str(row.payload["to"])
    audit.record(
        session,
        who,
        "transcript.request",
        object_type="conversation",
        object_id=conv.id,
        data={"to": sent_to},
    )
    return sent_to


async def build_message(
    session: AsyncSession, smtp: SmtpSettings, conv: m.Conversation, to: str, lang: str
) -> EmailMessage:
    contact = await session.get(m.Contact, conv.contact_id)
    rows = (
        await session.execute(
            select(m.Message, m.User.display_name, m.User.username)
            .outerjoin(m.User, m.User.id == m.Message.author_user_id)
            .where(m.Message.conversation_id == conv.id, m.Message.direction.in_(("in", "out")))
            .order_by(m.Message.id)
        )
    ).all()
    customer = (contact.name if contact is not None else "") or gettext(lang, CUSTOMER)
    lines: list[tuple[str, str, str]] = []
    for said, display, username in rows:
        who = customer if said.direction == "in" else (display or username or gettext(lang, OPERATOR))
        lines.append((said.created_at.strftime("%Y-%m-%d %H:%M UTC"), who, said.body or ""))
    subject = gettext(lang, SUBJECT, id=conv.id)
    intro = gettext(lang, INTRO)
    text = "\n\n".join([intro, *(f"[{at}] {who}:\n{body}" for at, who, body in lines)])
    esc = html.escape
    items = "".join(
        f"<p><small>{esc(at)}</small> <b>{esc(who)}</b><br>"
        f'<span style="white-space:pre-wrap">{esc(body)}</span></p>'
        for at, who, body in lines
    )
    page = (
        f'<!doctype html><html lang="{esc(lang)}"><body>'
        f"<h1>{esc(subject)}</h1><p>{esc(intro)}</p>{items}</body></html>"
    )
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = smtp.from_address
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=smtp.from_address.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(page, subtype="html")
    return msg


def handler(smtp: SmtpSettings) -> DeadlineHandler:
    """The ``TRANSCRIPT_MAIL`` deadline handler bound to the mail settings (the composition root
    plugs it in through ``Database.plugins``)."""

    async def fire(session: AsyncSession, deadline: m.Deadline) -> None:
        payload: dict[str, Any] = dict(deadline.payload or {})
        conv = await session.get(m.Conversation, deadline.ref_id)
        if conv is None or not smtp.host:
            log.warning(
                "transcript of conversation %s not mailed: %s",
                deadline.ref_id,
                "no such conversation" if conv is None else "mail is not configured",
            )
            return
        msg = await build_message(session, smtp, conv, str(payload["to"]), str(payload.get("lang") or "en"))
        try:
            await asyncio.to_thread(deliver, smtp, msg)
        except Exception as exc:  # a mail server's many failures all mean "try again later"
            attempt = int(payload.get("attempt", 0)) + 1
            if attempt >= smtp.max_attempts:
                log.error("transcript of conversation %s to %s given up: %s", conv.id, payload["to"], exc)
                return
            log.warning("transcript of conversation %s failed (%s); retrying", conv.id, exc)
            delay = smtp.retry_seconds * 2 ** (attempt - 1)
            deadlines.schedule(
                session, TRANSCRIPT_MAIL, conv.id, datetime.now(UTC) + timedelta(seconds=delay),
                payload | {"attempt": attempt},
            )  # fmt: skip

    return fire
