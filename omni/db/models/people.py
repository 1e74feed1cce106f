"""People and routing configuration: users, groups, skills, queues, statuses, presence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from omni.db.models.base import (
    Base,
    BigId,
    PhoneEndpoint,
    Role,
    StatusKind,
    Strategy,
    utcnow,
)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default=Role.OPERATOR)
    language: Mapped[str] = mapped_column(String(8), default="en")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    sip_extension: Mapped[str | None] = mapped_column(String(32))
    phone_endpoint: Mapped[str] = mapped_column(String(16), default=PhoneEndpoint.DESK, server_default="desk")
    """``PhoneEndpoint``: which phone Omni rings for this user (``omni.domain.softphone``)."""
    handles_chat: Mapped[bool] = mapped_column(Boolean, default=True)
    handles_voice: Mapped[bool] = mapped_column(Boolean, default=True)
    capacity: Mapped[int] = mapped_column(Integer, default=3)
    """Load units; a conversation fits when current load + its weight stays within this."""
    chat_weight: Mapped[int] = mapped_column(Integer, default=1)
    voice_weight: Mapped[int] = mapped_column(Integer, default=3)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    totp_secret: Mapped[str | None] = mapped_column(String(512))
    """Two-factor sign-in: the TOTP secret, encrypted with the settings key (``omni.crypto``);
    set while enrolling, in force once ``totp_enabled_at`` is set (``omni.domain.totp``)."""
    totp_enabled_at: Mapped[datetime | None] = mapped_column()
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    """The 30-second step of the last accepted code: a code is accepted once (no replay)."""
    auth_source: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    """``local`` (password here) or ``ldap`` (checked by the directory: ``omni.domain.ldap_auth``)."""


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class SupervisorScope(Base):
    """A supervisor sees the groups and queues listed here, and nothing else."""

    __tablename__ = "supervisor_scopes"

    id: Mapped[int] = mapped_column(primary_key=True)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))


class Skill(Base):
    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class UserSkill(Base):
    __tablename__ = "user_skills"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=1)


class ResultCode(Base):
    __tablename__ = "result_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    name_ru: Mapped[str] = mapped_column(String(128), default="", server_default="")
    """The Russian name (empty: the English ``name`` is shown in Russian too)."""
    colour: Mapped[str] = mapped_column(String(16), default="#888888")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def name_in(self, lang: str) -> str:
        return self.name_ru if lang == "ru" and self.name_ru else self.name


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    strategy: Mapped[str] = mapped_column(String(24), default=Strategy.LONGEST_IDLE)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """``{"timezone": "Europe/Moscow", "days": {"0": [["09:00","18:00"]], ...}}``; null = 24/7."""
    queue_timeout_seconds: Mapped[int] = mapped_column(Integer, default=300)
    operator_timeout_seconds: Mapped[int] = mapped_column(Integer, default=20)
    auto_accept: Mapped[bool] = mapped_column(Boolean, default=False)
    overflow_action: Mapped[str] = mapped_column(String(16), default="none")
    """none | queue | voicemail | offline_form | bot | callback."""
    overflow_queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    overflow_scenario: Mapped[str] = mapped_column(String(64), default="")
    """Key of the published scenario ``overflow_action = "bot"`` starts (e.g. "leave a message")."""
    sla_seconds: Mapped[int] = mapped_column(Integer, default=20)
    wrap_up_seconds: Mapped[int] = mapped_column(Integer, default=30)
    default_result_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("result_codes.id", ondelete="SET NULL")
    )
    chats_block_calls: Mapped[bool] = mapped_column(Boolean, default=True)
    manual_pick: Mapped[bool] = mapped_column(Boolean, default=True)
    escalation: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Steps ``{"after_seconds": 60, "relax_levels": 1, "add_queue_id": 2}`` applied in order."""
    idle_close_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """A chat with no message either way for this long is closed, the customer told why
    (``omni.domain.inactivity``); 0 = never."""
    missed_offers_pause: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """An operator who lets this many offers in a row ring out (the last one of this queue) is
    put on pause with the reason shown to supervisors; 0 = never."""
    script: Mapped[str] = mapped_column(Text, default="")
    affinity_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Same-customer affinity (``omni.domain.place``): a new contact of a customer whose other
    conversation an operator handles is offered to that operator alone for this long, then by
    the strategy. 0 = off."""
    affinity_skip_ivr: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    """Such a customer skips the inbox's bot scenario (the IVR) and goes straight into line."""
    blend_notice: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    """Tell the customers of an operator's open chats that the reply will take a moment when
    the operator takes a call."""
    blend_reoffer_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """A chat of this queue whose customer waits for the reply of an operator on a call longer
    than this is offered to someone else, keeping its place in line. 0 = off."""


