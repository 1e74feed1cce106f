"""Demo data: what ``omni demo`` seeds so a first run has something to click through."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omni import seed
from omni.db import models as m
from omni.domain.auth import hash_password


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    role: str


async def _user(
    session: AsyncSession, username: str, role: m.Role, name: str, password: str, reset: bool
) -> tuple[m.User, bool]:
    existing = await session.scalar(select(m.User).where(m.User.username == username))
    if existing is not None:
        if reset:
            existing.password_hash = hash_password(password)
        return existing, reset
    user = await seed.user(
        session,
        username,
        role,
        password_hash=hash_password(password),
        display_name=name,
        language="ru" if username.endswith("ru") else "en",
    )
    return user, True


async def seed_demo(
    session: AsyncSession, password: str | None = None, *, reset_passwords: bool = False
) -> list[DemoLogin]:
    """Admin, supervisor, two operators, two queues, statuses and result codes.

    Idempotent: existing demo users keep their passwords unless ``reset_passwords`` (the
    run command resets them so it can print working logins on every start).
    """
    password = password or secrets.token_urlsafe(9)
    logins: list[DemoLogin] = []
    people = [
        ("admin", m.Role.ADMIN, "Demo Admin"),
        ("supervisor", m.Role.SUPERVISOR, "Svetlana Supervisor"),
        ("operator1", m.Role.OPERATOR, "Olga Operator"),
        ("operator2", m.Role.OPERATOR, "Oleg Operator"),
    ]
    users: dict[str, m.User] = {}
    for username, role, name in people:
        user, created = await _user(session, username, role, name, password, reset_passwords)
        users[username] = user
        if created:
            logins.append(DemoLogin(username, password, role.value))
    codes: dict[str, m.ResultCode] = {}
    for code_name, name, name_ru, colour in [
        ("resolved", "Resolved", "Решено", "#2e7d32"),
        ("callback", "Call back", "Перезвонить", "#f9a825"),
        ("no_answer", "No answer", "Нет ответа", "#9e9e9e"),
        ("spam", "Spam", "Спам", "#c62828"),
    ]:
        codes[code_name] = await seed.result_code(
            session, code_name, name=name, name_ru=name_ru, colour=colour
        )
    lunch = await session.scalar(select(m.OperatorStatus).where(m.OperatorStatus.code == "lunch"))
    if lunch is None:
        session.add_all(
            [
                m.OperatorStatus(
                    code="lunch",
                    name="Lunch",
                    name_ru="Обед",
                    colour="#8d6e63",
                    kind="pause",
                    receives_voice=False,
                    receives_chats=False,
                    productive=False,
                    selectable=True,
                    max_duration_seconds=3600,
                    is_system=False,
                ),
                m.OperatorStatus(
                    code="chat_only",
                    name="Chats only",
                    name_ru="Только чаты",
                    colour="#00838f",
                    kind="available",
                    receives_voice=False,
                    receives_chats=True,
                    productive=True,
                    selectable=True,
                    max_duration_seconds=None,
                    is_system=False,
                ),
            ]
        )
    group = await session.scalar(select(m.Group).where(m.Group.name == "Support"))
    if group is None:
        group = m.Group(name="Support")
        session.add(group)
        await session.flush()
        for username in ("operator1", "operator2"):
            session.add(m.GroupMember(group_id=group.id, user_id=users[username].id))
        session.add(m.SupervisorScope(supervisor_id=users["supervisor"].id, group_id=group.id))
    for name, strategy in (("Support", m.Strategy.LONGEST_IDLE), ("Sales", m.Strategy.ROUND_ROBIN)):
        queue = await session.scalar(select(m.Queue).where(m.Queue.name == name))
        if queue is not None:
            continue
        queue = await seed.queue(
            session,
            name,
            [users["operator1"], users["operator2"]],
            group_id=group.id,
            strategy=strategy,
            queue_timeout_seconds=600,
            default_result_code_id=codes["resolved"].id,
        )
        for code in codes.values():
            session.add(m.QueueResultCode(queue_id=queue.id, result_code_id=code.id))
        await seed.inbox(session, queue, "api", f"{name} API", public_token=secrets.token_urlsafe(24))
    return logins
