"""Bulk actions on a selection of conversations: assign, label, close with a code, transfer.

Each conversation goes through the same ``check_*`` action as a single click, in a
transaction of its own: one refused item (outside the caller's scope, in a status that can't
be closed, a code its queue doesn't allow) changes nothing of itself and doesn't stop the
others. The answer lists what was done and, per refused item, why — in the caller's language.
One audit record sums the run up (what was asked, what was done, what was refused and why).

Operators act on their own conversations only (the single actions' rule:
``_require_handler``); supervisors and admins on those of their scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omni.db import Database
from omni.db import models as m
from omni.domain import audit, labels
from omni.domain.auth import Principal
from omni.domain.conversations import check_close, check_transfer
from omni.domain.errors import DomainError, InvalidInput, PermissionDenied

__all__ = ["ACTIONS", "MAX_ITEMS", "BulkReport", "Refused", "check_bulk"]

ACTIONS = ("assign", "label", "close", "transfer")
MAX_ITEMS = 200
_INT_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Refused:
    id: int
    code: str
    error: str
    """Why, in the caller's language."""


@dataclass
class BulkReport:
    action: str
    done: list[int] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _INT_MAX:
        raise InvalidInput("{field} must be a whole number", field=name)
    return value


def _params(action: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Checked once, before any item: a bad parameter refuses the whole request (422)."""
    need = {"assign": ("to_user_id",), "transfer": ("to_queue_id",), "close": ("result_code_id",)}
    if action == "label":
        add, remove = params.get("add") or [], params.get("remove") or []
        if not isinstance(add, list) or not isinstance(remove, list):
            raise InvalidInput("{field} must be a list of ids", field="add")
        if not add and not remove:
            raise InvalidInput("pick labels to add or remove", field="add")
        return {"add": [_int(v, "add") for v in add], "remove": [_int(v, "remove") for v in remove]}
    out: dict[str, Any] = {}
    for name in need[action]:
        if params.get(name) is None:
            raise InvalidInput("{field} is required", field=name)
        out[name] = _int(params[name], name)
    if action == "transfer":
        out["note"] = str(params.get("note") or "")[:2000]
    return out


async def check_bulk(
    db: Database,
    who: Principal,
    conversation_ids: Sequence[Any],
    action: str,
    params: Mapping[str, Any],
) -> BulkReport:
    """Run ``action`` on every conversation in ``conversation_ids`` (see the module docstring)."""
    if who.role == m.Role.AUDITOR:
        raise PermissionDenied("auditors can read the audit log only")
    if action not in ACTIONS:
        raise InvalidInput("{field} must be one of {choices}", choices=", ".join(ACTIONS), field="action")
    if not conversation_ids:
        raise InvalidInput("select at least one conversation", field="conversation_ids")
    if len(conversation_ids) > MAX_ITEMS:
        raise InvalidInput(
            "at most {max_len} conversations at once", max_len=MAX_ITEMS, field="conversation_ids"
        )
    ids = list(dict.fromkeys(_int(v, "conversation_ids") for v in conversation_ids))
    clean = _params(action, params)
    report = BulkReport(action=action)
    for conv_id in ids:
        try:
            async with db.transaction() as session:
                if action == "label":
                    await labels.check_set_labels(
                        session, who, conv_id, add=clean["add"], remove=clean["remove"]
                    )
                elif action == "close":
                    await check_close(session, who, conv_id, clean["result_code_id"])
                elif action == "assign":
                    await check_transfer(session, who, conv_id, to_user_id=clean["to_user_id"])
                else:
                    await check_transfer(
                        session, who, conv_id, to_queue_id=clean["to_queue_id"], note=clean["note"]
                    )
        except DomainError as exc:
            report.refused.append(Refused(id=conv_id, code=exc.code, error=exc.localized(who.language)))
        else:
            report.done.append(conv_id)
    async with db.transaction() as session:
        audit.record(
            session,
            who,
            f"conversation.bulk_{action}",
            object_type="conversation",
            object_id=",".join(str(i) for i in ids)[:64],
            data={
                **clean,
                "done": report.done,
                "refused": [{"id": r.id, "code": r.code, "error": r.error} for r in report.refused],
            },
            result="ok" if not report.refused else ("partial" if report.done else "refused"),
        )
    return report
