"""Runs published scenarios on conversations: the bridge between the pure engine and the core.

Every step happens inside the caller's transaction and persists the engine state with it,
so a crash or restart resumes where the conversation was. Messages go out through
``omni.domain.automated`` (the channel adapter renders buttons its own way), timers are
persisted deadlines, and HTTP calls run after the commit with no database lock held; a safety
deadline feeds an error if a node dies mid-call. The runner knows no channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from bots import engine as e
from bots.scenario import AskNode, MenuNode, RecordNode, Scenario, ScenarioFormatError, SurveyNode, load
from bots.step_writes import StepRecord, write_step
from omni.db import Database
from omni.db import models as m
from omni.db.unit_of_work import unit_of_work
from omni.domain import automated, conversations, deadlines, prompts
from omni.domain.hours import queue_open
from omni.domain.routing import queue_capacity

log = logging.getLogger(__name__)

BOT_TIMER = "bot_timer"
BOT_HTTP_LOST = "bot_http_lost"
HTTP_GRACE_SECONDS = 10
MAX_CHAINED_EVENTS = 20
"""Hand-off outcomes and scenario jumps feed the engine again in the same step; bounded."""
TECHNICAL_VARIABLES = frozenset(
    {
        "last_input",  # the engine's id of the last menu choice (templates only)
        "http_status",  # the engine's status of a failed HTTP step
        "lang",  # the customer's language, set by the channel
        "telegram_chat_id",  # channel plumbing (channels/telegram)
        "telegram_username",
        "linkedid",  # channel plumbing (channels/voice)
        "direction",
    }
)
"""Conversation variables that are plumbing, not something the customer told the bot: the
operator's card never shows them, nor any name starting with ``_`` (see :func:`is_technical`)."""


def is_technical(name: str) -> bool:
    """Hidden from operators: a ``_``-prefixed name or one of :data:`TECHNICAL_VARIABLES`."""
    return name.startswith("_") or name in TECHNICAL_VARIABLES


@dataclass(frozen=True, slots=True)
class Waiting:
    """What a running bot waits for (see :meth:`BotRunner.waiting`)."""

    kind: str
    """``input``, ``record``, ``timer``, ``http``, ``handoff`` or ``""`` (busy between steps)."""
    node: MenuNode | AskNode | SurveyNode | RecordNode | None
    """The node asking (``input``) or recording (``record``)."""
    token: int
    """The bot's timer token now; :meth:`BotRunner.on_no_input` takes it back."""


OUTBOUND_START = "_outbound_start"
"""Conversation variable set on an outbound start (an agentless campaign call): a scenario
that runs out of nodes closes the conversation instead of queueing the customer."""


HttpFn = Callable[[e.CallHttp], Awaitable[e.HttpResult]]


def _facts(
    conv: m.Conversation,
    contact: m.Contact | None,
    queue: m.Queue | None,
    slots: int,
    now: datetime,
    open_: bool,
) -> e.Facts:
    tz = (queue.business_hours or {}).get("timezone") if queue else None
    local = now.astimezone(ZoneInfo(tz)) if tz else now
    return e.Facts(
        channel=conv.channel,
        lang=str((conv.variables or {}).get("lang", "en")),
        now=local,
        business_hours_open=open_,
        agents_online=slots,
        builtins={
            "contact.name": contact.name if contact else "",
            "contact.phone": (contact.phone or "") if contact else "",
            "contact.email": (contact.email or "") if contact else "",
            "conversation.id": conv.id,
            "queue.name": queue.name if queue else "",
        },
    )


