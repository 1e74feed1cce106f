"""Shared canned replies and customer card fields: validation, scope and the audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from omni.db import models as m
from omni.domain import admin
from omni.domain.auth import Principal
from omni.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from omni.services import Services
from tests import factories as f


async def _world(services: Services) -> dict[str, int]:
    async with services.db.transaction() as s:
        root = await f.user(s, "root", m.Role.ADMIN)
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        aud = await f.user(s, "aud", m.Role.AUDITOR)
        op = await f.user(s, "op")
        qa = await f.queue(s, "QA")
        qb = await f.queue(s, "QB")
        s.add(m.SupervisorScope(supervisor_id=sup.id, queue_id=qa.id))
        s.add(m.CannedReply(owner_user_id=op.id, shortcut="mine", title="Mine", body="personal"))
        return {"root": root.id, "sup": sup.id, "aud": aud.id, "op": op.id, "qa": qa.id, "qb": qb.id}


async def _who(services: Services, user_id: int) -> Principal:
    async with services.db.transaction() as s:
        return Principal.of(await s.get_one(m.User, user_id))


async def test_canned_reply_rules(services: Services) -> None:
    ids = await _world(services)
    root, sup, aud = [await _who(services, ids[k]) for k in ("root", "sup", "aud")]
    db = services.db

    with pytest.raises(InvalidInput) as bad:
        async with db.transaction() as s:
            await admin.check_create_canned_reply(
                s, root, {"shortcut": "hi", "title": "Hi", "body": "Hi {{ contact.age }}"}
            )
    assert bad.value.field == "body" and "{{contact.age}}" in bad.value.message
    for shortcut in ("Hi", "with space", "x" * 33, ""):
        with pytest.raises(InvalidInput) as bad:
            async with db.transaction() as s:
                await admin.check_create_canned_reply(
                    s, root, {"shortcut": shortcut, "title": "t", "body": "b"}
                )
        assert bad.value.field == "shortcut"
    with pytest.raises(InvalidInput) as bad:
        async with db.transaction() as s:
            await admin.check_create_canned_reply(
                s, root, {"shortcut": "long", "title": "t", "body": "x" * 4001}
            )
    assert bad.value.field == "body"

    async with db.transaction() as s:
        everyone = await admin.check_create_canned_reply(
            s,
            root,
            {"shortcut": "mine", "title": "Hi", "body": "Hello {{contact.name}}, {{operator.name}} here"},
        )
        for_qa = await admin.check_create_canned_reply(
            s, sup, {"queue_id": ids["qa"], "shortcut": "mine", "title": "QA", "body": "x"}
        )
        await admin.check_create_canned_reply(
            s, root, {"queue_id": ids["qb"], "shortcut": "b", "title": "B", "body": "x"}
        )
    with pytest.raises(Conflict):  # the personal "mine" doesn't count, the global one does
        async with db.transaction() as s:
            await admin.check_create_canned_reply(
                s, root, {"shortcut": "mine", "title": "again", "body": "x"}
            )

    with pytest.raises(PermissionDenied):
        async with db.transaction() as s:
            await admin.check_create_canned_reply(s, sup, {"shortcut": "g", "title": "g", "body": "x"})
    with pytest.raises(PermissionDenied):
        async with db.transaction() as s:
            await admin.check_update_canned_reply(s, sup, everyone.id, {"title": "mine now"})
    with pytest.raises(InvalidInput):
        async with db.transaction() as s:
            await admin.check_update_canned_reply(s, sup, for_qa.id, {"queue_id": ids["qb"]})
    with pytest.raises(PermissionDenied):
        async with db.transaction() as s:
            await admin.check_delete_canned_reply(s, aud, for_qa.id)

    async with db.transaction() as s:
        seen_by_sup = {r.title for r in await admin.list_canned_replies(s, sup, limit=100)}
        seen_by_aud = {r.title for r in await admin.list_canned_replies(s, aud, limit=100)}
        assert seen_by_sup == {"Hi", "QA"} and seen_by_aud == {"Hi", "QA", "B"}
        await admin.check_delete_canned_reply(s, sup, for_qa.id)
        actions = list(
            await s.scalars(select(m.AuditLog.action).where(m.AuditLog.action.startswith("canned_reply.")))
        )
        assert sorted(actions) == ["canned_reply.create"] * 3 + ["canned_reply.delete"]
    with pytest.raises(NotFound):
        async with db.transaction() as s:
            personal = await s.scalar(
                select(m.CannedReply.id).where(m.CannedReply.owner_user_id == ids["op"])
            )
            assert personal is not None
            await admin.access_canned_reply(s, root, personal)


async def test_card_field_rules(services: Services) -> None:
    ids = await _world(services)
    root, sup = [await _who(services, ids[k]) for k in ("root", "sup")]
    db = services.db

    for data, field in (
        ({"key": "Tariff", "label": "x"}, "key"),
        ({"key": "1x", "label": "x"}, "key"),
        ({"key": "tariff", "label": "x", "kind": "colour"}, "kind"),
        ({"key": "tariff", "label": "x", "kind": "select"}, "options"),
        ({"key": "tariff", "label": "x", "kind": "text", "options": ["a"]}, "options"),
    ):
        with pytest.raises(InvalidInput) as bad:
            async with db.transaction() as s:
                await admin.check_create_card_field(s, root, data)
        assert bad.value.field == field, data

    async with db.transaction() as s:
        tariff = await admin.check_create_card_field(
            s, root, {"key": "tariff", "label": "Tariff", "kind": "select", "options": ["Basic", "Pro"]}
        )
        contract = await admin.check_create_card_field(
            s, sup, {"queue_id": ids["qa"], "key": "contract", "label": "Contract", "required": True}
        )
        await admin.check_create_card_field(
            s, root, {"queue_id": ids["qb"], "key": "contract", "label": "Contract B"}
        )
    for who, data in (
        (root, {"queue_id": ids["qa"], "key": "tariff", "label": "again"}),  # clashes with the global one
        (root, {"key": "contract", "label": "global"}),  # clashes with a queue's
        (sup, {"queue_id": ids["qa"], "key": "contract", "label": "again"}),
    ):
        with pytest.raises(Conflict):
            async with db.transaction() as s:
                await admin.check_create_card_field(s, who, data)
    with pytest.raises(InvalidInput):
        async with db.transaction() as s:
            await admin.check_update_card_field(s, root, tariff.id, {"key": "plan"})
    with pytest.raises(PermissionDenied):
        async with db.transaction() as s:
            await admin.check_update_card_field(s, sup, tariff.id, {"label": "mine"})

    async with db.transaction() as s:
        row = await admin.check_update_card_field(s, root, tariff.id, {"kind": "text"})
        assert row.options == []
        await admin.check_update_card_field(s, sup, contract.id, {"label": "Contract no.", "position": 2})
        assert {r.key for r in await admin.list_card_fields(s, sup, limit=100)} == {"tariff", "contract"}
        assert len(await admin.list_card_fields(s, root, limit=100)) == 3
        await admin.check_delete_card_field(s, sup, contract.id)
        count = await s.scalar(
            select(func.count()).select_from(m.AuditLog).where(m.AuditLog.action.startswith("card_field."))
        )
        assert count == 6
