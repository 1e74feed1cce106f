"""Admin section for skills: a skill, the level each operator has in it and the minimum level
each queue asks for, on one form.

The form is skill-centred (one row per operator and per queue), while the REST API keeps a
user's skills on the user (``PUT /api/v1/users/{id}/skills``) and a queue's on the queue
(``PUT /api/v1/queues/{id}/skills``): saving calls exactly those domain actions, for the
operators and queues whose level changed, so both paths validate and audit alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import admin
from omni.domain.errors import DomainError, NotFound
from omni.web.admin.forms import LIMIT, Cell, Field, Section, Table


def _operator_field(user_id: int) -> str:
    return f"user_{user_id}"


def _queue_field(queue_id: int) -> str:
    return f"queue_{queue_id}"


class Skills(Section):
    slug = "skills"
    title = "adm.skills"

    async def table(self, session: AsyncSession) -> Table:
        skills = await admin.list_skills(session, self.who, limit=LIMIT)
        users: dict[int, int] = {}
        queues: dict[int, int] = {}
        for sid in await session.scalars(select(m.UserSkill.skill_id)):
            users[sid] = users.get(sid, 0) + 1
        for sid in await session.scalars(select(m.QueueSkill.skill_id)):
            queues[sid] = queues.get(sid, 0) + 1
        rows = [
            [Cell(s.name, self.href(s.id)), Cell(str(users.get(s.id, 0))), Cell(str(queues.get(s.id, 0)))]
            for s in skills
        ]
        return Table([self.t(c) for c in ("adm.f.name", "adm.skill.operators", "adm.skill.queues")], rows)

    async def load(self, session: AsyncSession, item_id: int) -> Any:
        skill = await session.get(m.Skill, item_id)
        if skill is None:
            raise NotFound("skill {item_id} not found", item_id=item_id)
        return skill

    async def _operators(self, session: AsyncSession) -> list[m.User]:
        return [
            u
            for u in await admin.list_users(session, self.who, limit=LIMIT)
            if u.role == m.Role.OPERATOR and u.is_active
        ]

    async def fields(self, session: AsyncSession, item: Any | None) -> list[Field]:
        t = self.t
        fields = [Field("name", t("adm.f.name"), required=True)]
        fields += [
            Field(
                _operator_field(u.id),
                t("adm.skill.level_of", name=u.display_name or u.username),
                "number",
                nullable=True,
                help=t("adm.skill.level_help"),
            )
            for u in await self._operators(session)
        ]
        fields += [
            Field(
                _queue_field(q.id),
                t("adm.skill.min_level_of", name=q.name),
                "number",
                nullable=True,
                help=t("adm.skill.min_level_help"),
            )
            for q in await admin.list_queues(session, self.who, limit=LIMIT)
        ]
        return fields

    async def values(self, session: AsyncSession, item: Any | None) -> dict[str, Any]:
        if item is None:
            return {"name": ""}
        body: dict[str, Any] = {"name": item.name}
        for us in await session.scalars(select(m.UserSkill).where(m.UserSkill.skill_id == item.id)):
            body[_operator_field(us.user_id)] = us.level
        for qs in await session.scalars(select(m.QueueSkill).where(m.QueueSkill.skill_id == item.id)):
            body[_queue_field(qs.queue_id)] = qs.min_level
        return body

    async def save(self, session: AsyncSession, item_id: int | None, data: dict[str, Any]) -> int:
        levels = {k: data.pop(k) for k in [k for k in data if k.startswith(("user_", "queue_"))]}
        if item_id is None:
            skill = await admin.check_create_skill(session, self.who, data)
        else:
            skill = await admin.check_update_skill(session, self.who, item_id, data)
        problems: list[DomainError] = []
        for key, level in levels.items():
            kind, _, raw_id = key.partition("_")
            try:
                if kind == "user":
                    await self._set_user_level(session, skill.id, int(raw_id), level)
                else:
                    await self._set_queue_level(session, skill.id, int(raw_id), level)
            except DomainError as exc:
                for problem in exc.errors or [exc]:
                    problem.field = key  # the row it is about, not the list index
                    problems.append(problem)
        if problems:
            first = problems[0]
            first.errors = problems if len(problems) > 1 else []
            raise first
        return skill.id

    async def _set_user_level(
        self, session: AsyncSession, skill_id: int, user_id: int, level: int | None
    ) -> None:
        rows = list(await session.scalars(select(m.UserSkill).where(m.UserSkill.user_id == user_id)))
        current = {r.skill_id: r.level for r in rows}
        if current.get(skill_id) == level:
            return
        skills = [{"skill_id": sid, "level": lv} for sid, lv in sorted(current.items()) if sid != skill_id]
        if level is not None:
            skills.append({"skill_id": skill_id, "level": level})
        await admin.check_set_user_skills(session, self.who, user_id, {"skills": skills})

    async def _set_queue_level(
        self, session: AsyncSession, skill_id: int, queue_id: int, level: int | None
    ) -> None:
        rows = list(await session.scalars(select(m.QueueSkill).where(m.QueueSkill.queue_id == queue_id)))
        current = {r.skill_id: r.min_level for r in rows}
        if current.get(skill_id) == level:
            return
        skills = [
            {"skill_id": sid, "min_level": lv} for sid, lv in sorted(current.items()) if sid != skill_id
        ]
        if level is not None:
            skills.append({"skill_id": skill_id, "min_level": level})
        await admin.check_set_queue_skills(session, self.who, queue_id, {"skills": skills})

    async def delete(self, session: AsyncSession, item_id: int) -> None:
        await admin.check_delete_skill(session, self.who, item_id)