class QueueSkill(Base):
    __tablename__ = "queue_skills"

    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    min_level: Mapped[int] = mapped_column(Integer, default=1)


class QueueResultCode(Base):
    __tablename__ = "queue_result_codes"

    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    result_code_id: Mapped[int] = mapped_column(
        ForeignKey("result_codes.id", ondelete="CASCADE"), primary_key=True
    )


class QueueMember(Base):
    """Operator membership; one operator may serve many queues (accounting is per queue)."""

    __tablename__ = "queue_members"

    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    """Order for the linear strategy (lower first)."""
    penalty: Mapped[int] = mapped_column(Integer, default=0)


class QueueRoutingState(Base):
    """Per-queue memory of strategies that need it (round-robin's last answerer)."""

    __tablename__ = "queue_routing_state"

    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    last_user_id: Mapped[int | None] = mapped_column(Integer)


class RoutingConfig(Base):
    """One row (``id`` 1): the version of every queue's routing settings, members and required
    skills. On PostgreSQL, triggers on ``queues``, ``queue_members`` and ``queue_skills`` set it
    from a sequence in the changing transaction; each node's router caches those rows for one
    version (``omni.domain.routing_config``). Unused on SQLite."""

    __tablename__ = "routing_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class OperatorStatus(Base):
    """Admin-defined shared statuses; system ones are created by the first migration."""

    __tablename__ = "operator_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    name_ru: Mapped[str] = mapped_column(String(64), default="")
    colour: Mapped[str] = mapped_column(String(16), default="#888888")
    kind: Mapped[str] = mapped_column(String(16), default=StatusKind.PAUSE)
    receives_voice: Mapped[bool] = mapped_column(Boolean, default=False)
    receives_chats: Mapped[bool] = mapped_column(Boolean, default=False)
    takes_outbound: Mapped[bool] = mapped_column(Boolean, default=False)
    """Campaign attempts (outbound, blending) may be given to operators in this status; the
    admin form defaults it to true for statuses of kind ``available``."""
    productive: Mapped[bool] = mapped_column(Boolean, default=False)
    selectable: Mapped[bool] = mapped_column(Boolean, default=True)
    max_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)


class OperatorPresence(Base):
    """The current shared status of one operator: the row the router locks."""

    __tablename__ = "operator_presence"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    status_id: Mapped[int] = mapped_column(ForeignKey("operator_statuses.id"))
    since: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(256), default="")
    effective_code: Mapped[str] = mapped_column(String(32), default=StatusKind.OFFLINE)
    """What the operator is doing now (ringing, talking, wrap_up or the chosen status code)."""
    effective_since: Mapped[datetime] = mapped_column(default=utcnow)
    connections: Mapped[int] = mapped_column(Integer, default=0)
    last_disconnect_at: Mapped[datetime | None] = mapped_column()
    idle_since: Mapped[datetime] = mapped_column(default=utcnow)
    """When the operator last became free of all work (longest-idle strategy)."""
    over_limit_flagged: Mapped[bool] = mapped_column(Boolean, default=False)


class OperatorConnection(Base):
    """One open operator socket on one app node; a node that stops heartbeating loses them."""

    __tablename__ = "operator_connections"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    connected_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusHistory(Base):
    __tablename__ = "status_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status_id: Mapped[int] = mapped_column(ForeignKey("operator_statuses.id"))
    status_code: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(256), default="")
    set_by_id: Mapped[int | None] = mapped_column(Integer)
