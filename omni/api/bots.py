"""REST API of bot scenarios (``/api/v1/scenarios``): thin over ``bots.service`` and
``bots.simulate``, used by the supervisor's builder and by scripts. (It lived in
``bots/http.py``; it moved here so ``bots/`` holds no transport.)

Supervisors and admins edit and publish; auditors read (the service checks roles). A draft or
publish that the checks refuse answers 422 with ``problems`` — ``[{node, code, message}]`` —
so the builder can put each one on its node. Test runs use the document sent (the draft
being edited, saved or not) and touch no conversation.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.openapi import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncSession

from bots import service, simulate
from bots.scenario import Problem
from omni.api.contracts import ErrorBody, IntId, Name, OptIntId, Text
from omni.api.core import DEPS
from omni.api.deps import request_language
from omni.db import models as m
from omni.domain.auth import Principal
from omni.domain.errors import InvalidInput, NotFound
from omni.i18n import error_body
from omni.services import Services

# --- request bodies -----------------------------------------------------------------------


class ScenarioCreate(msgspec.Struct, forbid_unknown_fields=True):
    key: Name
    name: Name
    document: dict[str, Any]


class DraftIn(msgspec.Struct, forbid_unknown_fields=True):
    document: dict[str, Any]


class PublishIn(msgspec.Struct, forbid_unknown_fields=True):
    note: Text = ""


class RollbackIn(msgspec.Struct, forbid_unknown_fields=True):
    revision_id: IntId


class TestRunIn(msgspec.Struct, forbid_unknown_fields=True):
    """``case`` as in a scenario test file: channel, lang, inputs, http, handoff, facts, variables."""

    document: dict[str, Any]
    case: dict[str, Any] = msgspec.field(default_factory=dict)


class RunTestsIn(msgspec.Struct, forbid_unknown_fields=True):
    """``file``: a scenario test file's ``{"cases": [...]}`` (its ``scenario`` is ignored)."""

    document: dict[str, Any]
    file: dict[str, Any]


# --- responses ----------------------------------------------------------------------------


class ProblemOut(msgspec.Struct):
    """What stops a scenario publishing; ``port`` when it is about one of the node's ports."""

    node: str | None
    code: str
    message: str
    port: str | None


class ProblemsBody(ErrorBody, omit_defaults=True):
    """422 for a draft or publish the checks refuse: the error body plus every problem."""

    problems: list[ProblemOut] = msgspec.field(default_factory=list)


class ScenarioOut(msgspec.Struct):
    """``bots.service.scenario_dict``."""

    id: int
    key: str
    name: str
    active_revision_id: int | None
    updated_at: str


class RevisionOut(msgspec.Struct):
    """``bots.service.revision_dict``."""

    id: int
    number: int
    content_hash: str
    published_at: str
    published_by_id: int | None
    note: str


class RevisionListItem(RevisionOut):
    active: bool


class RevisionDocumentOut(RevisionOut):
    document: dict[str, Any]


class ScenarioDetailOut(ScenarioOut):
    """The scenario with its draft, what stops the draft publishing, and the active revision."""

    draft: dict[str, Any]
    problems: list[ProblemOut]
    active_revision: RevisionOut | None


class DraftSavedOut(ScenarioOut):
    problems: list[ProblemOut]


class FieldChange(msgspec.Struct):
    from_: Any = msgspec.field(name="from")
    to: Any = None


class NodeChange(msgspec.Struct):
    node: str
    fields: dict[str, FieldChange]


