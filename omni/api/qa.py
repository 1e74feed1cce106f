"""Quality assessment over REST (issue 18; rules in ``omni.domain.qa``).

* ``GET/POST /api/v1/qa/scorecards``, ``GET/PATCH /api/v1/qa/scorecards/{id}``: scorecards
  (``qa.scorecards`` to change; a used one changes into a new version, returned).
* ``GET/POST /api/v1/qa/evaluations``, ``GET /api/v1/qa/evaluations/{id}``: grades
  (``qa.grade`` to create, within the grader's scope; operators read only their own).
* ``POST /api/v1/qa/evaluations/{id}/comment``: the graded operator's comment (acknowledges it).

The reports ``qa`` and ``qa_calibration`` are served by ``/api/v1/reports/{key}`` like any other.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, patch, post
from msgspec import UNSET, UnsetType

from omni.api.admin_bodies import RowId, given
from omni.api.admin_responses import READ, WRITE, out, out_list
from omni.api.contracts import Id, IntId, Name, OptId, OptIntId, Text
from omni.api.core import DEPS
from omni.domain import qa
from omni.domain.auth import Principal
from omni.services import Services

__all__ = ["CONTROLLERS"]

Weight = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
"""The domain names the item when out of range (0–100)."""


class ScorecardItem(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: Text
    kind: Name = "yesno"
    """``yesno`` or ``scale`` (0..``scale_max``)."""
    weight: Weight = 1
    critical: bool = False
    """A critical yes/no item answered "no" zeroes the evaluation."""
    scale_max: Weight | None = None
    key: Name | None = None
    """Stable id of the item in answers (default ``q<n>``)."""


class ScorecardUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    items: list[ScorecardItem] | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class ScorecardCreate(ScorecardUpdate, kw_only=True):
    name: Name
    items: list[ScorecardItem]


class ScorecardItemOut(msgspec.Struct, kw_only=True):
    key: str
    text: str
    kind: str
    weight: int
    critical: bool
    scale_max: int | None


class ScorecardOut(msgspec.Struct, kw_only=True):
    id: int
    family_id: int
    version: int
    name: str
    description: str
    items: list[ScorecardItemOut]
    active: bool
    created_at: str | None


class EvaluationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    scorecard_id: IntId
    conversation_id: Id
    answers: dict[Name, bool | int | None]
    """``{item key: true/false | 0..scale_max | null (not applicable)}``; every item answered."""
    comment: Text = ""
    mode: Name = "history"
    """``history`` or ``live``."""
    operator_id: OptIntId = None
    """Default: the conversation's operator."""


class EvaluationOut(msgspec.Struct, kw_only=True):
    id: int
    scorecard_id: int
    conversation_id: int
    grader_id: int | None
    operator_id: int | None
    queue_id: int | None
    mode: str
    answers: dict[str, Any]
    score: float
    critical_failed: bool
    comment: str
    operator_comment: str
    acknowledged_at: str | None
    created_at: str | None


class CommentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    comment: Text


class ScorecardController(Controller):
    path = "/api/v1/qa/scorecards"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_qa_scorecards(
        self, who: Principal, services: Services, include_retired: bool = False
    ) -> list[ScorecardOut]:
        async with services.db.transaction() as session:
            rows = await qa.list_scorecards(session, who, include_retired=include_retired)
            return out_list([qa.scorecard_dict(c) for c in rows], ScorecardOut)

    @post("/", responses=WRITE)
    async def create_qa_scorecard(
        self, who: Principal, services: Services, data: ScorecardCreate
    ) -> ScorecardOut:
        async with services.db.transaction() as session:
            card = await qa.check_create_scorecard(session, who, given(data))
            return out(qa.scorecard_dict(card), ScorecardOut)

    @get("/{scorecard_id:int}", responses=READ)
    async def get_qa_scorecard(self, who: Principal, services: Services, scorecard_id: RowId) -> ScorecardOut:
        async with services.db.transaction() as session:
            await qa.check_read_scorecards(session, who)
            return out(qa.scorecard_dict(await qa.get_scorecard(session, scorecard_id)), ScorecardOut)

    @patch("/{scorecard_id:int}", responses=WRITE)
    async def update_qa_scorecard(
        self, who: Principal, services: Services, scorecard_id: RowId, data: ScorecardUpdate
    ) -> ScorecardOut:
        async with services.db.transaction() as session:
            card = await qa.check_update_scorecard(session, who, scorecard_id, given(data))
            return out(qa.scorecard_dict(card), ScorecardOut)


class EvaluationController(Controller):
    path = "/api/v1/qa/evaluations"
    dependencies = DEPS

    @get("/", responses=READ)
    async def list_qa_evaluations(
        self,
        who: Principal,
        services: Services,
        conversation_id: OptId = None,
        operator_id: OptIntId = None,
    ) -> list[EvaluationOut]:
        async with services.db.transaction() as session:
            rows = await qa.list_evaluations(
                session, who, conversation_id=conversation_id, operator_id=operator_id
            )
            return out_list([qa.evaluation_dict(e) for e in rows], EvaluationOut)

    @post("/", responses=WRITE)
    async def create_qa_evaluation(
        self, who: Principal, services: Services, data: EvaluationIn
    ) -> EvaluationOut:
        async with services.db.transaction() as session:
            ev = await qa.check_create_evaluation(session, who, given(data))
            return out(qa.evaluation_dict(ev), EvaluationOut)

    @get("/{evaluation_id:int}", responses=READ)
    async def get_qa_evaluation(self, who: Principal, services: Services, evaluation_id: Id) -> EvaluationOut:
        async with services.db.transaction() as session:
            return out(
                qa.evaluation_dict(await qa.get_evaluation(session, who, evaluation_id)), EvaluationOut
            )

    @post("/{evaluation_id:int}/comment", status_code=200, responses=WRITE)
    async def comment_qa_evaluation(
        self, who: Principal, services: Services, evaluation_id: Id, data: CommentIn
    ) -> EvaluationOut:
        async with services.db.transaction() as session:
            ev = await qa.check_comment(session, who, evaluation_id, data.comment)
            return out(qa.evaluation_dict(ev), EvaluationOut)


CONTROLLERS = [ScorecardController, EvaluationController]
