"""Admin changes emit ``queue.members_changed`` and ``admin.changed`` in their transaction.

Each step runs one admin action in its own transaction and asserts exactly the admin events
that transaction committed (read back from the outbox), so a missing, extra or misdirected
event fails; a rolled-back or refused change must leave none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import admin, auth
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput
from omni.services import Services
from tests import factories as f

ADMIN_TYPES = ("admin.changed", "queue.members_changed")
Committed = list[tuple[str, dict[str, Any], int | None]]


class Boom(Exception):
    """Raised inside a transaction to roll it back after the action ran."""


async def _committed(services: Services, action: Callable[[AsyncSession], Awaitable[object]]) -> Committed:
    """Run ``action`` in one transaction; the admin events it committed, in order."""
    async with services.db.transaction() as s:
        last = await s.scalar(select(func.coalesce(func.max(m.Event.id), 0)))
    async with services.db.transaction() as s:
        await action(s)
    async with services.db.transaction() as s:
        rows = await s.scalars(
            select(m.Event).where(m.Event.id > last, m.Event.type.in_(ADMIN_TYPES)).order_by(m.Event.id)
        )
        return [(e.type, e.payload, e.queue_id) for e in rows]


async def _events_total(services: Services) -> int:
    async with services.db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(m.Event)) or 0)


def changed(entity: str, ident: int, action: str) -> tuple[str, dict[str, Any], None]:
    return ("admin.changed", {"entity": entity, "id": ident, "action": action}, None)


def members(queue_id: int, user_ids: list[int]) -> tuple[str, dict[str, Any], int]:
    return ("queue.members_changed", {"queue_id": queue_id, "user_ids": user_ids}, queue_id)


async def test_queue_members_changed_on_every_membership_path(services: Services) -> None:
    async with services.db.transaction() as s:
        root_user = await f.user(s, "root", m.Role.ADMIN)
        o1, o2, o3 = [await f.user(s, name) for name in ("o1", "o2", "o3")]
        qa = await f.queue(s, "QA")
        qb = await f.queue(s, "QB")
        skill = m.Skill(name="english")
        s.add(skill)
        await s.flush()
        root = Principal.of(root_user)
        ids = {"o1": o1.id, "o2": o2.id, "o3": o3.id, "qa": qa.id, "qb": qb.id, "skill": skill.id}
    o1_id, o2_id, o3_id, qa_id, qb_id = ids["o1"], ids["o2"], ids["o3"], ids["qa"], ids["qb"]

    def staff(queue_id: int, *user_ids: int) -> Callable[[AsyncSession], Awaitable[object]]:
        body = {"members": [{"user_id": u, "position": i} for i, u in enumerate(user_ids)]}
        return lambda s: admin.check_set_queue_members(s, root, queue_id, body)

    # The queue's member list: the full sorted list after the change, on the queue's room.
    assert await _committed(services, staff(qa_id, o2_id, o1_id)) == [members(qa_id, [o1_id, o2_id])]
    assert await _committed(services, staff(qb_id, o1_id, o3_id)) == [members(qb_id, [o1_id, o3_id])]
    # Same people, another order: not a membership change, an ordinary queue update.
    assert await _committed(services, staff(qa_id, o1_id, o2_id)) == [changed("queue", qa_id, "updated")]

    # A user edit changes who serves: deactivation, reactivation, a role change.
    async def edit(user_id: int, body: dict[str, Any]) -> Committed:
        return await _committed(services, lambda s: admin.check_update_user(s, root, user_id, body))

    assert await edit(o1_id, {"is_active": False}) == [
        changed("user", o1_id, "updated"),
        members(qa_id, [o2_id]),
        members(qb_id, [o3_id]),
    ]
    assert await edit(o1_id, {"is_active": True}) == [
        changed("user", o1_id, "updated"),
        members(qa_id, [o1_id, o2_id]),
        members(qb_id, [o1_id, o3_id]),
    ]
    assert await edit(o1_id, {"display_name": "Olga", "is_active": True}) == [
        changed("user", o1_id, "updated")
    ]
    assert await edit(o2_id, {"role": "supervisor"}) == [
        changed("user", o2_id, "updated"),
        members(qa_id, [o1_id]),
    ]
    assert await _committed(services, lambda s: admin.check_deactivate_user(s, root, o1_id)) == [
        changed("user", o1_id, "updated"),
        members(qa_id, []),
        members(qb_id, [o3_id]),
    ]

    # Groups and skills don't decide membership: they change the user or queue only.
    async def grouped(s: AsyncSession) -> object:
        group = await admin.check_create_group(s, root, {"name": "Sales"})
        return await admin.check_set_user_groups(s, root, o3_id, {"group_ids": [group.id]})

    events = await _committed(services, grouped)
    assert [e[0] for e in events] == ["admin.changed", "admin.changed"]
    assert events[1] == changed("user", o3_id, "updated")
    skills = {"skills": [{"skill_id": ids["skill"], "min_level": 2}]}
    assert await _committed(services, lambda s: admin.check_set_queue_skills(s, root, qb_id, skills)) == [
        changed("queue", qb_id, "updated")
    ]
    assert await _committed(services, lambda s: admin.check_delete_skill(s, root, ids["skill"])) == [
        changed("skill", ids["skill"], "deleted")
    ]

    # A deleted queue's members go with it.
    assert await _committed(services, lambda s: admin.check_delete_queue(s, root, qb_id)) == [
        members(qb_id, []),
        changed("queue", qb_id, "deleted"),
    ]


async def test_queue_members_changed_not_emitted_when_rolled_back(services: Services) -> None:
    async with services.db.transaction() as s:
        root = Principal.of(await f.user(s, "root", m.Role.ADMIN))
        op = await f.user(s, "op")
        supervisor = await f.user(s, "sup", m.Role.SUPERVISOR)
        q = await f.queue(s, "Q", members=[op])
        op_id, sup_id, q_id = op.id, supervisor.id, q.id
    before = await _events_total(services)

    with pytest.raises(Boom):
        async with services.db.transaction() as s:
            await admin.check_set_queue_members(s, root, q_id, {"members": []})
            await admin.check_update_user(s, root, op_id, {"is_active": False})
            raise Boom
    with pytest.raises(InvalidInput):  # refused: supervisors don't staff queues
        async with services.db.transaction() as s:
            await admin.check_set_queue_members(s, root, q_id, {"members": [{"user_id": sup_id}]})
    assert await _events_total(services) == before
    async with services.db.transaction() as s:
        assert list(await s.scalars(select(m.QueueMember.user_id).where(m.QueueMember.queue_id == q_id))) == [
            op_id
        ]


async def test_admin_changed_for_every_admin_entity(services: Services) -> None:
    async with services.db.transaction() as s:
        root_user = await f.user(s, "root", m.Role.ADMIN)
        token, _ = await auth.do_create_api_token(s, root_user, "ci")
        root = Principal.of(root_user)
        token_id = token.id

    async def lifecycle(
        entity: str,
        create: Callable[[AsyncSession], Awaitable[Any]],
        update: Callable[[AsyncSession, int], Awaitable[object]],
        delete: Callable[[AsyncSession, int], Awaitable[object]] | None,
        delete_action: str = "deleted",
    ) -> None:
        created: list[int] = []

        async def make(s: AsyncSession) -> None:
            row = await create(s)
            created.append((row[0] if isinstance(row, tuple) else row).id)

        assert await _committed(services, make) == [changed(entity, created[0], "created")]
        ident = created[0]
        assert await _committed(services, lambda s: update(s, ident)) == [changed(entity, ident, "updated")]
        if delete is not None:
            assert await _committed(services, lambda s: delete(s, ident)) == [
                changed(entity, ident, delete_action)
            ]

    await lifecycle(
        "user",
        lambda s: admin.check_create_user(
            s, root, {"username": "ann", "password": "pw-123456", "role": "operator"}
        ),
        lambda s, i: admin.check_set_user_skills(s, root, i, {"skills": []}),
        None,
    )
    await lifecycle(
        "group",
        lambda s: admin.check_create_group(s, root, {"name": "Support"}),
        lambda s, i: admin.check_update_group(s, root, i, {"name": "Support 2"}),
        lambda s, i: admin.check_delete_group(s, root, i),
    )
    await lifecycle(
        "skill",
        lambda s: admin.check_create_skill(s, root, {"name": "german"}),
        lambda s, i: admin.check_update_skill(s, root, i, {"name": "deutsch"}),
        lambda s, i: admin.check_delete_skill(s, root, i),
    )
    await lifecycle(
        "queue",
        lambda s: admin.check_create_queue(s, root, {"name": "Billing"}),
        lambda s, i: admin.check_update_queue(s, root, i, {"priority": 3}),
        lambda s, i: admin.check_delete_queue(s, root, i),
    )
    await lifecycle(
        "status",
        lambda s: admin.check_create_status(s, root, {"code": "training", "name": "Training"}),
        lambda s, i: admin.check_update_status(s, root, i, {"colour": "#112233"}),
        lambda s, i: admin.check_delete_status(s, root, i),
    )
    await lifecycle(
        "result_code",
        lambda s: admin.check_create_result_code(s, root, {"code": "sold", "name": "Sold"}),
        lambda s, i: admin.check_update_result_code(s, root, i, {"name": "Sold!"}),
        lambda s, i: admin.check_deactivate_result_code(s, root, i),
        delete_action="updated",  # codes are deactivated, never deleted
    )
    await lifecycle(
        "inbox",
        lambda s: admin.check_create_inbox(s, root, {"name": "Site", "channel": "widget"}),
        lambda s, i: admin.check_rotate_inbox_secret(s, root, i, "k" * 32),
        lambda s, i: admin.check_delete_inbox(s, root, i),
    )
    await lifecycle(
        "webhook",
        lambda s: admin.check_create_webhook(s, root, {"name": "CRM", "url": "https://crm.example.com/hook"}),
        lambda s, i: admin.check_update_webhook(s, root, i, {"active": False}),
        lambda s, i: admin.check_delete_webhook(s, root, i),
    )
    await lifecycle(
        "canned",
        lambda s: admin.check_create_canned_reply(
            s, root, {"shortcut": "hi", "title": "Hi", "body": "Hello"}
        ),
        lambda s, i: admin.check_update_canned_reply(s, root, i, {"title": "Hello"}),
        lambda s, i: admin.check_delete_canned_reply(s, root, i),
    )
    await lifecycle(
        "card_field",
        lambda s: admin.check_create_card_field(s, root, {"key": "plan", "label": "Plan"}),
        lambda s, i: admin.check_update_card_field(s, root, i, {"label": "Tariff"}),
        lambda s, i: admin.check_delete_card_field(s, root, i),
    )
    await lifecycle(
        "contact",
        lambda s: admin.check_create_contact(s, root, {"name": "Ivan", "phone": "+79001234567"}),
        lambda s, i: admin.check_update_contact(s, root, i, {"tags": ["vip"]}),
        None,
    )
    assert await _committed(services, lambda s: admin.check_revoke_token(s, root, token_id)) == [
        changed("token", token_id, "updated")
    ]


async def test_admin_changed_not_emitted_when_rolled_back(services: Services) -> None:
    async with services.db.transaction() as s:
        root = Principal.of(await f.user(s, "root", m.Role.ADMIN))
    before = await _events_total(services)
    with pytest.raises(Boom):
        async with services.db.transaction() as s:
            await admin.check_create_group(s, root, {"name": "Ghosts"})
            await admin.check_create_queue(s, root, {"name": "Ghost queue"})
            raise Boom
    with pytest.raises(InvalidInput):  # refused before anything is written
        async with services.db.transaction() as s:
            await admin.check_create_skill(s, root, {"name": ""})
    assert await _events_total(services) == before
    async with services.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(m.Group)) == 0
