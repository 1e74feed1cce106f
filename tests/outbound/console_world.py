"""A preview campaign with its operator, result codes and targets, built straight from the
models (the campaigns and lists pieces own the real forms): shared by the console's domain
tests and its Chromium journeys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from omni.channels import AttemptOrder
from omni.db import models as m
from omni.db.models.outbound import CampaignState, ResultAction
from omni.domain import outgoing
from tests import factories as f


@dataclass
class CampaignWorld:
    campaign_id: int
    queue_id: int
    inbox_id: int
    operator_id: int
    other_operator_id: int
    supervisor_id: int
    codes: dict[str, int]
    """Result code id by its campaign action: callback, dnc, finish, retry; ``other``: not the campaign's."""
    targets: list[int] = field(default_factory=list)


async def build(
    s: AsyncSession,
    *,
    auto_dial: bool = False,
    preview_seconds: int = 30,
    script: str = "<p>Hello, this is <b>Omni Bank</b>.</p>",
    state: CampaignState = CampaignState.RUNNING,
    names: tuple[str, ...] = ("Ivan Petrov",),
) -> CampaignWorld:
    op = await f.user(s, "op_console", display_name="Olga")
    other = await f.user(s, "op_other")
    sup = await f.user(s, "sup_console", m.Role.SUPERVISOR)
    group = m.Group(name="Outbound team")
    s.add(group)
    await s.flush()
    s.add_all(
        [
            m.GroupMember(group_id=group.id, user_id=op.id),
            m.GroupMember(group_id=group.id, user_id=other.id),
            m.SupervisorScope(supervisor_id=sup.id, group_id=group.id),
        ]
    )
    queue = await f.queue(s, "Collections", [op, other], group_id=group.id, wrap_up_seconds=300)
    inbox = await f.inbox(s, queue, channel="voice", name="Trunk")
    campaign = m.Campaign(
        name="Debts",
        queue_id=queue.id,
        inbox_id=inbox.id,
        state=state,
        dial_mode="preview",
        preview_seconds=preview_seconds,
        preview_auto_dial=auto_dial,
        script=script,
        retry_rules={"busy": [15], "no_answer": [30], "skipped": [60]},
        max_attempts=3,
    )
    s.add(campaign)
    await s.flush()
    codes: dict[str, int] = {}
    for action, minutes in (
        (ResultAction.CALLBACK, None),
        (ResultAction.DNC, None),
        (ResultAction.FINISH, None),
        (ResultAction.RETRY, 120),
    ):
        code = await f.result_code(
            s, f"cmp_{action}", name=f"Campaign {action}", name_ru=f"Кампания {action}"
        )
        codes[str(action)] = code.id
        s.add(
            m.CampaignResultCode(
                campaign_id=campaign.id, result_code_id=code.id, action=action, retry_minutes=minutes
            )
        )
    codes["other"] = (await f.result_code(s, "inbound_only")).id
    world = CampaignWorld(
        campaign_id=campaign.id,
        queue_id=queue.id,
        inbox_id=inbox.id,
        operator_id=op.id,
        other_operator_id=other.id,
        supervisor_id=sup.id,
        codes=codes,
    )
    for n, name in enumerate(names):
        target = m.CampaignTarget(
            campaign_id=campaign.id,
            name=name,
            phone=f"+7423222334{n}",
            phones=[f"+7423222334{n}"],
            timezone="Asia/Vladivostok",
            fields={"debt": "12 500 RUB", "contract": f"<img src=x onerror=alert({n})>"},
        )
        s.add(target)
        await s.flush()
        world.targets.append(target.id)
    await s.flush()
    return world


async def answer(
    s: AsyncSession, order: AttemptOrder, inbox_id: int, *, now: datetime | None = None
) -> m.Conversation:
    """What the voice adapter does when the customer answers: the conversation for the
    reserved operator, with the campaign's ids in its variables."""
    assert order.operator_id is not None
    reserved = await s.get(m.CampaignAttempt, order.attempt_id)
    assert reserved is not None
    reserved.answered_at = now or datetime.now(UTC)  # as the voice adapter: the reservation ends
    await s.flush()
    conv = await outgoing.do_start_outgoing(
        s,
        order.operator_id,
        outgoing.OutgoingContact(
            inbox_id=inbox_id,
            identity_kind="phone",
            identity_value=order.phone,
            contact_phone=order.phone,
            contact_name=str(order.variables.get("name", "")),
            external_id=f"attempt-{order.attempt_id}",
            medium=m.Medium.VOICE,
            note=f"Campaign call to {order.phone}",
            variables=dict(order.variables),
        ),
        now=now or datetime.now(UTC),
    )
    attempt = await s.get(m.CampaignAttempt, order.attempt_id)
    assert attempt is not None
    attempt.conversation_id = conv.id
    attempt.answered_at = now or datetime.now(UTC)
    return conv
