"""Retention policies purge personal data on schedule, and one contact is erased on request,
with the rows reports read kept (issue 16), on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import anyio
import httpx
import pytest
from sqlalchemy import func, select, update

from omni.db import Database
from omni.db import models as m
from omni.domain import audit, retention
from omni.domain import conversations as c
from omni.domain.conversations import InboundMessage
from omni.domain.errors import Conflict, InvalidInput, PermissionDenied
from omni.services import Services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import LiveServer, copy_sqlite
from tests.helpers import HTTP_TIMEOUT

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=40)


async def _world(services: Services) -> tuple[m.User, int]:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        q = await f.queue(s, "Q")
        ib = await f.inbox(s, q)
        return admin, ib.id


async def _conversation(
    services: Services, inbox_id: int, who: str, body: str, *, closed: bool, at: datetime
) -> int:
    """A conversation with one customer message at ``at`` (closed or still queued)."""
    async with services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            InboundMessage(
                inbox_id=inbox_id, identity_kind="external", identity_value=who, body=body, medium="chat"
            ),
        )
        conv_id = res.conversation.id
        await s.execute(update(m.Message).where(m.Message.conversation_id == conv_id).values(created_at=at))
        await s.execute(update(m.Event).where(m.Event.conversation_id == conv_id).values(created_at=at))
        if closed:
            await s.execute(
                update(m.Conversation)
                .where(m.Conversation.id == conv_id)
                .values(status=m.ConversationStatus.CLOSED, closed_at=at)
            )
        return conv_id


async def _attach(services: Services, conv_id: int, at: datetime) -> anyio.Path:
    root = anyio.Path(services.settings.data_dir / "uploads")
    await root.mkdir(parents=True, exist_ok=True)
    path = root / f"file-{conv_id}"
    await path.write_bytes(b"passport scan")
    async with services.db.transaction() as s:
        s.add(
            m.StoredFile(
                id=f"f{conv_id}", owner="visitor", conversation_id=conv_id, name="passport.pdf",
                content_type="application/pdf", size=13, path=str(path), created_at=at,
            )
        )  # fmt: skip
    return path


async def _record(services: Services, conv_id: int, at: datetime) -> anyio.Path:
    root = anyio.Path(services.settings.voice.recordings_dir)
    await root.mkdir(parents=True, exist_ok=True)
    path = root / f"call-{conv_id}.wav"
    await path.write_bytes(b"RIFF....WAVE")
    async with services.db.transaction() as s:
        s.add(
            m.Call(conversation_id=conv_id, linkedid=f"l{conv_id}", caller_number="+79161234567",
                   recording_path=path.name, created_at=at, ended_at=at, talk_seconds=42.0)
        )  # fmt: skip
    return path


@pytest.fixture
def recordings(services: Services, tmp_path: Path) -> Path:
    services.settings.voice.recordings_dir = tmp_path / "recordings"
    return services.settings.voice.recordings_dir


async def test_nothing_is_purged_until_an_admin_sets_a_policy(services: Services, recordings: Path) -> None:
    _, ib = await _world(services)
    conv = await _conversation(services, ib, "a", "my card 4276", closed=True, at=OLD)
    path = await _attach(services, conv, OLD)
    assert await retention.purge(services.db, services.settings, NOW) == {}
    async with services.db.transaction() as s:
        assert (
            await s.scalar(select(m.Message.body).where(m.Message.conversation_id == conv)) == "my card 4276"
        )
    assert await path.exists()


async def test_a_pass_purges_what_is_older_than_each_policy_and_keeps_what_reports_read(
    services: Services, recordings: Path
) -> None:
    admin, ib = await _world(services)
    old = await _conversation(services, ib, "old", "my passport 4510 123456", closed=True, at=OLD)
    recent = await _conversation(
        services, ib, "recent", "recent text", closed=True, at=NOW - timedelta(days=5)
    )
    still_open = await _conversation(services, ib, "open", "waiting text", closed=False, at=OLD)
    old_file = await _attach(services, old, OLD)
    recent_file = await _attach(services, recent, NOW - timedelta(days=5))
    old_rec = await _record(services, old, OLD)
    recent_rec = await _record(services, recent, NOW - timedelta(days=5))
    async with services.db.transaction() as s:
        audit.record(s, f.who(admin), "user.update", object_type="user", object_id=1)
        await s.flush()
        await s.execute(update(m.AuditLog).values(created_at=OLD))
        audit.record(s, f.who(admin), "queue.update", object_type="queue", object_id=1)
        await retention.check_update_policies(
            s,
            f.who(admin),
            {"messages_days": 30, "attachments_days": 30, "recordings_days": 30, "audit_days": 30},
        )
        times_before = (
            await s.execute(
                select(m.Message.id, m.Message.direction, m.Message.created_at).order_by(m.Message.id)
            )
        ).all()

    counts = await retention.purge(services.db, services.settings, NOW)

    assert counts == {"messages": 1, "attachments": 1, "recordings": 1, "audit": 1}
    async with services.db.transaction() as s:
        bodies = dict((await s.execute(select(m.Message.conversation_id, m.Message.body))).all())
        assert bodies == {old: "", recent: "recent text", still_open: "waiting text"}
        # reports read direction, author and time of every message: all still there
        times_after = (
            await s.execute(
                select(m.Message.id, m.Message.direction, m.Message.created_at).order_by(m.Message.id)
            )
        ).all()
        assert times_after == times_before
        payloads = (
            await s.scalars(
                select(m.Event.payload).where(
                    m.Event.type == "message.created", m.Event.conversation_id == old
                )
            )
        ).all()
        assert payloads and all("4510" not in str(p) for p in payloads)
        assert await s.scalar(select(func.count()).select_from(m.StoredFile)) == 1
        calls = dict((await s.execute(select(m.Call.conversation_id, m.Call.recording_path))).all())
        assert calls == {old: "", recent: recent_rec.name}
        assert await s.scalar(select(m.Call.talk_seconds).where(m.Call.conversation_id == old)) == 42.0
        actions = (await s.scalars(select(m.AuditLog.action).order_by(m.AuditLog.id))).all()
        assert "user.update" not in actions and "queue.update" in actions
        assert actions[-1] == "retention.purge"
        settings_row = await s.get_one(m.RetentionSettings, retention.ROW_ID)
        assert settings_row.last_run_at == NOW and settings_row.last_counts == counts
    assert not await old_file.exists() and await recent_file.exists()
    assert not await old_rec.exists() and await recent_rec.exists()
    # a second pass finds nothing left to do
    assert await retention.purge(services.db, services.settings, NOW) == {
        "messages": 0, "attachments": 0, "recordings": 0, "audit": 0
    }  # fmt: skip


async def test_a_file_outside_the_data_directories_is_never_deleted(
    services: Services, recordings: Path, tmp_path: Path
) -> None:
    admin, ib = await _world(services)
    conv = await _conversation(services, ib, "a", "x", closed=True, at=OLD)
    outside = tmp_path / "etc-passwd"
    outside.write_text("root")
    async with services.db.transaction() as s:
        s.add(m.StoredFile(id="bad", owner="v", conversation_id=conv, name="p", content_type="text/plain",
                           size=4, path=str(outside), created_at=OLD))  # fmt: skip
        await retention.check_update_policies(s, f.who(admin), {"attachments_days": 30})
    assert await retention.purge(services.db, services.settings, NOW) == {"attachments": 0}
    assert outside.exists()
    async with services.db.transaction() as s:
        assert await s.get(m.StoredFile, "bad") is not None


async def test_policies_are_admin_only_and_validated(services: Services) -> None:
    admin, _ = await _world(services)
    async with services.db.transaction() as s:
        op = await f.user(s, "op")
        with pytest.raises(PermissionDenied):
            await retention.check_update_policies(s, f.who(op), {"audit_days": 10})
        with pytest.raises(InvalidInput) as err:
            await retention.check_update_policies(s, f.who(admin), {"audit_days": 0, "messages_days": 36_501})
        assert {e.field for e in err.value.errors} == {"audit_days", "messages_days"}
        assert await s.get(m.RetentionSettings, retention.ROW_ID) is None
        await retention.check_update_policies(s, f.who(admin), {"audit_days": 10})
        await retention.check_update_policies(s, f.who(admin), {"audit_days": None})
        policies, _ = await retention.get_policies(s)
        assert policies.audit_days is None
        changes = (
            await s.scalars(select(m.AuditLog.input).where(m.AuditLog.action == "retention.update"))
        ).all()
        assert changes == [{"audit_days": 10}, {"audit_days": None}]


async def test_erasing_a_contact_forgets_the_person_and_keeps_the_figures(
    services: Services, recordings: Path
) -> None:
    admin, ib = await _world(services)
    conv = await _conversation(
        services, ib, "ivan-telegram", "I am Ivan, +7 916 123-45-67", closed=True, at=NOW
    )
    other = await _conversation(services, ib, "someone-else", "other text", closed=True, at=NOW)
    file = await _attach(services, conv, NOW)
    rec = await _record(services, conv, NOW)
    async with services.db.transaction() as s:
        contact_id = (await s.get_one(m.Conversation, conv)).contact_id
        contact = await s.get_one(m.Contact, contact_id)
        contact.name, contact.phone, contact.email = "Ivan Petrov", "+79161234567", "ivan@example.com"
        contact.custom_fields = {"passport": "4510 123456"}

    async with services.db.transaction() as s:
        counts = await retention.check_erase_contact(s, f.who(admin), contact_id, services.settings, NOW)
    assert counts == {
        "conversations": 1,
        "messages": 1,
        "attachments": 1,
        "recordings": 1,
        "events": counts["events"],
    }
    assert counts["events"] >= 1
    assert not await file.exists() and not await rec.exists()
    async with services.db.transaction() as s:
        contact = await s.get_one(m.Contact, contact_id)
        assert (contact.name, contact.phone, contact.email, contact.custom_fields) == ("", None, None, {})
        assert contact.erased_at == NOW
        assert await s.scalar(select(func.count()).where(m.ContactIdentity.contact_id == contact_id)) == 0
        assert await s.scalar(select(m.Message.body).where(m.Message.conversation_id == conv)) == ""
        assert (
            await s.scalar(select(m.Message.body).where(m.Message.conversation_id == other)) == "other text"
        )
        assert (await s.get_one(m.Conversation, conv)).status == m.ConversationStatus.CLOSED  # the row stays
        call = await s.scalar(select(m.Call).where(m.Call.conversation_id == conv))
        assert call is not None and (call.caller_number, call.recording_path, call.talk_seconds) == (
            "",
            "",
            42.0,
        )
        payloads = (await s.scalars(select(m.Event.payload).where(m.Event.conversation_id == conv))).all()
        assert all("Ivan" not in str(p) and "916" not in str(p) for p in payloads)
        entry = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "contact.erase"))
        assert entry is not None and entry.object_id == str(contact_id) and "Ivan" not in str(entry.input)
    # the same person writing again is a new contact: nothing links them to the erased one
    again = await _conversation(services, ib, "ivan-telegram", "hello again", closed=False, at=NOW)
    async with services.db.transaction() as s:
        assert (await s.get_one(m.Conversation, again)).contact_id != contact_id


async def test_erasing_a_contact_with_an_open_conversation_is_refused_and_changes_nothing(
    services: Services, recordings: Path
) -> None:
    admin, ib = await _world(services)
    conv = await _conversation(services, ib, "waiting", "please call me", closed=False, at=NOW)
    async with services.db.transaction() as s:
        contact_id = (await s.get_one(m.Conversation, conv)).contact_id
        op = await f.user(s, "op")
        with pytest.raises(PermissionDenied):
            await retention.check_erase_contact(s, f.who(op), contact_id, services.settings, NOW)
        with pytest.raises(Conflict, match="1 open conversations"):
            await retention.check_erase_contact(s, f.who(admin), contact_id, services.settings, NOW)
    async with services.db.transaction() as s:
        assert (
            await s.scalar(select(m.Message.body).where(m.Message.conversation_id == conv))
            == "please call me"
        )
        assert await s.scalar(select(func.count()).where(m.ContactIdentity.contact_id == contact_id)) == 1


async def test_retention_over_rest_and_the_admin_page(live_server: LiveServer) -> None:
    async with live_server.services.db.transaction() as s:
        await f.user(s, "admin", m.Role.ADMIN, language="ru")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        resp = await client.post("/api/v1/auth/login", json={"username": "admin", "password": f.PASSWORD})
        assert resp.status_code == 200
        resp = await client.get("/api/v1/admin/retention")
        assert resp.json() == {
            "messages_days": None, "attachments_days": None, "recordings_days": None, "audit_days": None,
            "last_run_at": None, "last_counts": {},
        }  # fmt: skip
        resp = await client.put("/api/v1/admin/retention", json={"messages_days": 0})
        assert resp.status_code == 422 and "messages_days" in resp.text
        resp = await client.put("/api/v1/admin/retention", json={"messages_days": 365, "audit_days": 1095})
        assert resp.status_code == 200 and resp.json()["messages_days"] == 365
        resp = await client.post("/api/v1/admin/contacts/999999/erase")
        assert resp.status_code == 404
        page = await client.get("/admin/retention")
        assert page.status_code == 200
        assert "Хранение данных" in page.text and "365 дн." in page.text and "Хранятся бессрочно" in page.text


async def test_the_embedded_sqlite_database_purges_and_erases_the_same_way(
    sqlite_template: Path, settings: Settings, tmp_path: Path
) -> None:
    url = copy_sqlite(sqlite_template, tmp_path, "retention.sqlite3")
    settings.voice.recordings_dir = tmp_path / "recordings"
    db = Database(url)
    embedded = cast(Services, SimpleNamespace(db=db, settings=settings))
    try:
        admin, ib = await _world(embedded)
        old = await _conversation(embedded, ib, "old", "old secret", closed=True, at=OLD)
        kept = await _conversation(embedded, ib, "kept", "kept text", closed=True, at=NOW)
        file = await _attach(embedded, old, OLD)
        async with db.transaction() as s:
            await retention.check_update_policies(
                s, f.who(admin), {"messages_days": 30, "attachments_days": 30}
            )
        assert await retention.purge(db, settings, NOW) == {"messages": 1, "attachments": 1}
        assert await retention.purge(db, settings, NOW) == {"messages": 0, "attachments": 0}
        assert not await file.exists()
        async with db.transaction() as s:
            bodies = dict((await s.execute(select(m.Message.conversation_id, m.Message.body))).all())
            assert bodies == {old: "", kept: "kept text"}
            contact_id = (await s.get_one(m.Conversation, kept)).contact_id
            await retention.check_erase_contact(s, f.who(admin), contact_id, settings, NOW)
        async with db.transaction() as s:
            assert await s.scalar(select(m.Message.body).where(m.Message.conversation_id == kept)) == ""
            assert (await s.get_one(m.Contact, contact_id)).erased_at is not None
    finally:
        await db.dispose()
