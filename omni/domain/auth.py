"""Identity and scope: passwords, browser sessions, API tokens, and who may see what.

``access_conversation`` is the only way a transport loads a conversation for a user.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Select, bindparam, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import driver
from omni.db import models as m
from omni.domain.errors import DomainError, InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from omni.domain.event_types import is_private
from omni.settings import LdapSettings

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "password must be at least {min_password_length} characters",
            min_password_length=MIN_PASSWORD_LENGTH,
            field="password",
        )
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller as transports pass it to domain services."""

    id: int
    username: str
    role: m.Role
    language: str = "en"
    """The language refusals are shown in (the user's setting, or the page's choice)."""

    @property
    def is_admin(self) -> bool:
        return self.role == m.Role.ADMIN

    @classmethod
    def of(cls, user: m.User) -> Principal:
        return cls(id=user.id, username=user.username, role=m.Role(user.role), language=user.language or "en")


async def check_credentials(
    session: AsyncSession, username: str, password: str, directory: LdapSettings | None = None
) -> m.User:
    """The user whose password this is; with a ``directory`` configured, usernames without a
    local account are checked by LDAP (``omni.domain.ldap_auth``)."""
    from omni.domain import ldap_auth  # it imports Principal from here

    user = await session.scalar(select(m.User).where(m.User.username == username))
    if ldap_auth.uses_directory(directory, user):
        assert directory is not None
        return await ldap_auth.do_directory_login(session, directory, username, password)
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        raise NotAuthenticated("wrong username or password")
    return user


async def do_create_session(session: AsyncSession, user: m.User, max_age: int) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        m.UserSession(
            token_hash=_digest(token),
            user_id=user.id,
            expires_at=datetime.now(UTC) + timedelta(seconds=max_age),
        )
    )
    return token


async def do_end_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(m.UserSession).where(m.UserSession.token_hash == _digest(token)))


async def user_for_session(session: AsyncSession, token: str) -> m.User | None:
    row = await session.get(m.UserSession, _digest(token))
    if row is None or row.expires_at < datetime.now(UTC):
        return None
    user = await session.get(m.User, row.user_id)
    return user if user is not None and user.is_active else None


async def do_create_api_token(session: AsyncSession, user: m.User, name: str) -> tuple[m.ApiToken, str]:
    token = "omni_" + secrets.token_urlsafe(32)
    row = m.ApiToken(user_id=user.id, name=name, token_hash=_digest(token))
    session.add(row)
    await session.flush()
    return row, token


async def user_for_api_token(session: AsyncSession, token: str) -> m.User | None:
    row = await session.scalar(
        select(m.ApiToken).where(m.ApiToken.token_hash == _digest(token), m.ApiToken.revoked.is_(False))
    )
    if row is None:
        return None
    row.last_used_at = datetime.now(UTC)
    user = await session.get(m.User, row.user_id)
    return user if user is not None and user.is_active else None


# --- scope -------------------------------------------------------------------------------


async def visible_queue_ids(session: AsyncSession, who: Principal) -> set[int] | None:
    """Queues the caller may see; ``None`` means all (admin)."""
    if who.role == m.Role.ADMIN:
        return None
    if who.role == m.Role.OPERATOR:
        rows = await session.scalars(select(m.QueueMember.queue_id).where(m.QueueMember.user_id == who.id))
        return set(rows)
    if who.role == m.Role.SUPERVISOR:
        scopes = (
            await session.scalars(select(m.SupervisorScope).where(m.SupervisorScope.supervisor_id == who.id))
        ).all()
        queue_ids = {s.queue_id for s in scopes if s.queue_id is not None}
        group_ids = {s.group_id for s in scopes if s.group_id is not None}
        if group_ids:
            queue_ids |= set(await session.scalars(select(m.Queue.id).where(m.Queue.group_id.in_(group_ids))))
        return queue_ids
    return set()


