"""An agentless campaign starts without operators, but only with a published scenario that
can run on a call; each refusal names the scenario field and says why (ru/en)."""

from __future__ import annotations

from typing import Any

import pytest

from bots import service
from omni.db.models.outbound import CampaignState
from omni.domain.errors import Conflict
from omni.domain.outbound import campaigns as c
from omni.services import Services
from tests.outbound.test_campaigns import World, create, world

__all__ = ["world"]


def _doc(*, typed: bool = False) -> dict[str, Any]:
    ask = {
        "id": "q",
        "type": "ask",
        "content": {"text": "Your e-mail?"},
        "variable": "answer",
        "retries": 1,
        "input": "email" if typed else "number",
        "ports": {"next": "bye", "on_max_retries": "bye"},
    }
    return {
        "name": "Reminder",
        "start": "q",
        "variables": [{"name": "answer"}],
        "nodes": [ask, {"id": "bye", "type": "close"}],
    }


async def _start(services: Services, w: World, cid: int) -> None:
    async with services.db.transaction() as s:
        await c.check_set_state(s, w.admin, cid, CampaignState.RUNNING)


async def _refused(services: Services, w: World, cid: int) -> Conflict:
    with pytest.raises(Conflict) as exc:
        await _start(services, w, cid)
    assert exc.value.field == "scenario"
    return exc.value


async def test_an_agentless_campaign_needs_a_published_voice_scenario_not_operators(
    services: Services, world: World
) -> None:
    w = world
    # Nobody works the empty queue: fine for agentless, it needs no operators...
    cid = await create(services, w, name="Reminders", dial_mode="agentless", queue_id=w.empty_q)
    # ... but a scenario to play.
    refused = await _refused(services, w, cid)
    assert refused.message == "an agentless campaign needs a published voice scenario to play"
    assert refused.localized("ru") == "кампании без операторов нужен опубликованный голосовой сценарий"

    async with services.db.transaction() as s:
        draft = await service.create(s, w.admin, "reminder", "Reminder", _doc())
        typed = await service.create(s, w.admin, "typed", "Typed", _doc(typed=True))
        await service.publish(s, w.admin, typed.id)
        await c.check_update_campaign(s, w.admin, cid, {"scenario": "reminder"})
    refused = await _refused(services, w, cid)
    assert refused.message == "scenario 'reminder' is not published"

    async with services.db.transaction() as s:
        await c.check_update_campaign(s, w.admin, cid, {"scenario": "typed"})
    refused = await _refused(services, w, cid)  # an e-mail can't be typed on a phone
    assert refused.message.startswith("scenario 'typed' can't run on a call: node 'q'")

    async with services.db.transaction() as s:
        await service.publish(s, w.admin, draft.id)
        await c.check_update_campaign(s, w.admin, cid, {"scenario": "reminder"})
    await _start(services, w, cid)
    async with services.db.transaction() as s:
        assert (await c.access_campaign(s, w.admin, cid)).state == CampaignState.RUNNING

    # A preview campaign on the same empty queue still needs operators.
    preview = await create(services, w, name="Preview", queue_id=w.empty_q)
    with pytest.raises(Conflict) as exc:
        await _start(services, w, preview)
    assert exc.value.field == "operator_ids"


async def test_a_scenario_an_agentless_campaign_plays_is_checked_for_calls_when_published(
    services: Services, world: World
) -> None:
    """Publishing a new revision of a notification that can't run on a call (an e-mail typed on
    the phone) is refused while an agentless campaign plays it, as for a voice inbox's IVR."""
    w = world
    async with services.db.transaction() as s:
        row = await service.create(s, w.admin, "notice", "Notice", _doc())
        await service.publish(s, w.admin, row.id)
    await create(services, w, name="Notices", dial_mode="agentless", scenario="notice")
    async with services.db.transaction() as s:
        await service.save_draft(s, w.admin, row.id, _doc(typed=True))
    with pytest.raises(service.PublishRefused) as exc:
        async with services.db.transaction() as s:
            await service.publish(s, w.admin, row.id)
    assert [(p.node, p.code) for p in exc.value.problems] == [("q", "channel")]
