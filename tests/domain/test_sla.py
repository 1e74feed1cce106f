"""Chat service levels (omni/domain/sla.py) and the transcript mail (omni/domain/transcript.py):
exact deadlines from the committed events, one breach alert per wait, reply clocks that stop
on the operator's reply, and the transcript received by a loopback SMTP server. On SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from omni.db import models as m
from omni.domain import conversations as c
from omni.domain import reports, sla, transcript
from omni.domain.engine import run_due_deadlines
from omni.domain.errors import InvalidInput, NotFound, PermissionDenied
from omni.domain.routing import do_route_pending
from omni.services import Services, build_services
from omni.settings import Settings
from tests import factories as f
from tests.conftest import copy_sqlite
from tests.reports.test_mailing import Smtp
from tests.reports.test_mailing import smtp as smtp  # the loopback server fixture, re-exported


@pytest_asyncio.fixture
async def lite(sqlite_template: Path, tmp_path: Path, smtp: Smtp) -> AsyncIterator[Services]:
    settings = Settings(data_dir=tmp_path, secret_key="s" * 40, smtp=smtp.settings)
    copy_sqlite(sqlite_template, settings.data_dir)
    services = build_services(settings, run_background=False)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


async def _setup(svc: Services, **policy: Any) -> dict[str, Any]:
    async with svc.db.transaction() as s:
        admin = await f.user(s, "boss", m.Role.ADMIN)
        op = await f.user(s, "op", capacity=3, chat_weight=1, display_name="Olga")
        q = await f.queue(s, "support", [op])
        chat = await f.inbox(s, q, "widget")
        code = await f.result_code(s)
        base = {"first_response_seconds": 60, "next_response_seconds": 30, "warning_percent": 50}
        await sla.check_save_policy(s, f.who(admin), q.id, base | policy)
        await f.set_status(s, op)
        return {"admin": admin, "op": op, "queue": q.id, "inbox": chat.id, "code": code.id}


async def _inbound(svc: Services, inbox_id: int, body: str, email: str | None = None) -> int:
    async with svc.db.transaction() as s:
        res = await c.do_ingest_inbound(
            s,
            c.InboundMessage(
                inbox_id=inbox_id,
                identity_kind="widget",
                identity_value="visitor-1",
                body=body,
                contact_email=email,
            ),
        )
        return res.conversation.id


async def _targets(svc: Services, conv_id: int) -> list[m.SlaTarget]:
    await svc.relay.relay_once()
    async with svc.db.transaction() as s:
        return list(
            await s.scalars(
                select(m.SlaTarget).where(m.SlaTarget.conversation_id == conv_id).order_by(m.SlaTarget.id)
            )
        )


async def _events(svc: Services, type_: str) -> list[m.Event]:
    async with svc.db.transaction() as s:
        return list(await s.scalars(select(m.Event).where(m.Event.type == type_).order_by(m.Event.id)))


async def test_first_and_next_response_deadlines_are_exact_and_a_breach_alerts_once(lite: Services) -> None:
    w = await _setup(lite)
    conv_id = await _inbound(lite, w["inbox"], "hello")
    [first] = await _targets(lite, conv_id)
    async with lite.db.transaction() as s:
        conv = await s.get_one(m.Conversation, conv_id)
        enqueued = conv.enqueued_at
    assert enqueued is not None
    assert (first.kind, first.started_at, first.queue_id, first.user_id) == (
        "first",
        enqueued,
        w["queue"],
        None,
    )
    assert first.warning_at == enqueued + timedelta(seconds=30)
    assert first.due_at == enqueued + timedelta(seconds=60)
    assert sla.state_of(first, enqueued + timedelta(seconds=29)) == "ok"
    assert sla.state_of(first, enqueued + timedelta(seconds=30)) == "warning"
    assert sla.state_of(first, first.due_at) == "breached"

    # the operator takes it: the running clock is now theirs
    await do_route_pending(lite.db)
    async with lite.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.user_id == w["op"].id))
        assert offer is not None
        await c.check_accept_offer(s, f.who(w["op"]), offer.id)
    [first] = await _targets(lite, conv_id)
    assert first.user_id == w["op"].id

    # a second before the deadline nothing happens; at the deadline one breach; never again
    assert await run_due_deadlines(lite.db, now=first.due_at - timedelta(seconds=1)) == 0
    await run_due_deadlines(lite.db, now=first.due_at)
    await run_due_deadlines(lite.db, now=first.due_at + timedelta(hours=1))
    [first] = await _targets(lite, conv_id)
    assert first.breached_at == first.due_at
    breaches = await _events(lite, "sla.breached")
    assert [(e.conversation_id, e.user_id, e.queue_id) for e in breaches] == [
        (conv_id, w["op"].id, w["queue"])
    ]

    # the seam for search filters and rules: which conversations run a clock / were late
    async with lite.db.transaction() as s:
        for state in ("running", "breached"):
            found = await s.scalars(select(m.Conversation.id).where(sla.conversation_condition(state)))
            assert list(found) == [conv_id], state

    # the late reply stops the clock (the breach stays counted)
    async with lite.db.transaction() as s:
        reply = await c.check_send_message(s, f.who(w["op"]), conv_id, "sorry for the wait")
        replied_at = reply.created_at
    [first] = await _targets(lite, conv_id)
    assert (first.replied_at, first.ended_at, first.breached_at) == (replied_at, replied_at, first.due_at)

    # the customer writes: the next-response clock runs from their message, 30 s
    await _inbound(lite, w["inbox"], "one more question")
    first, nxt = await _targets(lite, conv_id)
    async with lite.db.transaction() as s:
        asked = await s.scalar(
            select(m.Message).where(
                m.Message.conversation_id == conv_id, m.Message.body == "one more question"
            )
        )
        assert asked is not None
        asked_at = asked.created_at
    assert (nxt.kind, nxt.started_at, nxt.due_at, nxt.user_id) == (
        "next",
        asked_at,
        asked_at + timedelta(seconds=30),
        w["op"].id,
    )
    # a second customer message doesn't restart it; a private note doesn't stop it
    await _inbound(lite, w["inbox"], "hello?")
    async with lite.db.transaction() as s:
        await c.check_send_message(s, f.who(w["op"]), conv_id, "checking", private=True)
    assert len(await _targets(lite, conv_id)) == 2
    async with lite.db.transaction() as s:
        await c.check_send_message(s, f.who(w["op"]), conv_id, "here it is")
    _, nxt = await _targets(lite, conv_id)
    assert nxt.replied_at is not None and nxt.breached_at is None
    assert sla.state_of(nxt, nxt.due_at) == "met"
    await run_due_deadlines(lite.db, now=nxt.due_at + timedelta(hours=1))
    assert len(await _events(lite, "sla.breached")) == 1  # the met one never alerts

    # the report counts both waits for the operator, the first one late
    today = datetime.now(UTC).date()
    params = reports.FilterParams(since=today - timedelta(days=1), until=today + timedelta(days=1))
    async with lite.db.transaction() as s:
        table = await reports.run_params(s, f.who(w["admin"]), "sla", params, datetime.now(UTC))
    assert table.rows == [["support", "Olga", 1, 1, 1, 0, 1, 50.0]]
    assert table.totals == [None, None, 1, 1, 1, 0, 1, 50.0]


async def test_closing_stops_the_clock_and_mails_the_transcript_escaped(lite: Services, smtp: Smtp) -> None:
    w = await _setup(lite, transcript_at_close=True)
    conv_id = await _inbound(lite, w["inbox"], "<b>hi</b> & <script>x()</script>", email="ann@example.com")
    await do_route_pending(lite.db)
    async with lite.db.transaction() as s:
        offer = await s.scalar(select(m.Offer).where(m.Offer.user_id == w["op"].id))
        assert offer is not None
        await c.check_accept_offer(s, f.who(w["op"]), offer.id)
        await c.check_send_message(s, f.who(w["op"]), conv_id, "Hello Ann")
        await c.check_send_message(s, f.who(w["op"]), conv_id, "secret note", private=True)
    await _inbound(lite, w["inbox"], "thanks")
    assert len(await _targets(lite, conv_id)) == 2  # the relay moved the clocks meanwhile
    async with lite.db.transaction() as s:
        await c.check_close(s, f.who(w["op"]), conv_id, w["code"])
    targets = await _targets(lite, conv_id)
    assert [t.kind for t in targets] == ["first", "next"]
    assert all(t.ended_at is not None for t in targets) and targets[1].replied_at is None
    await run_due_deadlines(lite.db)
    [mail] = smtp.box.messages
    assert mail["To"] == "ann@example.com" and f"#{conv_id}" in mail["Subject"]
    text = mail.get_body(("plain",))
    page = mail.get_body(("html",))
    assert text is not None and page is not None
    plain, markup = text.get_content(), page.get_content()
    assert "Hello Ann" in plain and "thanks" in plain and "secret note" not in plain + markup
    assert "<script>" not in markup and "&lt;script&gt;x()&lt;/script&gt;" in markup
    assert "&lt;b&gt;hi&lt;/b&gt; &amp;" in markup and "Olga" in markup
    await run_due_deadlines(lite.db)
    assert len(smtp.box.messages) == 1


async def test_transcript_on_request_checks_address_and_scope(lite: Services, smtp: Smtp) -> None:
    w = await _setup(lite)
    conv_id = await _inbound(lite, w["inbox"], "привет")
    async with lite.db.transaction() as s:
        stranger = await f.user(s, "stranger")
        with pytest.raises(InvalidInput, match="no e-mail address") as no_address:
            await transcript.check_request(s, f.who(w["admin"]), conv_id, None, smtp.settings)
        assert no_address.value.field == "email"
        with pytest.raises(InvalidInput, match="not an e-mail address"):
            await transcript.check_request(s, f.who(w["admin"]), conv_id, "x@", smtp.settings)
        with pytest.raises(NotFound):
            await transcript.check_request(s, f.who(stranger), conv_id, "a@example.com", smtp.settings)
        to = await transcript.check_request(s, f.who(w["admin"]), conv_id, "a@example.com", smtp.settings)
        assert to == "a@example.com"
        audited = await s.scalar(select(m.AuditLog).where(m.AuditLog.action == "transcript.request"))
        assert audited is not None
    await run_due_deadlines(lite.db)
    [mail] = smtp.box.messages
    body = mail.get_body(("plain",))
    assert body is not None and "привет" in body.get_content()


async def test_policies_are_validated_scoped_and_audited(lite: Services) -> None:
    w = await _setup(lite)
    async with lite.db.transaction() as s:
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        with pytest.raises(InvalidInput) as bad:
            await sla.check_save_policy(s, f.who(w["admin"]), w["queue"], {"first_response_seconds": -1})
        assert bad.value.field == "first_response_seconds"
        with pytest.raises(InvalidInput) as bad:
            await sla.check_save_policy(s, f.who(w["admin"]), w["queue"], {"warning_percent": 100})
        assert bad.value.field == "warning_percent"
        with pytest.raises(NotFound):  # not their queue
            await sla.check_save_policy(s, f.who(sup), w["queue"], {"first_response_seconds": 5})
        with pytest.raises(PermissionDenied):
            await sla.check_save_policy(s, f.who(w["op"]), w["queue"], {"first_response_seconds": 5})
        saved = await sla.check_save_policy(s, f.who(w["admin"]), w["queue"], {"first_response_seconds": 90})
        assert sla.policy_dict(saved)["first_response_seconds"] == 90
        actions = list(await s.scalars(select(m.AuditLog.action).where(m.AuditLog.action.like("sla.%"))))
        assert actions == ["sla.save", "sla.save"]
        await sla.check_delete_policy(s, f.who(w["admin"]), w["queue"])
        assert await sla.get_policy(s, w["queue"]) is None


async def test_deleting_a_policy_stops_its_running_clocks(lite: Services) -> None:
    """Regression guard: a clock of a deleted policy would still breach and alert nobody's promise."""
    w = await _setup(lite)
    conv_id = await _inbound(lite, w["inbox"], "hello")
    [first] = await _targets(lite, conv_id)
    async with lite.db.transaction() as s:
        await sla.check_delete_policy(s, f.who(w["admin"]), w["queue"])
    await run_due_deadlines(lite.db, now=first.due_at + timedelta(minutes=1))
    [first] = await _targets(lite, conv_id)
    assert first.ended_at is not None and first.breached_at is None
    assert await _events(lite, "sla.breached") == []


