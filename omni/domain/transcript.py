"""The transcript of a chat mailed to the customer, on request (an operator, the API) or when
the conversation closes (the queue's ``SlaPolicy.transcript_at_close``).

The mail goes through the one SMTP setting (``Settings.smtp``, the same server as scheduled
reports) as ``text/plain`` with an ``text/html`` alternative; every message body is escaped
(customer text is never markup). Private notes and system lines are left out: the customer
gets what was said to them. A request is a persisted deadline (``TRANSCRIPT_MAIL``, due at
once): a send that fails is retried after ``smtp.retry_seconds`` (doubling) up to
``smtp.max_attempts``, and a restart loses nothing. The PDF of the same transcript
(``omni.domain.transcript_pdf``) is attached unless ``smtp.transcript_pdf`` is off.

``collect`` is the one reading of what the customer was told, shared by the mail, the PDF
(staff download, the widget's download, Telegram's ``/transcript``): customer and operator
messages only, operators by their display name (never the login), times in the customer's
zone when their card has one, attachments by name.
"""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

__all__ = [
    "TRANSCRIPT_MAIL",
    "Said",
    "Transcript",
    "build_message",
    "check_request",
    "collect",
    "do_request",
    "handler",
]

TRANSCRIPT_MAIL = "transcript_mail"
"""Deadline kind: mail a conversation's transcript (``payload``: to, lang, attempt)."""

SUBJECT = _l("Your conversation #{id}")
INTRO = _l("Here is the transcript of your conversation with us.")
CUSTOMER = _l("You")
OPERATOR = _l("Operator")
ATTACHED = _l("Attached: {names}")


@dataclass(frozen=True)
class Said:
    """One message as the customer saw it."""

    at: datetime
    """Aware, in the transcript's zone."""
    who: str
    customer: bool
    body: str
    files: list[str] = field(default_factory=list)
    """Names of the attached files (buttons and other non-file attachments left out)."""


@dataclass(frozen=True)
class Transcript:
    conversation_id: int
    lang: str
    zone: str
    """The IANA zone the times are in (``UTC`` when the customer's is not known)."""
    subject: str
    intro: str
    lines: list[Said]

    def stamp(self, said: Said) -> str:
        return said.at.strftime("%Y-%m-%d %H:%M")

    def attached(self, said: Said) -> str:
        return gettext(self.lang, ATTACHED, names=", ".join(said.files)) if said.files else ""


def _zone(name: str | None) -> tuple[str, tzinfo]:
    if name:
        try:
            return name, ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.info("transcript: unknown time zone %r on a card, using UTC", name)
    return "UTC", UTC


def customer_language(conv: m.Conversation) -> str:
    """The language the customer wrote in (``variables.lang``), ru or en."""
    return normalize(str((conv.variables or {}).get("lang") or ""))


async def collect(session: AsyncSession, conv: m.Conversation, lang: str) -> Transcript:
    """What was said to and by the customer in ``conv`` (no notes, no system lines)."""
    contact = await session.get(m.Contact, conv.contact_id)
    zone_name, zone = _zone(contact.timezone if contact is not None else None)
    rows = (
        await session.execute(
            select(m.Message, m.User.display_name)
            .outerjoin(m.User, m.User.id == m.Message.author_user_id)
            .where(m.Message.conversation_id == conv.id, m.Message.direction.in_(("in", "out")))
            .order_by(m.Message.id)
        )
    ).all()
    customer = (contact.name if contact is not None else "") or gettext(lang, CUSTOMER)
    operator = gettext(lang, OPERATOR)
    lines = [
        Said(
            at=said.created_at.astimezone(zone),
            who=customer if said.direction == "in" else (display or operator),
            customer=said.direction == "in",
            body=said.body or "",
            files=[
                str(a.get("name") or "file")
                for a in (said.attachments or [])
                if isinstance(a, dict) and "kind" not in a and a.get("id")
            ],
        )
        for said, display in rows
    ]
    return Transcript(
        conversation_id=conv.id,
        lang=lang,
        zone=zone_name,
        subject=gettext(lang, SUBJECT, id=conv.id),
        intro=gettext(lang, INTRO),
        lines=lines,
    )


async def do_request(
    session: AsyncSession, conv: m.Conversation, to: str | None, *, by: str, lang: str | None = None
) -> m.Deadline | None:
    """Plan the mail to ``to`` (default: the address on the customer's card) in ``lang``
    (default: the customer's); ``None`` when there is no address to send to."""
    if to is None:
        contact = await session.get(m.Contact, conv.contact_id)
        to = (contact.email or "").strip() if contact is not None else ""
        if not to or len(to) > EMAIL_MAX or not EMAIL.match(to):
            return None
    lang = normalize(lang) if lang else customer_language(conv)
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
    from omni.domain import transcript_pdf  # renders what this module collects

    said = await collect(session, conv, lang)
    lines = [(f"{said.stamp(x)} {said.zone}", x.who, x.body, said.attached(x)) for x in said.lines]
    text = "\n\n".join(
        [
            said.intro,
            *(f"[{at}] {who}:\n{body}" + (f"\n{files}" if files else "") for at, who, body, files in lines),
        ]
    )
    esc = html.escape
    items = "".join(
        f"<p><small>{esc(at)}</small> <b>{esc(who)}</b><br>"
        f'<span style="white-space:pre-wrap">{esc(body)}</span>'
        + (f"<br><small>{esc(files)}</small>" if files else "")
        + "</p>"
        for at, who, body, files in lines
    )
    page = (
        f'<!doctype html><html lang="{esc(lang)}"><body>'
        f"<h1>{esc(said.subject)}</h1><p>{esc(said.intro)}</p>{items}</body></html>"
    )
    msg = EmailMessage()
    msg["Subject"] = said.subject
    msg["From"] = smtp.from_address
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=smtp.from_address.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(page, subtype="html")
    if smtp.transcript_pdf:
        pdf = await asyncio.to_thread(transcript_pdf.render, said)
        msg.add_attachment(
            pdf, maintype="application", subtype="pdf", filename=transcript_pdf.filename(conv.id)
        )
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


async def visitor_request(
    session: AsyncSession,
    smtp: SmtpSettings,
    *,
    kind: str,
    identity: str,
    inbox_id: int,
    email: str | None,
    lang: str,
) -> str:
    """A customer asks from the widget (or another channel) for the transcript of their latest
    conversation in this inbox, to ``email`` or the address on their card. Refusals name the
    field: ``email`` when none is known (the widget then asks for one) or it is not valid."""
    from omni.domain import identities  # the customer's side: their identity, not a login

    if not smtp.host:
        raise InvalidInput("mail is not configured (OMNI_SMTP_HOST)", field="email")
    conv_id = await identities.latest_conversation_id(session, kind, identity, inbox_id)
    conv = await session.get(m.Conversation, conv_id) if conv_id is not None else None
    if conv is None or conv.medium != m.Medium.CHAT:
        raise InvalidInput("there is no conversation yet", field="conversation_id")
    address = (email or "").strip() or None
    if address is not None and (len(address) > EMAIL_MAX or not EMAIL.match(address)):
        raise InvalidInput("{field}: {address} is not an e-mail address", field="email", address=address[:80])
    row = await do_request(session, conv, address, by="customer", lang=lang)
    if row is None:
        raise InvalidInput("give an e-mail address to send the transcript to", field="email")
    return str(row.payload["to"])
