"""List import after 0025_import13 (a batch COPYed into a stage and moved by one statement on
PostgreSQL; multi-row inserts and ``dnc.mark_dnc_targets`` on SQLite): duplicates inside a batch,
across batches and against the campaign's other lists, DNC (exact and prefix, global and the
campaign's, another campaign's ignored) decided as the rows go in, a batch stored whole or not
at all, and merged contacts keeping their campaign targets."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from omni.db import Database
from omni.db import models as m
from omni.db.models.outbound import ImportState, TargetState
from omni.domain.auth import Principal
from omni.domain.contacts import do_merge_contacts
from omni.domain.files import save_upload_stream
from omni.domain.outbound import imports as im
from omni.services import Services
from tests import factories as f
from tests.conftest import copy_sqlite


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _world(db: Database) -> tuple[Principal, int, int]:
    """An admin, a campaign with a target in an older list, DNC entries, and another campaign."""
    async with db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN)
        queue = m.Queue(name="Out")
        s.add(queue)
        await s.flush()
        campaign = m.Campaign(name="C", queue_id=queue.id, timezone="Europe/Moscow", default_region="RU")
        other = m.Campaign(name="Other", queue_id=queue.id)
        s.add_all([campaign, other])
        await s.flush()
        older = m.CallList(campaign_id=campaign.id, name="older")
        s.add(older)
        await s.flush()
        s.add(
            m.CampaignTarget(
                campaign_id=campaign.id, list_id=older.id, phone="+79160000006", phones=["+79160000006"]
            )
        )
        s.add_all(
            [
                m.DncEntry(campaign_id=None, number="+79160000007", prefix=False),  # global, exact
                m.DncEntry(campaign_id=campaign.id, number="+7916000009", prefix=True),  # own prefix
                m.DncEntry(campaign_id=other.id, number="+79160000008", prefix=False),  # not ours
            ]
        )
        return f.who(admin), campaign.id, older.id


async def _import(db: Database, data_dir: Path, who: Principal, campaign_id: int, body: str) -> int:
    stored = await save_upload_stream(
        data_dir=data_dir,
        owner=f"user:{who.id}",
        name="l.csv",
        content_type="text/csv",
        chunks=_chunks(body.encode()),
        max_bytes=im.MAX_BYTES,
    )
    async with db.transaction() as s:
        job = await im.check_create_import(s, who, campaign_id, stored)
        await im.check_start_import(s, who, job.id, {"phones": [0], "name": 1, "header": True})
        import_id = job.id
    await im.run_import(db, import_id, data_dir, None)
    return import_id


BODY = (
    "phone,name\n"
    "+79160000001,first\n"  # batch 1
    "8 916 000-00-02,two\n"
    "+7 916 000 00 01,first again\n"  # the same batch: a duplicate in this list
    "+79160000003,three\n"  # batch 2
    "+79160000002,two again\n"  # an earlier batch's: in this list
    "+79160000006,older\n"  # the older list's: in the campaign
    "+79160000007,global dnc\n"  # batch 3
    "+79160000091,own prefix dnc\n"
    "+79160000008,other campaign's dnc\n"
    "bad,refused\n"  # batch 4
)


async def _check(db: Database, data_dir: Path, who: Principal, campaign_id: int, older_id: int) -> None:
    import_id = await _import(db, data_dir, who, campaign_id, BODY)
    async with db.transaction() as s:
        job = await s.get_one(m.ListImport, import_id)
        rows = (
            await s.execute(
                select(m.CampaignTarget.phone, m.CampaignTarget.name, m.CampaignTarget.state)
                .where(m.CampaignTarget.list_id == job.list_id)
                .order_by(m.CampaignTarget.phone)
            )
        ).all()
        due = dict(
            (
                await s.execute(
                    select(m.CampaignTarget.phone, m.CampaignTarget.next_due_at).where(
                        m.CampaignTarget.list_id == job.list_id
                    )
                )
            ).all()
        )
        stored = await s.get_one(m.StoredFile, job.invalid_file_id)
    assert job.state == ImportState.DONE, job.error
    counts = (job.rows_read, job.rows_imported, job.rows_duplicate, job.rows_invalid, job.rows_dnc)
    assert counts == (10, 6, 3, 1, 2)
    assert [tuple(r) for r in rows] == [
        ("+79160000001", "first", TargetState.PENDING),  # the first row of a number wins
        ("+79160000002", "two", TargetState.PENDING),
        ("+79160000003", "three", TargetState.PENDING),
        ("+79160000007", "global dnc", TargetState.DNC),
        ("+79160000008", "other campaign's dnc", TargetState.PENDING),
        ("+79160000091", "own prefix dnc", TargetState.DNC),
    ]
    assert due["+79160000007"] is None and due["+79160000091"] is None
    assert due["+79160000001"] is not None
    text = await anyio.Path(stored.path).read_text(encoding="utf-8-sig")
    rejects = {r[0]: r[1] for r in list(csv.reader(io.StringIO(text)))[1:]}
    assert sorted(rejects, key=int) == ["4", "6", "7", "11"]
    assert rejects["4"] == rejects["6"] == "duplicate: the number is already in this list"
    assert rejects["7"] == "duplicate: the number is already in the campaign"
    assert not rejects["11"].startswith("duplicate")  # the bad number, with the parser's reason
    async with db.transaction() as s:
        older = await s.scalar(select(func.count()).where(m.CampaignTarget.list_id == older_id))
    assert older == 1


async def test_duplicates_in_a_batch_across_batches_and_in_the_campaign_and_dnc_decided_as_rows_go_in(
    services: Services, monkeypatch: Any
) -> None:
    monkeypatch.setattr(im, "BATCH", 3)
    who, campaign_id, older_id = await _world(services.db)
    await _check(services.db, services.settings.data_dir, who, campaign_id, older_id)


async def test_the_embedded_sqlite_install_reports_the_same_duplicates_and_dnc(
    sqlite_template: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(im, "BATCH", 3)
    url = copy_sqlite(sqlite_template, tmp_path, "lists.sqlite3")
    db = Database(url)
    try:
        who, campaign_id, older_id = await _world(db)
        await _check(db, tmp_path, who, campaign_id, older_id)
    finally:
        await db.dispose()


async def test_a_batch_whose_transaction_fails_leaves_none_of_its_targets(services: Services) -> None:
    """The batch's insert ran on the raw connection before the session had begun its transaction,
    so it committed on its own: a batch that failed after it (a stopped node, a failing DNC
    update) left targets the job never counted. Now the batch is one transaction."""
    _who, campaign_id, _older = await _world(services.db)
    async with services.db.transaction() as s:
        call_list = m.CallList(campaign_id=campaign_id, name="half")
        s.add(call_list)
        await s.flush()
        list_id = call_list.id
    async with services.db.transaction() as s:
        into = await im.Target.of(s, services.db.is_sqlite, campaign_id, list_id)
    ctx = im.Context(im.Mapping(phones=(0,)), 1, "RU", "Europe/Moscow", "en")
    rows = [im.normalise(n, [f"+7926{n:07d}"], ctx) for n in range(20)]

    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        async with services.db.transaction() as s:  # the batch's transaction, as run_import opens it
            stored = await im._store(s, into, rows, "en")
            assert stored.imported == 20
            raise Stop
    async with services.db.transaction() as s:
        left = await s.scalar(select(func.count()).where(m.CampaignTarget.list_id == list_id))
    assert left == 0


async def test_merging_contacts_keeps_their_campaign_targets_on_the_contact_kept(services: Services) -> None:
    """``campaign_targets.contact_id`` has no foreign key since 0025_import13: the merge moves it."""
    _who, campaign_id, _older = await _world(services.db)
    async with services.db.transaction() as s:
        keep = m.Contact(name="Keep", custom_fields={}, tags=[], blacklisted=False)
        drop = m.Contact(name="Drop", custom_fields={}, tags=[], blacklisted=False)
        s.add_all([keep, drop])
        await s.flush()
        target = m.CampaignTarget(
            campaign_id=campaign_id, phone="+79260000001", phones=["+79260000001"], contact_id=drop.id
        )
        s.add(target)
        await s.flush()
        target_id, keep_id = target.id, keep.id
        await do_merge_contacts(s, keep, drop)
    async with services.db.transaction() as s:
        assert (await s.get_one(m.CampaignTarget, target_id)).contact_id == keep_id