class BotRunner:
    """The core's bot gateway (``Database.plugins``) and the deadline handler."""

    companion: type[m.Base] | None = m.BotSession
    """The ingest look-up locks the conversation's bot session with it (one round trip)."""

    def __init__(self, db: Database, *, http: HttpFn | None = None) -> None:
        self.db = db
        self.http = http or call_http
        self._tasks: set[asyncio.Task[None]] = set()
        self._revisions: dict[int, tuple[Scenario, bool, bool]] = {}
        """revision id → (parsed scenario, needs the agent count, needs the queue row)."""

    # --- entry points used by the core ------------------------------------------------

    async def start(
        self,
        session: AsyncSession,
        conv: m.Conversation,
        scenario_key: str,
        *,
        variables: dict[str, Any] | None = None,
    ) -> bool:
        """Put a new conversation in the bot; ``False`` when the scenario has no published revision.

        ``variables`` are known to the scenario from its start (an outbound start: the campaign
        target's name and card fields, so a template can say ``{{debt}}``)."""
        found = await self._active(session, scenario_key)
        if found is None:
            log.warning("scenario %r has no published revision; conversation %s goes to the queue",
                        scenario_key, conv.id)  # fmt: skip
            return False
        scenario_row, revision = found
        conv.status = m.ConversationStatus.BOT
        bot = m.BotSession(
            conversation_id=conv.id,
            scenario_id=scenario_row.id,
            revision_id=revision.id,
            state=e.State(variables=dict(variables)).to_json() if variables else {},
            status="running",
            started_at=datetime.now(UTC),
        )
        session.add(bot)
        await session.flush()
        await self._feed(session, conv, bot, e.Start())
        return True

    async def on_inbound(self, session: AsyncSession, conv: m.Conversation, message: m.Message) -> bool:
        """A customer message while the conversation is with the bot; ``False`` if no bot runs.

        The session row is usually read already, locked with the conversation by the ingest
        look-up (:attr:`companion`); otherwise (SQLite, another caller) it is read here."""
        taken, held = unit_of_work(session).take_held(m.BotSession, conv.id)
        bot = held if isinstance(held, m.BotSession) and inspect(held).persistent else None
        if not taken or (held is not None and bot is None):
            with session.no_autoflush:  # the inbound message's writes go out at commit
                bot = await session.get(m.BotSession, conv.id, with_for_update=True)
        if bot is None or bot.status != "running":
            return False
        button = next(
            (str(a.get("id")) for a in message.attachments or [] if a.get("kind") == "button_reply"), None
        )
        digits = next(
            (str(a.get("digits")) for a in message.attachments or [] if a.get("kind") == "dtmf"), None
        )
        recording = next((a for a in message.attachments or [] if a.get("kind") == "recording"), None)
        event: e.Event = e.Dtmf(digits) if digits is not None else e.Text(message.body, button=button)
        if recording is not None:
            event = e.Recorded(str(recording.get("id") or ""), float(recording.get("seconds") or 0))
        await self._feed(session, conv, bot, event)
        return True

    async def hand_to_bot(self, session: AsyncSession, conv: m.Conversation, scenario_key: str) -> bool:
        """An operator passes the conversation to a scenario (e.g. a CSAT survey at close)."""
        await session.execute(
            m.BotSession.__table__.delete().where(m.BotSession.conversation_id == conv.id)  # type: ignore[attr-defined]
        )
        # The ended run's row, if this transaction read it (the ingest look-up, a reopen that
        # overflows to a bot), is gone: the new run's row takes its place in the session.
        unit_of_work(session).take_held(m.BotSession, conv.id)
        ended = session.identity_map.get(identity_key(m.BotSession, conv.id))
        if ended is not None:
            session.expunge(ended)
        return await self.start(session, conv, scenario_key)

    async def on_deadline(self, session: AsyncSession, row: m.Deadline) -> None:
        conv = await session.get(m.Conversation, row.ref_id, with_for_update=True)
        bot = await session.get(m.BotSession, row.ref_id, with_for_update=True)
        if conv is None or bot is None or bot.status != "running":
            return
        if int(row.payload.get("token", -1)) != bot.timer_token:
            return  # the conversation moved on since this timer was set
        if row.kind == BOT_HTTP_LOST:
            event: e.Event = e.HttpResult(error="no answer (the request was lost)")
        elif row.payload.get("kind") == "wait":
            event = e.TimerFired()
        else:
            event = e.NoInput()
        await self._feed(session, conv, bot, event)

    # --- channels that collect input themselves (an IVR reads DTMF on the call) -----------

    async def waiting(self, session: AsyncSession, conversation_id: int) -> Waiting | None:
        """What the conversation's running bot waits for; ``None`` when no bot runs.

        An IVR plays the prompts and reads the digits itself, so it needs the node's timeout,
        its options and the timer token (to feed a no-input that a persisted timer may race).
        """
        bot = await session.get(m.BotSession, conversation_id)
        if bot is None or bot.status != "running":
            return None
        state = e.State.from_json(bot.state) if bot.state else e.State()
        node = None
        if state.waiting in ("input", "record") and state.node:
            try:
                scenario, _, _ = await self._scenario(session, bot.revision_id)
            except ScenarioFormatError:
                return None
            found = scenario.node(state.node)
            if isinstance(found, MenuNode | AskNode | SurveyNode | RecordNode):
                node = found
        return Waiting(kind=state.waiting, node=node, token=bot.timer_token)

    async def on_no_input(self, session: AsyncSession, conv: m.Conversation, *, token: int) -> bool:
        """The channel's own input timeout ran out (an IVR's digit timeout): feed ``NoInput``.

        ``token`` is :attr:`Waiting.token` seen before waiting; when the bot moved on since
        (a digit arrived, the persisted timer fired first) nothing happens and ``False`` is
        returned, so a no-input is never counted twice. Lock ``conv`` first (``FOR UPDATE``).
        """
        bot = await session.get(m.BotSession, conv.id, with_for_update=True)
        if bot is None or bot.status != "running" or bot.timer_token != token:
            return False
        await self._feed(session, conv, bot, e.NoInput())
        return True

    async def defer_timers(self, session: AsyncSession, conversation_id: int, seconds: float) -> None:
        """Push the conversation's pending bot timers ``seconds`` from now.

        The persisted no-input timer starts when a prompt is stored; an IVR that plays the
        prompt first and then times the caller itself defers it, so the timer only fires
        (as a fallback) when the call's IVR session is gone.
        """
        await session.execute(
            update(m.Deadline)
            .where(
                m.Deadline.kind == BOT_TIMER,
                m.Deadline.ref_id == conversation_id,
                m.Deadline.done.is_(False),
            )
            .values(due_at=datetime.now(UTC) + timedelta(seconds=seconds))
        )

    # --- the step ---------------------------------------------------------------------

    async def _scenario(self, session: AsyncSession, revision_id: int) -> tuple[Scenario, bool, bool]:
        """Revisions never change, so each is parsed once per process (a publish makes a new
        revision, so nothing is ever invalidated). With it: whether a step needs the queue's
        agent count, and whether it needs the queue row at all (a fact — time, weekday,
        business hours, agents — or ``{{queue.name}}``); a scenario that needs neither runs its
        steps without reading the queue."""
        cached = self._revisions.get(revision_id)
        if cached is None:
            revision = await session.get(m.ScenarioRevision, revision_id)
            if revision is None:
                raise ScenarioFormatError([])
            scenario = load(revision.document)
            text = json.dumps(revision.document)
            needs_agents = '"agents_online"' in text
            needs_queue = '"fact"' in text or "queue.name" in text
            if len(self._revisions) > 256:
                self._revisions.clear()
            cached = self._revisions[revision_id] = (scenario, needs_agents, needs_queue)
        return cached

    async def _active(self, session: AsyncSession, key: str) -> tuple[m.Scenario, m.ScenarioRevision] | None:
        row = await session.scalar(select(m.Scenario).where(m.Scenario.key == key))
        if row is None or row.active_revision_id is None:
            return None
        revision = await session.get(m.ScenarioRevision, row.active_revision_id)
        return (row, revision) if revision is not None else None

    async def _feed(
        self, session: AsyncSession, conv: m.Conversation, bot: m.BotSession, event: e.Event
    ) -> None:
        try:
            scenario, needs_agents, needs_queue = await self._scenario(session, bot.revision_id)
        except ScenarioFormatError as exc:  # published documents passed validation; belt and braces
            log.error("revision %s can't be loaded: %s", bot.revision_id, exc)
            bot.status = "error"
            return
        contact = await session.get(m.Contact, conv.contact_id)
        queue = await session.get(m.Queue, conv.queue_id) if conv.queue_id and needs_queue else None
        slots = 0
        if queue is not None and needs_agents:
            slots = (await queue_capacity(session, queue.id, conv.medium)).slots
        now = datetime.now(UTC)
        open_ = await queue_open(session, queue, now) if queue is not None else True  # calendars too
        facts = _facts(conv, contact, queue, slots, now, open_)
        state = e.State.from_json(bot.state) if bot.state else None
        # The session row and the step records are written once, at the end of the step,
        # with statements built once (``bots.step_writes``), not by the ORM's flush.
        token = bot.timer_token
        steps: list[StepRecord] = []
        for _ in range(MAX_CHAINED_EVENTS):
            outcome = e.advance(scenario, state, event, facts)
            state = outcome.state
            token += 1
            steps.extend(StepRecord(bot.revision_id, s.node[:64], s.outcome[:64]) for s in outcome.steps)
            follow_up = await self._carry_out(session, conv, bot, outcome, token)
            if isinstance(follow_up, tuple):  # moved to another scenario
                scenario, state = follow_up
                event = e.Start()
                continue
            if follow_up is None:
                break
            event = follow_up
        merged = _merged(conv.variables, state)
        if conv.variables != merged:
            conv.variables = merged
        await write_step(
            session, bot, conv, steps,
            state=state.to_json() if state else {}, status=state.status if state else "error",
            timer_token=token, now=datetime.now(UTC),
        )  # fmt: skip
        ran_out = bot.status in ("ended", "error") and conv.status == m.ConversationStatus.BOT
        if ran_out and (conv.variables or {}).get(OUTBOUND_START):
            # An outbound start (an agentless notification) that ran out of nodes is done: the
            # customer was called to hear it, not to wait in a line.
            await conversations.do_close(session, conv, None, by="bot")
        elif ran_out and conv.queue_id:
            # The scenario ran out of nodes: nobody must be left talking to nothing.
            queue = queue or await session.get(m.Queue, conv.queue_id)
            if queue is not None:
                await conversations.do_enqueue(session, conv, queue)

    async def _carry_out(
        self,
        session: AsyncSession,
        conv: m.Conversation,
        bot: m.BotSession,
        outcome: e.Outcome,
        token: int,
    ) -> e.Event | tuple[Scenario, e.State] | None:
        now = datetime.now(UTC)
        for action in outcome.actions:
            if isinstance(action, e.Say):
                buttons = action.buttons or None
                # On a call the prompt file is what the IVR plays (channels/voice/agi.py reads it
                # back from the stored message); other channels never see it.
                prompt = action.prompt if conv.medium == m.Medium.VOICE else ""
                if action.prompt_id is not None and conv.medium == m.Medium.VOICE:
                    # A prompt picked in the prompt manager; deleted since publishing (deletion
                    # is refused while a scenario uses it, but a revision may be older): the
                    # file name, else the text, as before.
                    prompt = await prompts.prompt_sound(session, action.prompt_id) or prompt
                if action.text.strip() or buttons or prompt:
                    await automated.do_send_automated(
                        session, conv.id, action.text or "…", buttons=buttons, locked=conv,
                        unannounced=[{"kind": "prompt", "file": prompt}] if prompt else None,
                        deferred=True,  # inserted with the step's statement (bots.step_writes)
                    )  # fmt: skip
            elif isinstance(action, e.StartTimer):
                deadlines.schedule(
                    session, BOT_TIMER, conv.id, now + timedelta(seconds=action.seconds),
                    {"token": token, "kind": action.kind},
                )  # fmt: skip
            elif isinstance(action, e.CallHttp):
                unit_of_work(session).call_after_commit(partial(self._start_http, conv.id, token, action))
                deadlines.schedule(
                    session, BOT_HTTP_LOST, conv.id,
                    now + timedelta(seconds=action.timeout_seconds + HTTP_GRACE_SECONDS),
                    {"token": token},
                )  # fmt: skip
            elif isinstance(action, e.SaveAnswer):
                session.add(
                    m.SurveyAnswer(
                        conversation_id=conv.id, revision_id=bot.revision_id, node=action.node,
                        variable=action.variable, value=action.value,
                    )
                )  # fmt: skip
            elif isinstance(action, e.SaveContactField):
                contact = await session.get(m.Contact, conv.contact_id)
                if contact is not None:
                    contact.custom_fields = {**(contact.custom_fields or {}), action.name: action.value}
            elif isinstance(action, e.Handoff):
                return await self._handoff(session, conv, action)
            elif isinstance(action, e.Close):
                await self._close(session, conv, action.result_code)
            elif isinstance(action, e.GotoScenario):
                found = await self._active(session, action.scenario)
                if found is None:
                    log.warning("goto: scenario %r is not published; conversation %s goes to the queue",
                                action.scenario, conv.id)  # fmt: skip
                    return None
                bot.scenario_id, bot.revision_id = found[0].id, found[1].id
                scenario, _, _ = await self._scenario(session, found[1].id)
                return scenario, e.State(variables=dict(outcome.state.variables))
        return None

    async def _handoff(self, session: AsyncSession, conv: m.Conversation, action: e.Handoff) -> e.Event:
        queue_id = action.queue_id or conv.queue_id
        queue = await session.get(m.Queue, queue_id) if queue_id else None
        if queue is None:
            return e.HandoffResult("no_agents")
        now = datetime.now(UTC)
        if not await queue_open(session, queue, now):
            return e.HandoffResult("closed")
        if (await queue_capacity(session, queue.id, conv.medium)).slots == 0:
            return e.HandoffResult("no_agents")
        # The engine hands over all its state; ``last_input`` is a template helper, not data.
        handed = {k: v for k, v in action.variables.items() if k != "last_input"}
        conv.variables = {**(conv.variables or {}), **handed}
        if action.note:  # no author: the operator window labels it as the bot's
            session.add(
                m.Message(
                    conversation_id=conv.id, inbox_id=conv.inbox_id, direction="note",
                    body=action.note, delivery="stored", created_at=now,
                )
            )  # fmt: skip
        await conversations.do_enqueue(session, conv, queue, priority=action.priority, now=now)
        return e.HandoffResult("queued")

    async def _close(self, session: AsyncSession, conv: m.Conversation, code: str) -> None:
        code_id = None
        if code:
            code_id = await session.scalar(select(m.ResultCode.id).where(m.ResultCode.code == code))
            if code_id is None:
                log.warning("scenario closes with unknown result code %r; closing without one", code)
        await conversations.do_close(session, conv, code_id, by="bot")

    # --- HTTP after the commit ----------------------------------------------------------

    def _start_http(self, conv_id: int, token: int, call: e.CallHttp) -> None:
        """Queued on the unit of work: the request starts once the transaction committed."""
        task = asyncio.get_running_loop().create_task(self._http_then_feed(conv_id, token, call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _http_then_feed(self, conv_id: int, token: int, call: e.CallHttp) -> None:
        result = await self.http(call)
        try:
            async with self.db.transaction() as session:
                conv = await session.get(m.Conversation, conv_id, with_for_update=True)
                bot = await session.get(m.BotSession, conv_id, with_for_update=True)
                if conv is None or bot is None or bot.status != "running" or bot.timer_token != token:
                    return
                await self._feed(session, conv, bot, result)
        except Exception:
            log.exception("applying the HTTP result of conversation %s failed", conv_id)

    async def drain(self) -> None:
        """Wait for HTTP calls in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _merged(variables: dict[str, Any] | None, state: e.State | None) -> dict[str, Any]:
    """Collected variables are visible to the operator on the card and in webhooks."""
    if state is None:
        return dict(variables or {})
    collected = {k: v for k, v in state.variables.items() if k != "last_input"}
    return {**(variables or {}), **collected}


async def call_http(call: e.CallHttp) -> e.HttpResult:
    """The real request: bounded by the node's timeout, JSON decoded when it is JSON."""
    try:
        async with httpx.AsyncClient(timeout=call.timeout_seconds, follow_redirects=False) as client:
            response = await client.request(
                call.method, call.url, headers=call.headers, content=call.body.encode() if call.body else None
            )
    except httpx.HTTPError as exc:
        return e.HttpResult(error=f"{type(exc).__name__}: {exc}"[:300])
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, ValueError):
        body = response.text[:10000]
    return e.HttpResult(status=response.status_code, body=body)


def install(
    db: Database, *, http: Callable[[e.CallHttp], Awaitable[e.HttpResult]] | None = None
) -> BotRunner:
    """Plug the runner into a database: ingest hands bot conversations to it, and its timers fire."""
    runner = BotRunner(db, http=http)
    db.plugins.install_bot_gateway(runner)  # one runner per database: replaces an earlier one
    db.plugins.add_deadline_handler(BOT_TIMER, runner.on_deadline)
    db.plugins.add_deadline_handler(BOT_HTTP_LOST, runner.on_deadline)
    return runner
