"""The customer's ``/transcript`` command: the PDF of their latest conversation here, sent
back as a document. A command, not a message: it is never stored as the customer's text, so
asking for the transcript of a conversation that has just closed doesn't reopen it (or start a
new one whose transcript would hold only the command)."""

from __future__ import annotations

import asyncio
import logging

from omni.db import models as m
from omni.domain import identities, transcript, transcript_pdf
from omni.domain.errors import DomainError
from omni.services import Services

log = logging.getLogger(__name__)

TRANSCRIPT = "/transcript"
"""The customer's command for the PDF of their conversation, sent back as a document."""


def asks_transcript(body: str) -> bool:
    words = body.strip().split(maxsplit=1)
    return bool(words) and words[0].lower().split("@")[0] == TRANSCRIPT


async def send_transcript(
    services: Services, kind: str, inbox_id: int, identity: str, update_key: str
) -> None:
    """The PDF stored with the conversation and sent by the bot's paced sender (a bot message:
    the operator sees it went). Rate limited per customer like the widget's
    (``widget.transcripts_per_minute``); a re-delivered update (``update_key``) sends nothing
    more; a customer with no conversation here gets nothing."""
    settings = services.settings
    once = services.limits.limiter("telegram-transcript-update", 1)
    if update_key and not await once.allow(f"{inbox_id}:{update_key}"):
        return
    limiter = services.limits.limiter("telegram-transcript", settings.widget.transcripts_per_minute)
    if not await limiter.allow(identity):
        log.info("telegram: /transcript from %s refused (rate limit)", identity)
        return
    conv_id = None
    try:
        async with services.db.transaction() as session:
            conv_id = await identities.latest_conversation_id(session, kind, identity, inbox_id)
            if conv_id is None:
                log.info("telegram: /transcript from %s: no conversation in inbox %s yet", identity, inbox_id)
                return
            conv = await session.get_one(m.Conversation, conv_id)
            lang = transcript.customer_language(conv)
            said = await transcript_pdf.visitor_pdf(session, kind, identity, inbox_id, conv_id, lang)
        pdf = await asyncio.to_thread(transcript_pdf.render, said)
        async with services.db.transaction() as session:
            await transcript_pdf.do_send_pdf(session, conv_id, pdf, data_dir=settings.data_dir, lang=lang)
    except DomainError as exc:
        log.warning("telegram: transcript of conversation %s not sent: %s", conv_id, exc.message)