async def test_running_clocks_are_scoped_like_the_conversations(lite: Services) -> None:
    """``GET /api/v1/sla/open``'s domain: an operator sees their queues' waiting chats and their
    own, a supervisor their queues, an operator or supervisor of another queue nothing, an
    auditor is refused."""
    w = await _setup(lite)
    conv_id = await _inbound(lite, w["inbox"], "hello")
    await _targets(lite, conv_id)
    async with lite.db.transaction() as s:
        other = await f.user(s, "other")
        await f.queue(s, "elsewhere", [other])
        group = m.Group(name="G")
        s.add(group)
        await s.flush()
        sup = await f.user(s, "sup", m.Role.SUPERVISOR)
        outsider = await f.user(s, "outsider", m.Role.SUPERVISOR)
        auditor = await f.user(s, "auditor", m.Role.AUDITOR)
        queue = await s.get_one(m.Queue, w["queue"])
        queue.group_id = group.id
        s.add(m.SupervisorScope(supervisor_id=sup.id, group_id=group.id))
        await s.flush()
        people = {"op": w["op"], "other": other, "sup": sup, "outsider": outsider, "admin": w["admin"]}
        seen = {
            name: [t.conversation_id for t in await sla.open_targets(s, f.who(u))]
            for name, u in people.items()
        }
        assert seen == {"op": [conv_id], "other": [], "sup": [conv_id], "outsider": [], "admin": [conv_id]}
        with pytest.raises(PermissionDenied):
            await sla.open_targets(s, f.who(auditor))