async def visible_user_ids(session: AsyncSession, who: Principal) -> set[int] | None:
    """Operators whose presence and statistics the caller may see; ``None`` means all."""
    if who.role == m.Role.ADMIN:
        return None
    if who.role == m.Role.SUPERVISOR:
        scopes = (
            await session.scalars(select(m.SupervisorScope).where(m.SupervisorScope.supervisor_id == who.id))
        ).all()
        group_ids = {s.group_id for s in scopes if s.group_id is not None}
        queue_ids = await visible_queue_ids(session, who) or set()
        users: set[int] = set()
        if group_ids:
            users |= set(
                await session.scalars(
                    select(m.GroupMember.user_id).where(m.GroupMember.group_id.in_(group_ids))
                )
            )
        if queue_ids:
            users |= set(
                await session.scalars(
                    select(m.QueueMember.user_id).where(m.QueueMember.queue_id.in_(queue_ids))
                )
            )
        return users
    if who.role == m.Role.OPERATOR:
        return {who.id}
    return set()


def check_role(who: Principal, *roles: m.Role) -> None:
    if who.role not in roles:
        raise PermissionDenied(
            "this action needs the role {roles}", roles=" or ".join(r.value for r in roles)
        )


_CONVERSATION = driver.Entity.of(m.Conversation)


@functools.cache
def _conversation_by_id(for_update: bool) -> Select[Any]:
    """``access_conversation``'s read, built once: its row becomes the session's object without
    the ORM's execution (``driver.load_first``), on every operator reply and action."""
    table = m.Conversation.__table__
    stmt = select(*_CONVERSATION.columns(table)).where(table.c.id == bindparam("id"))
    return stmt.with_for_update() if for_update else stmt


async def access_conversation(
    session: AsyncSession, who: Principal, conversation_id: int, *, for_update: bool = False
) -> m.Conversation:
    """Load a conversation the caller may act on, or refuse.

    Operators: conversations of their queues, or assigned/offered to them.
    Supervisors: conversations of the queues in their scope. Auditors: none.
    A conversation outside the caller's scope is reported as not found, so ids don't leak.
    """
    conv: m.Conversation | None = await driver.load_first(
        session, _CONVERSATION, _conversation_by_id(for_update), {"id": conversation_id}
    )
    if conv is None:
        raise NotFound("conversation {conversation_id} not found", conversation_id=conversation_id)
    if who.role == m.Role.ADMIN:
        return conv
    if who.role == m.Role.AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")
    if conv.assigned_user_id == who.id or conv.preferred_user_id == who.id:
        return conv
    if who.role == m.Role.OPERATOR:
        offered = await session.scalar(
            select(m.Offer.id).where(m.Offer.conversation_id == conv.id, m.Offer.user_id == who.id).limit(1)
        )
        if offered is not None:
            return conv
    queues = await visible_queue_ids(session, who) or set()
    conv_queues = {conv.queue_id, *conv.extra_queue_ids}
    if queues & conv_queues:
        return conv
    raise NotFound("conversation {conversation_id} not found", conversation_id=conversation_id)


def conversation_scope_filter(queue_ids: set[int] | None, who: Principal) -> list[ColumnElement[bool]]:
    """SQL conditions limiting a conversation list to the caller's scope."""
    if queue_ids is None:
        return []
    return [
        or_(
            m.Conversation.queue_id.in_(queue_ids),
            m.Conversation.assigned_user_id == who.id,
        )
    ]


def visible_conversations_filter(queue_ids: set[int] | None, who: Principal) -> list[ColumnElement[bool]]:
    """SQL conditions for every conversation the caller may open (``access_conversation``'s
    rule in SQL): its queue is in scope, or it is assigned, reserved or was offered to them."""
    if queue_ids is None:
        return []
    offered = select(m.Offer.conversation_id).where(m.Offer.user_id == who.id)
    return [
        or_(
            m.Conversation.queue_id.in_(queue_ids),
            m.Conversation.assigned_user_id == who.id,
            m.Conversation.preferred_user_id == who.id,
            m.Conversation.id.in_(offered),
        )
    ]


