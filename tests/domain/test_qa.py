"""Quality assessment (issue 18): scorecards, grading in scope, the score computed by the
server (a critical "no" zeroes it), versions that keep old grades' meaning, the operator's
comment, the audit, the event, and the ``qa`` / ``qa_calibration`` reports — on PostgreSQL and
SQLite (the 0040 migration on both)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import qa, reports, webhooks
from omni.domain.auth import Principal
from omni.domain.conversations import InboundMessage
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.reports.writers import Format, finish, open_writer
from omni.realtime import event_rooms, rooms
from omni.services import Services
from tests import factories as f
from tests.helpers import capture_events

ITEMS: list[dict[str, Any]] = [
    {"key": "polite", "text": "Was polite", "kind": "yesno", "weight": 2},
    {"key": "greeting", "text": "Greeting quality", "kind": "scale", "weight": 1, "scale_max": 4},
    {"key": "no_rude", "text": "No rudeness", "kind": "yesno", "weight": 1, "critical": True},
]
GOOD = {"polite": True, "greeting": 2, "no_rude": True}
"""(2·1 + 1·2/4 + 1·1) / 4 = 87.5"""


def test_score_weights_scales_not_applicable_and_critical() -> None:
    items = qa.clean_items(ITEMS)
    assert qa.score(items, GOOD)[:2] == (87.5, False)
    assert qa.score(items, {**GOOD, "polite": None})[:2] == (75.0, False)  # (0.5 + 1) / 2
    assert qa.score(items, {**GOOD, "no_rude": False})[:2] == (0.0, True)
    with pytest.raises(InvalidInput) as missing:
        qa.score(items, {"polite": True, "no_rude": True})
    assert missing.value.field == "answers.greeting"
    with pytest.raises(InvalidInput) as too_high:
        qa.score(items, {**GOOD, "greeting": 5})
    assert too_high.value.field == "answers.greeting"
    with pytest.raises(InvalidInput) as na_critical:
        qa.score(items, {**GOOD, "no_rude": None})
    assert na_critical.value.field == "answers.no_rude"
    with pytest.raises(InvalidInput) as stranger:
        qa.score(items, {**GOOD, "typo": True})
    assert stranger.value.field == "answers.typo"
    with pytest.raises(InvalidInput) as scale_critical:
        qa.clean_items([{"text": "x", "kind": "scale", "critical": True}])
    assert scale_critical.value.field == "items[0].critical"
    with pytest.raises(InvalidInput) as heavy:
        qa.clean_items([{"text": "x", "weight": 101}])
    assert heavy.value.field == "items[0].weight"


async def _world(services: Services) -> dict[str, Any]:
    async with services.db.transaction() as s:
        admin = await f.user(s, "admin", m.Role.ADMIN, display_name="Ada")
        sup = await f.user(s, "sup", m.Role.SUPERVISOR, display_name="Sam")
        a = await f.user(s, "alice", display_name="Alice")
        z = await f.user(s, "zed", display_name="Zed")
        g, g2 = m.Group(name="A"), m.Group(name="Z")
        s.add_all([g, g2])
        await s.flush()
        s.add_all(
            [
                m.GroupMember(group_id=g.id, user_id=a.id),
                m.GroupMember(group_id=g2.id, user_id=z.id),
                m.SupervisorScope(supervisor_id=sup.id, group_id=g.id),
            ]
        )
        q = await f.queue(s, "support", [a], group_id=g.id)
        qz = await f.queue(s, "other", [z], group_id=g2.id)
        convs = {}
        for name, queue, user in (("a", q, a), ("z", qz, z)):
            ib = await f.inbox(s, queue)
            res = await c.do_ingest_inbound(
                s, InboundMessage(inbox_id=ib.id, identity_kind="external", identity_value=name, body="hi")
            )
            res.conversation.assigned_user_id = user.id  # handled by its queue's operator
            convs[name] = res.conversation.id
        await s.flush()
        return {
            "who": {u.username: f.who(u) for u in (admin, sup, a, z)},
            "ids": {u.username: u.id for u in (admin, sup, a, z)},
            "conv": convs,
            "q": q.id,
        }


async def _do(services: Services, action: Any, *args: Any) -> Any:
    async with services.db.transaction() as s:
        return await action(s, *args)


async def test_grading_scope_versions_comments_audit_and_reports(svc: Services, tmp_path: Path) -> None:
    w = await _world(svc)
    who: dict[str, Principal] = w["who"]
    conv_a, conv_z = w["conv"]["a"], w["conv"]["z"]

    with pytest.raises(PermissionDenied):  # operators don't build scorecards
        await _do(svc, qa.check_create_scorecard, who["alice"], {"name": "Chat", "items": ITEMS})
    card = await _do(svc, qa.check_create_scorecard, who["sup"], {"name": "Chat", "items": ITEMS})
    assert card.version == 1 and card.family_id == card.id

    async with capture_events(svc.db, ["qa.evaluation_created"]) as seen:
        ev = await _do(
            svc,
            qa.check_create_evaluation,
            who["sup"],
            {"scorecard_id": card.id, "conversation_id": conv_a, "answers": GOOD, "comment": "Nice"},
        )
    assert (ev.score, ev.critical_failed, ev.operator_id) == (87.5, False, w["ids"]["alice"])
    assert seen[0].payload["score"] == 87.5 and seen[0].user_id == w["ids"]["alice"]
    # To Alice and the supervisors of the queue, never to the queue's room of operators.
    qid = seen[0].queue_id
    assert qid is not None
    assert rooms.queue(qid) not in event_rooms(seen[0], "/operator")
    assert rooms.user(w["ids"]["alice"]) in event_rooms(seen[0], "/operator")
    assert rooms.queue(qid) in event_rooms(seen[0], "/supervisor")
    hook = m.WebhookSubscription(name="crm", url="https://crm.example/h", event_types=["qa.*"], filter={})
    assert webhooks.matches(hook, seen[0])  # webhook-able like every event
    hook.filter = {"queue_ids": [qid]}
    assert webhooks.matches(hook, seen[0])  # a CRM that follows this queue gets it too
    hook.filter = {"queue_ids": [qid + 1000]}
    assert not webhooks.matches(hook, seen[0])

    with pytest.raises(NotFound):  # a supervisor grades only their groups' conversations
        await _do(
            svc,
            qa.check_create_evaluation,
            who["sup"],
            {"scorecard_id": card.id, "conversation_id": conv_z, "answers": GOOD},
        )
    with pytest.raises(PermissionDenied):  # operators don't grade
        await _do(
            svc,
            qa.check_create_evaluation,
            who["zed"],
            {"scorecard_id": card.id, "conversation_id": conv_z, "answers": GOOD},
        )
    with pytest.raises(NotFound) as stranger:  # nor attributes a grade to someone outside them
        await _do(
            svc,
            qa.check_create_evaluation,
            who["sup"],
            {
                "scorecard_id": card.id,
                "conversation_id": conv_a,
                "answers": GOOD,
                "operator_id": w["ids"]["zed"],
            },
        )
    assert stranger.value.field == "operator_id"
    zeroed = await _do(
        svc,
        qa.check_create_evaluation,
        who["admin"],
        {"scorecard_id": card.id, "conversation_id": conv_a, "answers": {**GOOD, "no_rude": False}},
    )
    assert (zeroed.score, zeroed.critical_failed) == (0.0, True)

    # operators read only their own grades, and comment on them
    mine = await _do(svc, qa.list_evaluations, who["alice"])
    assert {e.id for e in mine} == {ev.id, zeroed.id}
    assert await _do(svc, qa.list_evaluations, who["zed"]) == []
    with pytest.raises(NotFound):
        await _do(svc, qa.get_evaluation, who["zed"], ev.id)
    with pytest.raises(PermissionDenied):
        await _do(svc, qa.check_comment, who["sup"], ev.id, "I graded it")
    commented = await _do(svc, qa.check_comment, who["alice"], zeroed.id, "I was not rude")
    assert commented.operator_comment == "I was not rude" and commented.acknowledged_at is not None
    with pytest.raises(InvalidInput):
        await _do(svc, qa.check_comment, who["alice"], zeroed.id, "  ")

    # a used scorecard is frozen: its change is a new version, the old grades keep the old one
    v2 = await _do(
        svc, qa.check_update_scorecard, who["sup"], card.id, {"items": [*ITEMS, {"text": "Closed properly"}]}
    )
    assert v2.id != card.id and (v2.version, v2.family_id) == (2, card.id)
    old = await _do(svc, qa.get_scorecard, card.id)
    assert not old.active and len(old.items) == 3
    with pytest.raises(InvalidInput) as retired:
        await _do(
            svc,
            qa.check_create_evaluation,
            who["sup"],
            {"scorecard_id": card.id, "conversation_id": conv_a, "answers": GOOD},
        )
    assert retired.value.field == "scorecard_id"
    renamed = await _do(svc, qa.check_update_scorecard, who["sup"], v2.id, {"name": "Chat 2"})
    assert renamed.id == v2.id  # unused yet: changed in place
    listed = await _do(svc, qa.list_scorecards, who["sup"])
    assert [x.id for x in listed] == [v2.id]

    async with svc.db.transaction() as s:
        actions = set(await s.scalars(select(m.AuditLog.action).where(m.AuditLog.action.like("qa.%"))))
    assert actions == {
        "qa.scorecard.create",
        "qa.evaluation.create",
        "qa.evaluation.comment",
        "qa.scorecard.version",
        "qa.scorecard.update",
    }

    # the reports: average and critical fails per operator; calibration shows both graders
    today = datetime.now(UTC).date()
    params = reports.FilterParams(since=today - timedelta(days=1), until=today + timedelta(days=1))
    params_total = reports.FilterParams(
        since=today - timedelta(days=1), until=today + timedelta(days=1), grouping=reports.Grouping.TOTAL
    )
    async with svc.db.transaction() as s:
        table = await reports.run_params(s, who["admin"], "qa", params_total, datetime.now(UTC))
        calib = await reports.run_params(s, who["sup"], "qa_calibration", params, datetime.now(UTC))
        sup_view = await reports.run_params(s, who["sup"], "qa", params_total, datetime.now(UTC))
    assert [r[1:] for r in table.rows] == [["support", "Alice", 2, 43.8, 1]]
    assert table.totals == [None, None, None, 2, 43.8, 1]
    assert [r[1:] for r in sup_view.rows] == [["support", "Alice", 2, 43.8, 1]]
    assert sorted((r[0], r[3], r[4], r[5], r[6]) for r in calib.rows) == [
        (conv_a, "Ada", 0.0, 2, 87.5),
        (conv_a, "Sam", 87.5, 2, 87.5),
    ]

    # exported like every report: the XLSX says what the page says, titled in Russian
    path = tmp_path / "qa.xlsx"
    writer, handle = open_writer(Format.XLSX, path, table.columns, "ru", UTC, "Качество")
    for row in table.rows:
        writer.append(row)
    finish(writer, handle)
    sheet = load_workbook(path, read_only=True).active
    assert sheet is not None
    lines = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = [str(h) for h in lines[0]]
    assert lines[1][header.index("Средний балл")] == 43.8
    assert lines[1][header.index("Оценок")] == 2
