"""The PDF transcript (omni/domain/transcript_pdf.py) read back with pypdf: Cyrillic renders as
text, private notes and system lines are absent, operators appear by the name customers see
(never their login), times are in the customer's zone, attachments are listed by name; the
transcript mail carries the same PDF; a customer gets only their own conversation. On SQLite,
with a loopback SMTP server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest
import pytest_asyncio
from sqlalchemy import select, update

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import transcript, transcript_pdf
from omni.domain.engine import run_due_deadlines
from omni.domain.errors import InvalidInput, NotFound
from omni.domain.routing import do_route_pending
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite
from tests.reports.test_mailing import Smtp
from tests.reports.test_mailing import smtp as smtp  # the loopback server fixture, re-exported


@pytest_asyncio.fixture
async def lite(tmp_path: Path, smtp: Smtp, sqlite_template: Path) -> AsyncIterator[Services]:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40, smtp=smtp.settings)
    copy_sqlite(sqlite_template, tmp_path)
    services = build_services(settings, run_background=False)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


async def _chat(svc: Services) -> dict[str, Any]:
    """Anna (Moscow time) writes in Russian with a file, Olga (login ``olga.k``) answers, adds
    a private note, and a system line is recorded."""
    async with svc.db.transaction() as s:
        op = await f.user(s, "olga.k", capacity=3, chat_weight=1, display_name="Ольга")
        q = await f.queue(s, "support", [op])
        chat = await f.inbox(s, q, "widget")
        other_inbox = await f.inbox(s, q, "widget")
        await f.set_status(s, op)
    async with svc.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            c.InboundMessage(
                inbox_id=chat.id,
                identity_kind="widget",
                identity_value="visitor-anna",
                body="Здравствуйте, где мой заказ №42?",
                contact_name="Анна",
                attachments=[{"id": "f1", "name": "чек.png", "type": "image/png", "size": 3, "url": "/x"}],
                language="ru",
            ),
        )
        conv_id = res.conversation.id
        await s.execute(
            update(m.Contact).where(m.Contact.id == res.conversation.contact_id).values(timezone="Asia/Tokyo")
        )
        await s.execute(
            update(m.Message)
            .where(m.Message.conversation_id == conv_id)
            .values(created_at=datetime(2026, 3, 1, 9, 5, tzinfo=UTC))
        )
    await do_route_pending(svc.db)
    async with svc.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.user_id == op.id))
        assert offer is not None
        await c.check_accept_offer(s, f.who(op), offer.id)
        await c.check_send_message(s, f.who(op), conv_id, "Добрый день! Заказ уже в пути.")
        await c.check_send_message(s, f.who(op), conv_id, "клиент ругается, СЕКРЕТ", private=True)
        s.add(m.Message(conversation_id=conv_id, direction="system", body="системная строка"))
    return {"op": op, "conv": conv_id, "inbox": chat.id, "other_inbox": other_inbox.id}


async def test_the_pdf_has_the_chat_in_cyrillic_and_no_notes(lite: Services) -> None:
    w = await _chat(lite)
    async with lite.db.transaction() as s:
        said = await transcript_pdf.check_staff_pdf(s, f.who(w["op"]), w["conv"])
        audited = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "transcript.download"))
        assert audited is not None and audited.object_id == str(w["conv"])
    text = pdf_text(transcript_pdf.render(said))
    flat = " ".join(text.split())
    assert f"Ваше обращение №{w['conv']}" in flat  # in the customer's language (ru)
    assert "Здравствуйте, где мой заказ №42?" in flat
    assert "Добрый день! Заказ уже в пути." in flat
    assert "Анна" in flat and "Ольга" in flat and "olga.k" not in flat
    assert "2026-03-01 18:05" in flat and "Asia/Tokyo" in flat  # 09:05 UTC in Tokyo
    assert "Вложения: чек.png" in flat
    assert "СЕКРЕТ" not in flat and "системная" not in flat


async def test_the_mail_carries_the_same_pdf_unless_switched_off(lite: Services, smtp: Smtp) -> None:
    w = await _chat(lite)
    async with lite.db.transaction() as s:
        await transcript.check_request(s, f.who(w["op"]), w["conv"], "anna@example.com", smtp.settings)
    await run_due_deadlines(lite.db)
    [mail] = smtp.box.messages
    [part] = list(mail.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    assert part.get_filename() == f"transcript-{w['conv']}.pdf"
    flat = " ".join(pdf_text(part.get_content()).split())
    assert "Заказ уже в пути" in flat and "СЕКРЕТ" not in flat
    plain = mail.get_body(("plain",))
    assert plain is not None and "чек.png" in plain.get_content() and "Ольга" in plain.get_content()

    off = smtp.settings.model_copy(update={"transcript_pdf": False})
    async with lite.db.transaction() as s:
        conv = await s.get(m.Conversation, w["conv"])
        assert conv is not None
        message = await transcript.build_message(s, off, conv, "anna@example.com", "ru")
    assert list(message.iter_attachments()) == []


async def test_a_customer_gets_only_their_own_transcript(lite: Services, smtp: Smtp) -> None:
    w = await _chat(lite)
    async with lite.db.transaction() as s:
        mine = await transcript_pdf.visitor_pdf(s, "widget", "visitor-anna", w["inbox"], None, "ru")
        assert mine.conversation_id == w["conv"]
        for identity, inbox, conv in (
            ("visitor-eve", w["inbox"], w["conv"]),  # someone else's conversation
            ("visitor-anna", w["other_inbox"], w["conv"]),  # through another widget
            ("visitor-anna", w["inbox"], w["conv"] + 999),  # no such conversation
            ("visitor-eve", w["inbox"], None),  # no conversation of their own
        ):
            with pytest.raises(NotFound):
                await transcript_pdf.visitor_pdf(s, "widget", identity, inbox, conv, "en")
        with pytest.raises(InvalidInput) as unknown:  # no address known: the widget asks
            await transcript.visitor_request(
                s,
                smtp.settings,
                kind="widget",
                identity="visitor-anna",
                inbox_id=w["inbox"],
                email=None,
                lang="en",
            )
        assert unknown.value.field == "email"
        with pytest.raises(InvalidInput) as bad:
            await transcript.visitor_request(
                s,
                smtp.settings,
                kind="widget",
                identity="visitor-anna",
                inbox_id=w["inbox"],
                email="x@",
                lang="en",
            )
        assert bad.value.field == "email"
        to = await transcript.visitor_request(
            s,
            smtp.settings,
            kind="widget",
            identity="visitor-anna",
            inbox_id=w["inbox"],
            email="anna@example.com",
            lang="en",
        )
        assert to == "anna@example.com"
    await run_due_deadlines(lite.db)
    [mail] = smtp.box.messages
    assert mail["Subject"] == f"Your conversation #{w['conv']}"  # the language the widget asked in