class StartChange(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str = ""


class VariablesDiff(msgspec.Struct):
    added: list[str]
    removed: list[str]
    changed: list[str]


class DiffOut(msgspec.Struct):
    """``bots.service.diff_documents``: revision ``a`` → ``b``."""

    added: list[str]
    removed: list[str]
    changed: list[NodeChange]
    start: StartChange | None
    variables: VariablesDiff


class NodeStatsOut(msgspec.Struct):
    """``bots.service.node_stats`` per node; ``ports`` counts the exits by port."""

    entered: int
    left: int
    invalid: int
    no_input: int
    ports: dict[str, int]
    waiting: int
    dropped: int
    invalid_rate: float


class StatsOut(msgspec.Struct):
    revision_id: int | None
    channel: str
    nodes: dict[str, NodeStatsOut]


class TranscriptOut(msgspec.Struct):
    """``bots.simulate.Transcript.as_dict``: what the bot said and did, and how it ended."""

    says: list[dict[str, Any]]
    path: list[str]
    steps: list[dict[str, str]]
    variables: dict[str, Any]
    http: list[dict[str, Any]]
    handoff: dict[str, Any] | None
    closed: str | None
    goto: str | None
    status: str
    waiting: str
    node: str | None
    error: str


class CaseResultOut(msgspec.Struct):
    name: str
    passed: bool
    failures: list[Any]
    transcript: TranscriptOut


class RunTestsOut(msgspec.Struct):
    passed: bool
    results: list[CaseResultOut]


PROBLEMS_422 = {
    422: ResponseSpec(ProblemsBody, description="Refused by the checks: `problems` name the nodes")
}


# --- helpers ------------------------------------------------------------------------------


def problem_list(problems: list[Problem], lang: str = "en") -> list[dict[str, Any]]:
    """The problems for the builder, each message in the reader's language."""
    return [p.model_dump(mode="json") | {"message": p.localized(lang)} for p in problems]


def problem_outs(problems: list[Problem], lang: str = "en") -> list[ProblemOut]:
    return msgspec.convert(problem_list(problems, lang), list[ProblemOut])


def publish_refused_handler(
    request: Request[Any, Any, Any], exc: service.PublishRefused
) -> Response[ProblemsBody]:
    """The domain error body plus the problems, each naming its node."""
    body: dict[str, Any] = {
        **error_body(exc, request_language(request)),
        "field": exc.field,
        "problems": problem_list(exc.problems, request_language(request)),
    }
    return Response(msgspec.convert(body, ProblemsBody), status_code=exc.status_code)


async def detail(session: AsyncSession, row: m.Scenario, lang: str = "en") -> ScenarioDetailOut:
    """The scenario with its draft, what stops the draft publishing, and the active revision."""
    active = await session.get(m.ScenarioRevision, row.active_revision_id) if row.active_revision_id else None
    body = service.scenario_dict(row) | {
        "draft": row.draft,
        "problems": problem_list(await service.problems(session, row), lang),
        "active_revision": service.revision_dict(active) if active else None,
    }
    return msgspec.convert(body, ScenarioDetailOut)


def _case(raw: dict[str, Any]) -> dict[str, Any]:
    """Only the keys a case may carry, with the shapes the simulator expects."""
    allowed = ("channel", "lang", "inputs", "http", "handoff", "facts", "variables", "name", "expect")
    case = {k: raw[k] for k in allowed if k in raw}
    for key in ("inputs", "http"):
        if key in case and not isinstance(case[key], list):
            raise InvalidInput("{field} must be a list", field=f"case.{key}")
    for key in ("facts", "variables"):
        if key in case and not isinstance(case[key], dict):
            raise InvalidInput("{field} must be an object", field=f"case.{key}")
    if len(case.get("inputs") or []) > 500:
        raise InvalidInput("at most 500 inputs per case", field="case.inputs")
    return case


def _run_case(document: dict[str, Any], raw: dict[str, Any]) -> TranscriptOut:
    scenario = service.parse(document)
    try:
        return msgspec.convert(simulate.run_case(scenario, _case(raw)).as_dict(), TranscriptOut)
    except (ValueError, TypeError, KeyError) as exc:  # a malformed input item or fact
        raise InvalidInput("the test case can't be run: {exc}", exc=exc, field="case") from exc


# --- controllers --------------------------------------------------------------------------


class ScenarioController(Controller):
    path = "/api/v1/scenarios"
    dependencies = DEPS
    exception_handlers = {service.PublishRefused: publish_refused_handler}  # noqa: RUF012 - Litestar declares it mutable
    tags = ["scenarios"]  # noqa: RUF012 - Litestar declares it mutable

    @get("/")
    async def list_scenarios(self, who: Principal, services: Services) -> list[ScenarioOut]:
        async with services.db.transaction() as session:
            rows = [service.scenario_dict(r) for r in await service.list_all(session, who)]
            return msgspec.convert(rows, list[ScenarioOut])

    @post("/", responses=PROBLEMS_422)
    async def create_scenario(
        self, who: Principal, services: Services, data: ScenarioCreate
    ) -> ScenarioDetailOut:
        async with services.db.transaction() as session:
            row = await service.create(session, who, data.key, data.name, data.document)
            return await detail(session, row, who.language)

    @post("/import", status_code=201, responses=PROBLEMS_422)
    async def import_scenario(
        self, who: Principal, services: Services, data: dict[str, Any]
    ) -> ScenarioDetailOut:
        """An exported file: a new scenario, or the new draft of the scenario with that key."""
        async with services.db.transaction() as session:
            row = await service.import_(session, who, data)
            return await detail(session, row, who.language)

    @get("/{scenario_id:int}")
    async def get_scenario(self, who: Principal, services: Services, scenario_id: IntId) -> ScenarioDetailOut:
        async with services.db.transaction() as session:
            return await detail(session, await service.get(session, who, scenario_id), who.language)

    @put("/{scenario_id:int}/draft", responses=PROBLEMS_422)
    async def save_draft(
        self, who: Principal, services: Services, scenario_id: IntId, data: DraftIn
    ) -> DraftSavedOut:
        """Stored whenever well formed; ``problems`` say what would stop it publishing."""
        async with services.db.transaction() as session:
            found = await service.save_draft(session, who, scenario_id, data.document)
            row = await service.get(session, who, scenario_id)
            body = service.scenario_dict(row) | {"problems": problem_list(found, who.language)}
            return msgspec.convert(body, DraftSavedOut)

    @post("/{scenario_id:int}/publish", status_code=200, responses=PROBLEMS_422)
    async def publish(
        self, who: Principal, services: Services, scenario_id: IntId, data: PublishIn | None = None
    ) -> RevisionOut:
        async with services.db.transaction() as session:
            rev = await service.publish(session, who, scenario_id, (data.note if data else ""))
            return msgspec.convert(service.revision_dict(rev), RevisionOut)

    @get("/{scenario_id:int}/revisions")
    async def revisions(
        self, who: Principal, services: Services, scenario_id: IntId
    ) -> list[RevisionListItem]:
        async with services.db.transaction() as session:
            row = await service.get(session, who, scenario_id)
            rows = [
                service.revision_dict(r) | {"active": r.id == row.active_revision_id}
                for r in await service.revisions(session, who, scenario_id)
            ]
            return msgspec.convert(rows, list[RevisionListItem])

    @get("/{scenario_id:int}/revisions/{revision_id:int}")
    async def revision(
        self, who: Principal, services: Services, scenario_id: IntId, revision_id: IntId
    ) -> RevisionDocumentOut:
        async with services.db.transaction() as session:
            for rev in await service.revisions(session, who, scenario_id):
                if rev.id == revision_id:
                    return msgspec.convert(
                        service.revision_dict(rev, with_document=True), RevisionDocumentOut
                    )
        raise NotFound(
            "revision {revision_id} of scenario {scenario_id} not found",
            revision_id=revision_id,
            scenario_id=scenario_id,
        )

    @post("/{scenario_id:int}/rollback", status_code=200)
    async def rollback(
        self, who: Principal, services: Services, scenario_id: IntId, data: RollbackIn
    ) -> ScenarioOut:
        """New conversations start on that revision; running ones stay on theirs."""
        async with services.db.transaction() as session:
            row = await service.rollback(session, who, scenario_id, data.revision_id)
            return msgspec.convert(service.scenario_dict(row), ScenarioOut)

    @get("/{scenario_id:int}/diff")
    async def diff(
        self, who: Principal, services: Services, scenario_id: IntId, a: IntId, b: IntId
    ) -> DiffOut:
        async with services.db.transaction() as session:
            return msgspec.convert(await service.diff(session, who, scenario_id, a, b), DiffOut)

    @get("/{scenario_id:int}/export", media_type="application/json")
    async def export(self, who: Principal, services: Services, scenario_id: IntId) -> Response[bytes]:
        async with services.db.transaction() as session:
            data = await service.export(session, who, scenario_id)
        body = json.dumps(data, ensure_ascii=False, indent=2).encode()
        return Response(
            body,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="scenario-{data["key"]}.json"'},
        )

    @get("/{scenario_id:int}/stats")
    async def stats(
        self,
        who: Principal,
        services: Services,
        scenario_id: IntId,
        revision_id: OptIntId = None,
        channel: Name | None = None,
    ) -> StatsOut:
        """Per node: entered, left (by port), waiting, dropped, invalid rate; hand-off outcomes
        are the hand-off node's ports (``queued``, ``on_no_agents``, ``on_closed``)."""
        async with services.db.transaction() as session:
            row = await service.get(session, who, scenario_id)
            nodes = await service.node_stats(
                session, who, scenario_id, revision_id=revision_id, channel=channel
            )
            body = {
                "revision_id": revision_id or row.active_revision_id,
                "channel": channel or "",
                "nodes": nodes,
            }
            return msgspec.convert(body, StatsOut)

    @post("/{scenario_id:int}/test-run", status_code=200)
    async def test_run(
        self, who: Principal, services: Services, scenario_id: IntId, data: TestRunIn
    ) -> TranscriptOut:
        """The whole case from the start: the builder re-sends every input each time."""
        async with services.db.transaction() as session:
            await service.get(session, who, scenario_id)
        return _run_case(data.document, data.case)

    @post("/{scenario_id:int}/run-tests", status_code=200)
    async def run_tests(
        self, who: Principal, services: Services, scenario_id: IntId, data: RunTestsIn
    ) -> RunTestsOut:
        async with services.db.transaction() as session:
            await service.get(session, who, scenario_id)
        scenario = service.parse(data.document)
        cases = data.file.get("cases")
        if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
            raise InvalidInput("the test file needs a list of cases", field="file")
        try:
            results = simulate.run_file({"cases": [_case(c) for c in cases]}, scenario)
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidInput("the test file can't be run: {exc}", exc=exc, field="file") from exc
        return msgspec.convert({"passed": all(r["passed"] for r in results), "results": results}, RunTestsOut)


CONTROLLERS: list[type[Controller]] = [ScenarioController]

__all__ = ["CONTROLLERS", "ScenarioController", "problem_list"]
