"""Do-not-call lists: global and per campaign, numbers and prefixes, upload, the set-based mark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from omni.db import Database
from omni.db import models as m
from omni.db.models.outbound import TargetState
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.outbound import dnc
from omni.domain.outbound.lifecycle import do_apply_result, do_close_attempt, do_open_attempt
from omni.services import Services
from tests import factories as f
from tests.conftest import copy_sqlite


@dataclass
class Setup:
    admin: Principal
    sup: Principal
    op: Principal
    outsider: Principal
    campaign: int
    other_campaign: int


@pytest.fixture
async def setup(services: Services) -> Setup:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        op = await f.user(s, "op")
        outsider = await f.user(s, "outsider")
        mine = await f.queue(s, "Debts", [op])
        theirs = await f.queue(s, "Sales", [outsider])
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=mine.id))
        c1 = m.Campaign(name="Debts", queue_id=mine.id)
        c2 = m.Campaign(name="Sales", queue_id=theirs.id)
        s.add_all([c1, c2])
        await s.flush()
        return Setup(f.who(admin), f.who(sup), f.who(op), f.who(outsider), c1.id, c2.id)


async def _count(services: Services) -> int:
    async with services.db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(m.DncEntry)) or 0)


def test_numbers_are_normalised_and_prefixes_written_with_a_star() -> None:
    assert dnc.parse_entry("8 (495) 123-45-67") == ("+74951234567", False)
    assert dnc.parse_entry("+7 495*") == ("+7495", True)
    assert dnc.parse_entry(" +7 (4012)* ") == ("+74012", True)
    for bad in ("7495*", "+*", "hello", "+7 123", ""):
        with pytest.raises(InvalidInput) as exc:
            dnc.parse_entry(bad)
        assert exc.value.field == "number"
    with pytest.raises(InvalidInput, match="international form"):
        dnc.parse_entry("8495*")
    assert dnc.parse_dnc_line('"+7 495 123-45-67";Иванов') == "+7 495 123-45-67"
    assert dnc.parse_dnc_line("74951234567,Ivanov, Ivan") == "74951234567"
    assert dnc.parse_dnc_line("+7495*\tcity") == "+7495*"


async def test_exact_and_prefix_entries_forbid_what_they_cover(services: Services, setup: Setup) -> None:
    async with services.db.transaction() as s:
        await dnc.check_add_dnc(s, setup.admin, None, ["+7 916 123-45-67", "+7495*"])
    async with services.db.transaction() as s:
        exact = await dnc.find_dnc(s, None, "+79161234567")
        assert exact is not None and (exact.number, exact.prefix) == ("+79161234567", False)
        assert await dnc.find_dnc(s, None, "+79161234568") is None
        moscow = await dnc.find_dnc(s, setup.campaign, "+74951234567")
        assert moscow is not None and dnc.pattern_of(moscow) == "+7495*"
        assert await dnc.find_dnc(s, None, "+74991234567") is None


async def test_a_campaign_list_forbids_only_in_its_campaign_and_the_global_list_everywhere(
    services: Services, setup: Setup
) -> None:
    async with services.db.transaction() as s:
        await dnc.check_add_dnc(s, setup.sup, setup.campaign, ["+79161234567"], strict=True)
        await dnc.check_add_dnc(s, setup.admin, None, ["+7 812*"])
    async with services.db.transaction() as s:
        assert await dnc.find_dnc(s, setup.campaign, "+79161234567") is not None
        assert await dnc.find_dnc(s, setup.other_campaign, "+79161234567") is None
        assert await dnc.find_dnc(s, None, "+79161234567") is None
        for campaign in (None, setup.campaign, setup.other_campaign):
            assert await dnc.find_dnc(s, campaign, "+78121234567") is not None
        number, entry = await dnc.check_dnc(s, setup.op, setup.campaign, "8 916 123 45 67")
        assert number == "+79161234567" and entry is not None and entry.campaign_id == setup.campaign


async def test_a_duplicate_is_refused_with_a_clear_message_or_counted_in_bulk(
    services: Services, setup: Setup
) -> None:
    async with services.db.transaction() as s:
        await dnc.check_add_dnc(s, setup.admin, None, ["+79161234567"], strict=True)
    with pytest.raises(InvalidInput) as exc:
        async with services.db.transaction() as s:
            await dnc.check_add_dnc(s, setup.admin, None, ["8 916 123-45-67"], strict=True)
    assert exc.value.field == "number"
    assert exc.value.message == "+79161234567 is already on this do-not-call list"
    async with services.db.transaction() as s:
        result = await dnc.check_add_dnc(
            s, setup.admin, None, ["+79161234567", "+79161234568", "89161234568", "nonsense"]
        )
    assert (result.added_count, result.duplicate_count, result.invalid_count) == (1, 2, 1)
    assert sorted(result.duplicates) == ["+79161234567", "+79161234568"]
    assert result.invalid[0].error.message == "'nonsense' is not a phone number"
    assert await _count(services) == 2
    # The same number may be on the global list and on a campaign's.
    async with services.db.transaction() as s:
        await dnc.check_add_dnc(s, setup.admin, setup.campaign, ["+79161234567"], strict=True)
    assert await _count(services) == 3


async def test_the_global_list_holds_a_number_once_even_past_the_domain_check(services: Services) -> None:
    """NULL campaign ids are distinct in a UNIQUE constraint: the global list needed its own
    partial unique index (0019_dnc), or a direct insert listed a number twice."""
    async with services.db.transaction() as s:
        s.add(m.DncEntry(campaign_id=None, number="+79161234567"))
    with pytest.raises(IntegrityError):
        async with services.db.transaction() as s:
            s.add(m.DncEntry(campaign_id=None, number="+79161234567"))
    assert await _count(services) == 1


async def test_bad_numbers_are_refused_with_the_reason(services: Services, setup: Setup) -> None:
    for raw, message in [
        ("call me", "'call me' is not a phone number"),
        ("+7 123", "'+7 123' is not a valid phone number"),
        ("7495*", "'7495*' is not a number prefix: write it in international form, like +7495*"),
    ]:
        with pytest.raises(InvalidInput) as exc:
            async with services.db.transaction() as s:
                await dnc.check_add_dnc(s, setup.admin, None, [raw], strict=True)
        assert (exc.value.field, exc.value.message) == ("number", message)
    with pytest.raises(InvalidInput) as exc:
        async with services.db.transaction() as s:
            await dnc.check_dnc(s, setup.admin, None, "nope")
    assert exc.value.field == "number"
    assert await _count(services) == 0


async def test_an_upload_counts_added_duplicates_and_invalid_lines(services: Services, setup: Setup) -> None:
    async with services.db.transaction() as s:
        await dnc.check_add_dnc(s, setup.admin, setup.campaign, ["+79161234567"])
    data = "\n".join(
        [
            "Телефон;Имя",
            "+7 916 123-45-67;already listed",
            "8 (916) 765-43-21;new",
            "89167654321;twice in the file",
            "",
            "not a number;x",
            "+7495*;Moscow",
            "# a comment",
            "+7 123;too short",
        ]
    ).encode("cp1251")
    async with services.db.transaction() as s:
        result = await dnc.check_upload_dnc(s, setup.sup, setup.campaign, data, filename="refusals.csv")
    assert (result.added_count, result.duplicate_count, result.invalid_count) == (2, 2, 2)
    assert [(r.line, r.text) for r in result.invalid] == [(6, "not a number"), (9, "+7 123")]
    async with services.db.transaction() as s:
        rows, total = await dnc.list_dnc(s, setup.sup, setup.campaign)
        assert total == 3
        assert [dnc.pattern_of(r) for r in rows] == ["+7495*", "+79167654321", "+79161234567"]
        assert rows[0].reason == "upload refusals.csv"
        log = (await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "dnc.upload"))).one()
        assert log.input["added"] == 2 and log.input["invalid"] == 2 and log.user_id == setup.sup.id
    with pytest.raises(InvalidInput) as exc:
        async with services.db.transaction() as s:
            await dnc.check_upload_dnc(s, setup.admin, None, b"  \n", filename="empty.txt")
    assert exc.value.field == "file"


async def test_search_and_pages(services: Services, setup: Setup) -> None:
    numbers = [f"+7916{n:07d}" for n in range(1, 121)]
    async with services.db.transaction() as s:
        await dnc.check_add_dnc(s, setup.admin, None, numbers)
    async with services.db.transaction() as s:
        page, total = await dnc.list_dnc(s, setup.admin, None, offset=100, limit=50)
        assert total == 120 and [r.number for r in page] == list(reversed(numbers[:20]))
        found, total = await dnc.list_dnc(s, setup.admin, None, q="916 000-01-1")
        assert total == 10 and {r.number for r in found} == {f"+7916000011{d}" for d in range(10)}


async def test_roles_and_scope(services: Services, setup: Setup) -> None:
    refusals = [
        (setup.sup, None, PermissionDenied),  # the global list is an administrator's
        (setup.sup, setup.other_campaign, NotFound),  # a campaign outside the scope
        (setup.op, setup.campaign, PermissionDenied),  # operators only check
    ]
    for who, campaign, error in refusals:
        with pytest.raises(error):
            async with services.db.transaction() as s:
                await dnc.check_add_dnc(s, who, campaign, ["+79161234567"])
    async with services.db.transaction() as s:
        rows, _ = await dnc.list_dnc(s, setup.sup, None)  # supervisors read the global list
        assert rows == []
        await dnc.check_dnc(s, setup.op, None, "+79161234567")
        await dnc.check_dnc(s, setup.op, setup.campaign, "+79161234567")
    with pytest.raises(NotFound):
        async with services.db.transaction() as s:
            await dnc.check_dnc(s, setup.op, setup.other_campaign, "+79161234567")
    async with services.db.transaction() as s:
        glob = (await dnc.check_add_dnc(s, setup.admin, None, ["+79161234567"])).added[0].id
        other = (await dnc.check_add_dnc(s, setup.admin, setup.other_campaign, ["+79161234567"])).added[0].id
        own = (await dnc.check_add_dnc(s, setup.sup, setup.campaign, ["+79161234567"])).added[0].id
    with pytest.raises(PermissionDenied):
        async with services.db.transaction() as s:
            await dnc.check_remove_dnc(s, setup.sup, glob)
    with pytest.raises(NotFound):
        async with services.db.transaction() as s:
            await dnc.check_remove_dnc(s, setup.sup, other)
    async with services.db.transaction() as s:
        await dnc.check_remove_dnc(s, setup.sup, own)
        await dnc.check_remove_dnc(s, setup.admin, glob)
    async with services.db.transaction() as s:
        assert [e.id for e in await s.scalars(select(m.DncEntry))] == [other]
        actions = list(await s.scalars(select(m.AuditLog.action).where(m.AuditLog.action.like("dnc.%"))))
        assert actions.count("dnc.add") == 3 and actions.count("dnc.remove") == 2
        removed = (await s.scalars(select(m.AuditLog).where(m.AuditLog.action == "dnc.remove"))).first()
        assert removed is not None and removed.input["number"] == "+79161234567"


async def test_mark_dnc_targets_marks_only_pending_targets_on_a_list(
    services: Services, setup: Setup
) -> None:
    phones = {
        "+79161234567": TargetState.PENDING,  # exact, campaign list
        "+74951234567": TargetState.PENDING,  # prefix +7495, global list
        "+74991234567": TargetState.PENDING,  # not listed
        "+74957654321": TargetState.IN_PROGRESS,  # listed, but an attempt is open: left alone
        "+78121234567": TargetState.PENDING,  # only on the OTHER campaign's list
    }
    async with services.db.transaction() as s:
        for phone, state in phones.items():
            s.add(m.CampaignTarget(campaign_id=setup.campaign, phone=phone, phones=[phone], state=state))
        await dnc.check_add_dnc(s, setup.admin, setup.campaign, ["+79161234567"])
        await dnc.check_add_dnc(s, setup.admin, None, ["+7495*"])
        await dnc.check_add_dnc(s, setup.admin, setup.other_campaign, ["+78121234567"])
    async with services.db.transaction() as s:
        assert await dnc.mark_dnc_targets(s, setup.campaign) == 2
    async with services.db.transaction() as s:
        states = dict((await s.execute(select(m.CampaignTarget.phone, m.CampaignTarget.state))).all())
        assert states == {
            "+79161234567": TargetState.DNC,
            "+74951234567": TargetState.DNC,
            "+74991234567": TargetState.PENDING,
            "+74957654321": TargetState.IN_PROGRESS,
            "+78121234567": TargetState.PENDING,
        }
        assert await dnc.mark_dnc_targets(s, setup.campaign) == 0


async def test_the_embedded_sqlite_database_keeps_the_same_rules(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """The default install runs on SQLite: the partial unique index, ON CONFLICT DO NOTHING with
    RETURNING, the prefix lookup and the set-based mark must work there too."""
    url = copy_sqlite(sqlite_template, tmp_path, "dnc.sqlite3")
    db = Database(url)
    try:
        async with db.transaction() as s:
            admin = f.who(await f.user(s, "admin", m.Role.ADMIN))
            queue = await f.queue(s, "Debts", [])
            campaign = m.Campaign(name="Debts", queue_id=queue.id)
            s.add(campaign)
            await s.flush()
            s.add_all(
                [
                    m.CampaignTarget(campaign_id=campaign.id, phone=p, phones=[p])
                    for p in ("+74951234567", "+79161234567", "+79031234567")
                ]
            )
            result = await dnc.check_add_dnc(s, admin, None, ["+7495*", "+79161234567", "+79161234567"])
            assert (result.added_count, result.duplicate_count) == (2, 1)
            found = await dnc.find_dnc(s, campaign.id, "+74957654321")
            assert found is not None and found.prefix
            assert await dnc.mark_dnc_targets(s, campaign.id) == 2
        with pytest.raises(IntegrityError):
            async with db.transaction() as s:
                s.add(m.DncEntry(campaign_id=None, number="+7495", prefix=True))
    finally:
        await db.dispose()


async def test_a_dnc_result_code_on_a_number_listed_as_its_own_prefix_is_not_a_server_error(
    services: Services, setup: Setup
) -> None:
    """The result code's DNC action looked for an exact entry only, then inserted one: a
    ``+79161234567*`` entry (same key on the list) made the close fail with an IntegrityError."""
    async with services.db.transaction() as s:
        await dnc.check_add_dnc(s, setup.admin, setup.campaign, ["+79161234567*"])
        code = m.ResultCode(code="refuse", name="Do not call")
        s.add(code)
        await s.flush()
        s.add(m.CampaignResultCode(campaign_id=setup.campaign, result_code_id=code.id, action="dnc"))
        target = m.CampaignTarget(campaign_id=setup.campaign, phone="+79161234567", phones=["+79161234567"])
        s.add(target)
        await s.flush()
        attempt = await do_open_attempt(s, target, operator_id=setup.op.id)
        await do_close_attempt(s, attempt, m.Outcome.ANSWERED)
        code_id, target_id = code.id, target.id
    async with services.db.transaction() as s:
        target = await s.get_one(m.CampaignTarget, target_id)
        await do_apply_result(s, target, code_id, user_id=setup.op.id)
        assert target.state == TargetState.DNC
    async with services.db.transaction() as s:
        entries = (await s.scalars(select(m.DncEntry))).all()
        assert [(e.campaign_id, dnc.pattern_of(e)) for e in entries] == [(setup.campaign, "+79161234567*")]
