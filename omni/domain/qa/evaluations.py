"""Evaluations: a grader's answers to one scorecard about one conversation, scored here.

* Graders hold ``qa.grade`` and grade only conversations they may open
  (``access_conversation``: a supervisor the queues of their groups, an admin every one).
* The score is computed by the server: ``100 × Σ(weight × fraction) / Σ weight`` over the
  answered items (``null`` = not applicable, left out); a critical item answered "no"
  makes it 0 (``critical_failed``).
* Operators see only the evaluations of their own work and may comment on each (which also
  acknowledges it); supervisors see the evaluations of their queues, admins all.

Creating one writes ``qa.evaluation_created`` (webhook-able like every event) and an audit row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain import audit, events, grants
from omni.domain.auth import Principal, access_conversation, visible_queue_ids, visible_user_ids
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.qa.scorecards import get_scorecard

MODES = ("history", "live")
COMMENT_LIMIT = 4000


def evaluation_dict(ev: m.QaEvaluation) -> dict[str, Any]:
    return {
        "id": ev.id,
        "scorecard_id": ev.scorecard_id,
        "conversation_id": ev.conversation_id,
        "grader_id": ev.grader_id,
        "operator_id": ev.operator_id,
        "queue_id": ev.queue_id,
        "mode": ev.mode,
        "answers": dict(ev.answers or {}),
        "score": ev.score,
        "critical_failed": ev.critical_failed,
        "comment": ev.comment,
        "operator_comment": ev.operator_comment,
        "acknowledged_at": ev.acknowledged_at.isoformat() if ev.acknowledged_at else None,
        "created_at": ev.created_at.isoformat(),
    }


def score(items: list[dict[str, Any]], answers: Mapping[str, Any]) -> tuple[float, bool, dict[str, Any]]:
    """``(score 0–100, critical failed, clean answers)``; every item must be answered
    (``null`` = not applicable, refused for a critical item)."""
    clean: dict[str, Any] = {}
    unknown = sorted(set(answers) - {it["key"] for it in items})
    if unknown:
        raise InvalidInput(
            "no question '{key}' on this scorecard", key=unknown[0][:32], field=f"answers.{unknown[0][:32]}"
        )
    earned = total = 0.0
    critical_failed = False
    for it in items:
        key = it["key"]
        field = f"answers.{key}"
        if key not in answers:
            raise InvalidInput(
                "answer every question: '{question}' has no answer", question=it["text"][:80], field=field
            )
        value = answers[key]
        if value is None:
            if it["critical"]:
                raise InvalidInput("a critical question must be answered yes or no", field=field)
            clean[key] = None
            continue
        if it["kind"] == "yesno":
            if not isinstance(value, bool):
                raise InvalidInput("'{field}' must be true or false", field=field)
            fraction = 1.0 if value else 0.0
            if it["critical"] and not value:
                critical_failed = True
        else:
            top = int(it["scale_max"] or 5)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise InvalidInput(
                    "{field} must be a whole number from {low} to {high}", low=0, high=top, field=field
                )
            fraction = value / top
        clean[key] = value
        earned += it["weight"] * fraction
        total += it["weight"]
    result = 0.0 if critical_failed or total == 0 else round(100.0 * earned / total, 1)
    return result, critical_failed, clean


async def check_create_evaluation(
    session: AsyncSession, who: Principal, data: Mapping[str, Any]
) -> m.QaEvaluation:
    await grants.check(session, who, grants.QA_GRADE)
    conv = await access_conversation(session, who, int(data["conversation_id"]))
    card = await get_scorecard(session, int(data["scorecard_id"]))
    if not card.active:
        raise InvalidInput(
            "this scorecard version is retired: grade with its newest version", field="scorecard_id"
        )
    mode = data.get("mode") or "history"
    if mode not in MODES:
        raise InvalidInput("{field} must be history or live", field="mode")
    operator_id = data.get("operator_id") or conv.assigned_user_id
    if operator_id is None:
        raise InvalidInput("nobody handled this conversation: name the operator graded", field="operator_id")
    operator = await session.get(m.User, operator_id)
    visible = await visible_user_ids(session, who)
    if operator is None or (
        operator_id != conv.assigned_user_id and visible is not None and operator_id not in visible
    ):
        raise NotFound("user {user_id} not found", user_id=operator_id, field="operator_id")
    if operator_id == who.id:
        raise PermissionDenied("you cannot grade your own work")
    answers = data.get("answers")
    if not isinstance(answers, Mapping):
        raise InvalidInput("{field} must be an object", field="answers")
    value, critical_failed, clean = score(list(card.items), answers)
    comment = data.get("comment") or ""
    if not isinstance(comment, str) or len(comment) > COMMENT_LIMIT:
        raise InvalidInput(
            "{field} must be at most {max_len} characters", max_len=COMMENT_LIMIT, field="comment"
        )
    ev = m.QaEvaluation(
        scorecard_id=card.id,
        conversation_id=conv.id,
        grader_id=who.id,
        operator_id=operator_id,
        queue_id=conv.queue_id,
        mode=mode,
        answers=clean,
        score=value,
        critical_failed=critical_failed,
        comment=comment.strip(),
        operator_comment="",
        created_at=datetime.now(UTC),
    )
    session.add(ev)
    await session.flush()
    audit.record(
        session,
        who,
        "qa.evaluation.create",
        object_type="qa_evaluation",
        object_id=ev.id,
        data={
            "conversation_id": conv.id,
            "scorecard_id": card.id,
            "score": value,
            "critical_failed": critical_failed,
        },
    )
    # To the graded operator's room and supervisors' queue rooms, never the operators' queue
    # room (a grade is not the team's news: ``personal`` in event_types); the queue also lets a
    # webhook filtered by queue receive it.
    events.emit(
        session, "qa.evaluation_created", evaluation_dict(ev), queue_id=conv.queue_id, user_id=operator_id
    )
    return ev


async def _scope_filter(session: AsyncSession, who: Principal) -> list[ColumnElement[bool]]:
    """Who reads which evaluations: operators their own, supervisors their queues' (and the
    ones they gave), admins all."""
    e = m.QaEvaluation
    if who.role == m.Role.ADMIN:
        return []
    if who.role == m.Role.OPERATOR:
        return [e.operator_id == who.id]
    if who.role == m.Role.SUPERVISOR:
        queues = await visible_queue_ids(session, who) or set()
        return [or_(e.queue_id.in_(queues) if queues else false(), e.grader_id == who.id)]
    raise PermissionDenied("this action needs the role {roles}", roles="operator or supervisor or admin")


async def list_evaluations(
    session: AsyncSession,
    who: Principal,
    *,
    conversation_id: int | None = None,
    operator_id: int | None = None,
    limit: int = 200,
) -> list[m.QaEvaluation]:
    e = m.QaEvaluation
    stmt = select(e).where(*await _scope_filter(session, who)).order_by(e.created_at.desc(), e.id.desc())
    if conversation_id is not None:
        stmt = stmt.where(e.conversation_id == conversation_id)
    if operator_id is not None:
        stmt = stmt.where(e.operator_id == operator_id)
    return list(await session.scalars(stmt.limit(max(1, min(limit, 500)))))


async def get_evaluation(session: AsyncSession, who: Principal, evaluation_id: int) -> m.QaEvaluation:
    """One evaluation the caller may read; another's reads as not found (ids don't leak)."""
    e = m.QaEvaluation
    ev = await session.scalar(select(e).where(e.id == evaluation_id, *await _scope_filter(session, who)))
    if ev is None:
        raise NotFound("evaluation {evaluation_id} not found", evaluation_id=evaluation_id)
    return ev


async def check_comment(
    session: AsyncSession, who: Principal, evaluation_id: int, comment: str
) -> m.QaEvaluation:
    """The graded operator's comment on their evaluation (acknowledges it); audited."""
    ev = await get_evaluation(session, who, evaluation_id)
    if ev.operator_id != who.id:
        raise PermissionDenied("only the operator graded can comment on an evaluation")
    text = comment.strip()
    if len(text) > COMMENT_LIMIT:
        raise InvalidInput(
            "{field} must be at most {max_len} characters", max_len=COMMENT_LIMIT, field="comment"
        )
    if ev.operator_comment and not text:
        raise InvalidInput("a comment can be changed, not removed: write one", field="comment")
    ev.operator_comment = text
    ev.acknowledged_at = ev.acknowledged_at or datetime.now(UTC)
    await session.flush()
    audit.record(
        session,
        who,
        "qa.evaluation.comment",
        object_type="qa_evaluation",
        object_id=ev.id,
        data={"length": len(text)},
    )
    return ev
