"""The contacts workspace's domain (issue 16): merging two contacts joins their histories and is
audited, the blacklist keeps its reason, search finds a contact by any identity, and the contacts
export runs through the report exports. On the embedded SQLite database (nothing here is
PostgreSQL-specific; the REST and page tests run on PostgreSQL)."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from sqlalchemy import select, update

from omni.db import models as m
from omni.domain import contacts, reports, retention
from omni.domain import conversations as c
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.reports import FilterParams
from omni.domain.reports import exports as ex
from omni.domain.reports.writers import Format
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite


@dataclass
class World:
    services: Services
    admin: Principal
    sup: Principal
    op: Principal
    auditor: Principal
    inbox_a: int
    inbox_b: int


@pytest.fixture
async def w(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[World]:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
    copy_sqlite(sqlite_template, settings.data_dir)
    services = build_services(settings, run_background=False)
    await services.start()
    try:
        async with services.db.transaction() as s:
            admin = await f.user(s, "admin", m.Role.ADMIN)
            sup = await f.user(s, "sup", m.Role.SUPERVISOR)
            op = await f.user(s, "op", m.Role.OPERATOR)
            auditor = await f.user(s, "auditor", m.Role.AUDITOR)
            g_a, g_b = m.Group(name="A"), m.Group(name="B")
            s.add_all([g_a, g_b])
            await s.flush()
            s.add(m.SupervisorScope(supervisor_id=sup.id, group_id=g_a.id))
            q_a = await f.queue(s, "QA", [op], group_id=g_a.id)
            q_b = await f.queue(s, "QB", group_id=g_b.id)
            ib_a, ib_b = await f.inbox(s, q_a), await f.inbox(s, q_b)
            made = World(services, f.who(admin), f.who(sup), f.who(op), f.who(auditor), ib_a.id, ib_b.id)
        yield made
    finally:
        await services.stop()


async def _chat(w: World, inbox_id: int, kind: str, value: str, body: str = "hello", **kw: str) -> int:
    """A customer writes in: their contact (made on first contact) and conversation."""
    async with w.services.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s, InboundMessage(inbox_id=inbox_id, identity_kind=kind, identity_value=value, body=body, **kw)
        )
        return res.conversation.contact_id


async def test_merge_moves_conversations_identities_tags_and_card_fields_and_is_audited(w: World) -> None:
    keep_id = await _chat(w, w.inbox_a, "telegram", "1001", contact_name="Anna")
    drop_id = await _chat(w, w.inbox_a, "external", "anna-web", contact_phone="+7 916 123-45-67")
    async with w.services.db.transaction() as s:
        await contacts.check_update_contact(
            s, w.admin, keep_id, {"tags": ["vip"], "custom_fields": {"city": "Moscow"}}
        )
        await contacts.check_update_contact(
            s, w.admin, drop_id, {"tags": ["debtor"], "custom_fields": {"city": "Tver", "note": "calls at 9"}}
        )
    async with w.services.db.transaction() as s:
        kept = await contacts.check_merge_contacts(s, w.sup, keep_id, drop_id)
        detail = await contacts.contact_detail(s, kept)
    assert detail["name"] == "Anna"
    assert detail["phone"] == "+79161234567", "the merged contact's phone is kept"
    assert detail["tags"] == ["debtor", "vip"]
    assert detail["custom_fields"] == {"city": "Moscow", "note": "calls at 9"}
    assert {(i["kind"], i["value"]) for i in detail["identities"]} == {
        ("telegram", "1001"),
        ("external", "anna-web"),
    }
    async with w.services.db.transaction() as s:
        assert await s.get(m.Contact, drop_id) is None
        owners = set(await s.scalars(select(m.Conversation.contact_id)))
        assert owners == {keep_id}, "both histories are the survivor's"
        record = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "contact.merge"))
    assert record is not None
    assert record.object_id == str(keep_id) and record.user_id == w.sup.id
    assert record.input["merged"]["custom_fields"]["city"] == "Tver", (
        "a value lost to a clash is kept in the audit"
    )
    assert record.input["conversations"] == 1
    # The customer writing again in either channel lands on the one contact.
    assert await _chat(w, w.inbox_a, "external", "anna-web", body="again") == keep_id


async def test_merging_into_a_contact_without_a_phone_keeps_the_merged_phone(w: World) -> None:
    keep_id = await _chat(w, w.inbox_a, "telegram", "2002")
    drop_id = await _chat(w, w.inbox_a, "phone", "+79160000001")
    async with w.services.db.transaction() as s:
        await contacts.check_merge_contacts(s, w.admin, keep_id, drop_id)
    async with w.services.db.transaction() as s:
        kept = await s.get_one(m.Contact, keep_id)
        assert kept.phone == "+79160000001"
        assert (kept.region, kept.timezone) == contacts.phone_region_and_timezone("+79160000001")
        found = await contacts.search_contacts(s, w.admin, "8 916 000-00-01", limit=10)
    assert [x.id for x in found] == [keep_id]


async def test_merge_refusals_name_the_field_and_change_nothing(w: World) -> None:
    mine = await _chat(w, w.inbox_a, "telegram", "3003")
    theirs = await _chat(w, w.inbox_b, "telegram", "3004")
    erased = await _chat(w, w.inbox_a, "telegram", "3005")
    async with w.services.db.transaction() as s:  # closed (as if handled), then erased on request
        await s.execute(
            update(m.Conversation)
            .where(m.Conversation.contact_id == erased)
            .values(status=m.ConversationStatus.CLOSED, closed_at=datetime.now(UTC))
        )
        await retention.check_erase_contact(s, w.admin, erased, w.services.settings)
    async with w.services.db.transaction() as s:
        with pytest.raises(InvalidInput) as same:
            await contacts.check_merge_contacts(s, w.admin, mine, mine)
        assert same.value.field == "other_id"
        with pytest.raises(InvalidInput) as foreign:  # out of the supervisor's groups: as if none
            await contacts.check_merge_contacts(s, w.sup, mine, theirs)
        assert foreign.value.field == "other_id" and foreign.value.message == f"contact {theirs} not found"
        with pytest.raises(NotFound):
            await contacts.check_merge_contacts(s, w.sup, theirs, mine)
        with pytest.raises(InvalidInput) as gone:
            await contacts.check_merge_contacts(s, w.admin, mine, erased)
        assert gone.value.field == "other_id"
        for who in (w.op, w.auditor):
            with pytest.raises(PermissionDenied):
                await contacts.check_merge_contacts(s, who, mine, theirs)
    async with w.services.db.transaction() as s:
        assert {x.id for x in await s.scalars(select(m.Contact))} == {mine, theirs, erased}


async def test_blacklist_keeps_its_reason_and_only_supervisors_lift_it(w: World) -> None:
    contact_id = await _chat(w, w.inbox_a, "telegram", "4004", contact_name="Spammer")
    async with w.services.db.transaction() as s:
        with pytest.raises(InvalidInput) as long:
            await contacts.check_set_contact_blacklisted(
                s, w.op, contact_id, blacklisted=True, reason="x" * 257
            )
        assert long.value.field == "reason"
        await contacts.check_set_contact_blacklisted(s, w.op, contact_id, blacklisted=True, reason="insults")
    async with w.services.db.transaction() as s:
        assert await contacts.blacklist_reason(s, contact_id) == "insults"
        assert [x.id for x in await contacts.search_contacts(s, w.sup, "", limit=10, blacklisted=True)] == [
            contact_id
        ]
        with pytest.raises(PermissionDenied):
            await contacts.check_set_contact_blacklisted(s, w.op, contact_id, blacklisted=False)
        lifted = await contacts.check_set_contact_blacklisted(s, w.sup, contact_id, blacklisted=False)
        assert not lifted.blacklisted
        actions = list(await s.scalars(select(m.AuditLog.action).where(m.AuditLog.object_type == "contact")))
    assert {"contact.blacklist", "contact.unblacklist"} <= set(actions)


async def test_search_finds_a_contact_by_any_identity_within_scope(w: World) -> None:
    tg = await _chat(w, w.inbox_a, "telegram", "777000123", contact_name="Boris")
    await _chat(w, w.inbox_b, "telegram", "777000999", contact_name="Other group")
    async with w.services.db.transaction() as s:
        assert [x.id for x in await contacts.search_contacts(s, w.sup, "777000", limit=10)] == [tg]
        assert len(await contacts.search_contacts(s, w.admin, "777000", limit=10)) == 2


async def test_contacts_export_writes_every_matching_contact_with_identities(w: World) -> None:
    one = await _chat(w, w.inbox_a, "telegram", "5005", contact_name="Вера", contact_email="vera@example.com")
    await _chat(w, w.inbox_a, "telegram", "5006", contact_name="Someone else")
    directory = w.services.settings.data_dir / "exports"
    async with w.services.db.transaction() as s:
        job = await ex.check_start_export(
            s, w.sup, "contacts", FilterParams(q="Вер"), Format.CSV, datetime.now(UTC)
        )
        job_id = job.id
    await ex.run_export(w.services.db, job_id, w.sup, directory, None)
    async with w.services.db.transaction() as s:
        done = await s.get_one(m.ReportExport, job_id)
        assert (done.state, done.rows_done, done.rows_total) == ("done", 1, 1)
        path = anyio.Path(done.path)
    rows = list(csv.reader((await path.read_text(encoding="utf-8-sig")).splitlines()))
    assert rows[0][:4] == ["Contact No.", "Name", "Phone", "E-mail"]
    assert rows[1][:2] == [str(one), "Вера"] and rows[1][3] == "vera@example.com"
    assert "telegram:5005" in rows[1][4]
    async with w.services.db.transaction() as s:  # personal data is not the auditors' to read
        with pytest.raises(PermissionDenied):
            await reports.run_params(s, w.auditor, "contacts", FilterParams(), datetime.now(UTC))


async def test_auditors_see_no_contacts_report_they_would_be_refused(w: World) -> None:
    """Regression: the reports list offered auditors "Contacts", which then answered 403."""
    from omni.domain.reports.contacts import SPEC
    from omni.domain.reports.filters import report_visible

    assert not report_visible(SPEC.key, SPEC.roles, w.auditor, "all")
    assert report_visible(SPEC.key, SPEC.roles, w.sup, "group")
    async with w.services.db.transaction() as s:
        with pytest.raises(PermissionDenied, match="not available to your role"):
            await reports.run_params(s, w.auditor, "contacts", FilterParams(), datetime.now(UTC))
        with pytest.raises(PermissionDenied, match="not available to your role"):
            await ex.check_start_export(
                s, w.auditor, "contacts", FilterParams(), Format.CSV, datetime.now(UTC)
            )