async def contact_scope_filter(session: AsyncSession, who: Principal) -> list[ColumnElement[bool]]:
    """SQL conditions limiting contacts to those the caller may see.

    A contact is visible to whoever may see at least one of its conversations (admins: all),
    so a contact's name, e-mail and identities don't leak across groups.
    """
    if who.role == m.Role.AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")
    queues = await visible_queue_ids(session, who)
    if queues is None:
        return []
    convs = select(m.Conversation.contact_id).where(*visible_conversations_filter(queues, who))
    return [m.Contact.id.in_(convs)]


async def access_contact(
    session: AsyncSession, who: Principal, contact_id: int, *, for_update: bool = False
) -> m.Contact:
    """Load a contact the caller may see, or refuse; out of scope reads as not found."""
    stmt = select(m.Contact).where(m.Contact.id == contact_id, *await contact_scope_filter(session, who))
    if for_update:
        stmt = stmt.with_for_update()
    contact = await session.scalar(stmt)
    if contact is None:
        raise NotFound("contact {contact_id} not found", contact_id=contact_id)
    return contact


class ScopedEvent(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def queue_id(self) -> int | None: ...
    @property
    def user_id(self) -> int | None: ...


def event_visible(
    event: ScopedEvent, who: Principal, queue_ids: set[int] | None, user_ids: set[int] | None
) -> bool:
    """Whether an event of the feed (REST ``/events``, the socket ``resume``) is in scope:
    admins see all; others the events of their queues and of the people they may see. A
    private note or a whisper (``event_types.is_private``) reaches an operator only in the
    conversation they handle, as in the live fan-out."""
    if queue_ids is None:
        return True
    if who.role == m.Role.OPERATOR and is_private(event.type, event.payload) and event.user_id != who.id:
        return False
    if event.queue_id is not None and event.queue_id in queue_ids:
        return True
    return event.user_id is not None and (
        event.user_id == who.id or (user_ids is not None and event.user_id in user_ids)
    )


async def access_user(session: AsyncSession, user_id: int) -> m.User:
    user = await session.get(m.User, user_id)
    if user is None:
        raise NotFound("user {user_id} not found", user_id=user_id)
    return user


@dataclass(frozen=True)
class LoginResult:
    """A sign-in attempt: the session token and user, or the refusal to show."""

    user: m.User | None
    token: str | None
    refused: DomainError | None
    second_factor: str | None = None
    """The password was right but the user still owes a TOTP ``code`` (no ``otp`` was sent)
    or must ``enrol`` first (their role requires a second factor): no session yet."""


async def do_login(
    session: AsyncSession,
    username: str,
    password: str,
    *,
    ip: str,
    max_age_seconds: int,
    otp: str | None = None,
    secret_key: str = "",
    directory: LdapSettings | None = None,
) -> LoginResult:
    """Both sign-in doors (REST and the form) go through here, so they audit alike.

    A refusal is returned, not raised: the "denied" audit row is written in the caller's
    transaction, and raising inside it would roll that row back (as the REST login once did).
    A user with two-factor sign-in (``omni.domain.totp``) gets a session only with a valid
    ``otp``; without one the result names the ``second_factor`` still owed. ``directory``:
    the LDAP settings when sign-in against a directory is configured.
    """
    from omni.domain import audit, totp  # both import Principal from here

    try:
        user = await check_credentials(session, username, password, directory)
        factor = await totp.second_factor(session, user)
        if factor == "code" and otp is not None:
            totp.check_code(user, otp, secret_key)
            factor = None
    except DomainError as exc:
        audit.record(
            session, None, "auth.login", object_type="user", object_id=username[:64], result="denied", ip=ip
        )
        return LoginResult(None, None, exc)
    if factor is not None:
        return LoginResult(user, None, None, second_factor=factor)
    return await do_open_session(session, user, ip=ip, max_age_seconds=max_age_seconds)


async def do_open_session(
    session: AsyncSession, user: m.User, *, ip: str, max_age_seconds: int
) -> LoginResult:
    """A signed-in user's session (after the password, and the code when one is owed), audited."""
    from omni.domain import audit

    token = await do_create_session(session, user, max_age_seconds)
    audit.record(session, Principal.of(user), "auth.login", object_type="user", object_id=user.id, ip=ip)
    return LoginResult(user, token, None)
