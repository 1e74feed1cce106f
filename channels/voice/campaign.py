"""Campaign calls of the voice adapter: ``omni.channels.PlacesAttempts`` for channel "voice".

``place(order)`` sends an async ``Originate`` to the customer's number (customer first, through
the outbound context as click-to-call dials); what Asterisk then reports about that call —
``DialEnd``, ``Hangup`` causes, ``OriginateResponse``, in whatever order and as often as it
comes — is gathered per attempt here, in the adapter's one event task, before the call
registry sees the event. The attempt's end goes to the core through
``omni.domain.outbound.dialing`` / ``lifecycle.do_close_attempt`` in a transaction of its own.

Answered: the conversation is created for the reserved operator (``do_start_outgoing``, the
card's variables from the order), the operator's phone is originated and, once it answers,
bridged with the customer; from then on it is an ordinary outgoing call of the registry (hold,
transfer, hang-up, recording). The customer leaving before that, or an operator who can't be
reached, is ``dropped``. Events map back to an attempt by ids the adapter chose
(``ChannelId`` ``omni-a<attempt>``, ``ActionID`` ``omni-a<attempt>-…``), so they are understood
after a restart too; the ring deadline (``dialing.RING_DEADLINE``) ends what nobody reports.

Predictive calls are placed with no operator: answered, the call takes a free operator of the
campaign (``dialing.do_claim_operator``), asked again whenever one may have become free (the
bus's ``routing`` hint, raised by every commit that frees an operator) until the campaign's
``drop_seconds`` are up; nobody by then: the customer hears the drop message
(``VoiceSettings.drop_context``) and the attempt ends ``dropped``. With ``amd_enabled`` the
answered call first runs ``AMD()`` (``VoiceSettings.amd_context``): the dialplan's
``UserEvent: OmniAmd`` decides — a machine ends ``machine`` (after the machine message with
``machine_action`` "message"), a hang-up during the analysis ``no_answer``, a human or "not
sure" goes on as any answered call. docs/dialer.md, "Drops, AMD and the voice adapter".
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from channels.voice import control, outcomes, prerender
from channels.voice.effects import KIND, VoiceEffects
from channels.voice.events import CallEvent, Kind
from channels.voice.state import Call
from omni.channels import AttemptOrder, ChannelNotReady
from omni.db import models as m
from omni.db.models.outbound import DialMode, Outcome
from omni.domain import calls, outgoing, softphone
from omni.domain.errors import Conflict, DomainError, InvalidInput
from omni.domain.outbound import agentless, dialing

log = logging.getLogger(__name__)

__all__ = ["Dial", "VoiceCampaign", "attempt_of"]

_CUSTOMER = re.compile(r"^omni-a(\d+)")
_OPERATOR = re.compile(r"^omni-p(\d+)")


def attempt_of(ident: str) -> tuple[int, bool] | None:
    """``(attempt id, is the operator's leg)`` for an id the adapter gave a campaign call."""
    if found := _CUSTOMER.match(ident):
        return int(found.group(1)), False
    if found := _OPERATOR.match(ident):
        return int(found.group(1)), True
    return None


class _Closed(Exception):
    """The attempt ended before its call was answered (the ring deadline)."""


UNRESERVED_MODES = (DialMode.PREDICTIVE, DialMode.AGENTLESS)
"""Dial modes whose attempts are placed with no operator reserved."""


@dataclass(frozen=True, slots=True)
class _Started:
    """An answered attempt's conversation and call, ready for the operator's phone."""

    call: Call
    conversation_id: int
    extension: str
    name: str


@dataclass(slots=True)
class Dial:
    """One placed attempt as the adapter sees it (what Asterisk said so far)."""

    attempt_id: int
    phone: str
    operator_id: int | None
    inbox_id: int | None
    queue_id: int
    ring_seconds: int
    variables: dict[str, Any] = field(default_factory=dict)
    channel: str = ""
    """The customer leg's channel name (``Local/…;1``)."""
    dial_status: str = ""
    hangup_cause: str = ""
    hangup_text: str = ""
    reason: str = ""
    answered_at: datetime | None = None
    conversation_id: int | None = None
    bridged: bool = False
    done: bool = False
    seen: bool = False
    """Asterisk reported the customer leg (``;1``), so its ``Hangup`` will come."""
    responded: bool = False
    """The ``OriginateResponse`` (or its grace after the hang-up) was applied."""
    hung_up_at: datetime | None = None
    """When the unanswered customer leg hung up: the attempt's end time."""
    campaign_id: int = 0
    dial_mode: str = ""
    amd: bool = False
    """``AMD()`` runs on the answered call (the campaign's ``amd_enabled``)."""
    amd_done: bool = False
    amd_status: str = ""
    """``AMDSTATUS`` once the dialplan reported it (empty: AMD could not run)."""
    drop_seconds: int = 2
    claim_by: float | None = None
    """Predictive, answered, no operator yet: the loop time its drop time is up."""
    claim_queued: bool = False

    @property
    def leg(self) -> str:
        return f"omni-a{self.attempt_id}"

    @property
    def agent_leg(self) -> str:
        return f"omni-p{self.attempt_id}"


class VoiceCampaign(VoiceEffects):
    """``PlacesAttempts`` for voice; ``VoiceChannel`` feeds ``_campaign_event`` every event."""

    ORIGINATE_GRACE_SECONDS = 2.0
    """How long after an unanswered customer leg hangs up its ``OriginateResponse`` may take;
    past it the attempt ends with the signals gathered (the response was lost)."""

    _dials: dict[int, Dial]
    _dials_done: set[int]
    """Attempts this node ended: their later events (the rest of an answered call) need no
    database read to be ignored."""
    _waiting: set[int]
    """Answered predictive attempts looking for a free operator (their ``claim_by`` set)."""

    async def place(self, order: AttemptOrder) -> None:
        """Send the ``Originate`` for one attempt; returns once Asterisk has it queued.

        ``ChannelNotReady`` while the AMI link is down, with nothing stored (the engine refuses
        the attempt and the target is pending again)."""
        if order.operator_id is None and order.dial_mode not in UNRESERVED_MODES:
            raise InvalidInput("a campaign call needs an operator to connect it to", field="operator_id")
        if not self.ami.ready:
            raise ChannelNotReady("the AMI link to Asterisk is down")
        action_id = f"omni-a{order.attempt_id}-{uuid.uuid4().hex[:8]}"
        async with self.services.db.transaction() as session:
            attempt = await dialing.locked_attempt(session, order.attempt_id)
            if attempt is None or attempt.ended_at is not None:
                raise Conflict("attempt {attempt_id} is not open", attempt_id=order.attempt_id)
            if attempt.external_id:  # a second hand-off of one order must not ring twice
                raise Conflict("attempt {attempt_id} was already placed", attempt_id=order.attempt_id)
            inbox = await self._campaign_inbox(session, order)
            campaign = await session.get(m.Campaign, order.campaign_id)
            amd = bool(campaign is not None and campaign.amd_enabled)
            drop_seconds = campaign.drop_seconds if campaign is not None else 2
            started_at = attempt.started_at
            await dialing.do_mark_placed(session, attempt, action_id, ring_seconds=order.ring_seconds)
            context = str((inbox.config or {}).get("outbound_context") or self.settings.outbound_context)
        dial = Dial(
            attempt_id=order.attempt_id,
            phone=order.phone,
            operator_id=order.operator_id,
            inbox_id=inbox.id,
            queue_id=order.queue_id,
            ring_seconds=order.ring_seconds,
            variables={
                **order.variables,
                "campaign_id": order.campaign_id,
                "target_id": order.target_id,
                "attempt_id": order.attempt_id,
            },
            campaign_id=order.campaign_id,
            dial_mode=order.dial_mode,
            amd=amd,
            drop_seconds=drop_seconds,
        )
        self._dials[order.attempt_id] = dial
        self._start_prerender(order)
        action = control.campaign_call(
            self.settings,
            number=order.phone,
            context=context,
            caller_id=order.caller_id,
            ring_seconds=order.ring_seconds,
            action_id=action_id,
            uniqueid=dial.leg,
            attempt_id=order.attempt_id,
            campaign_id=order.campaign_id,
            amd=amd,
        )
        try:
            self.ami.fire(action, self._campaign_responded(dial.leg, action_id))
        except ChannelNotReady:
            self._dials.pop(order.attempt_id, None)
            async with self.services.db.transaction() as session:
                attempt = await dialing.locked_attempt(session, order.attempt_id)
                if attempt is not None and attempt.ended_at is None:
                    await dialing.do_unplace(session, attempt, started_at)
            raise

    async def _campaign_inbox(self, session: Any, order: AttemptOrder) -> m.Inbox:
        inbox = await session.get(m.Inbox, order.inbox_id) if order.inbox_id is not None else None
        if inbox is None or inbox.channel != KIND:
            inbox = await calls.outgoing_voice_inbox(session, order.queue_id)
        assert isinstance(inbox, m.Inbox)
        return inbox

    def _campaign_responded(self, leg: str, action_id: str) -> Any:
        """The ``Originate``'s response: ``Response: Error`` at once, or the
        ``OriginateResponse`` when the call was answered or failed. Queued as an event, so it
        is applied in order with the call's other events."""

        def responded(result: Any) -> None:
            last = result[-1] if isinstance(result, list) else result
            ok = str(last.get("Response", "")).lower() == "success"
            if ok and str(last.get("Event", "")).lower() != "originateresponse":
                return  # only "queued": the OriginateResponse follows (or is lost)
            cause = str(last.get("Reason", "") or ("" if ok else last.get("Message", "") or "0"))
            ev = CallEvent(
                Kind.ORIGINATE_RESPONSE,
                leg,
                leg,
                channel=str(last.get("Channel", "") or ""),
                success=ok,
                cause=cause,
                extra={"action_id": action_id},
            )
            self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))

        return responded

    # --- events ----------------------------------------------------------------------------

    async def _campaign_event(self, ev: CallEvent, now: datetime) -> None:
        """Gather one event of a campaign call; act when it answers, connects or ends."""
        ref = attempt_of(ev.linkedid) or attempt_of(ev.uniqueid) or attempt_of(ev.extra.get("action_id", ""))
        if ref is None:
            return
        attempt_id, operator_leg = ref
        dial = await self._dial_for(attempt_id)
        if dial is None or dial.done:
            return
        try:
            if operator_leg:
                await self._operator_event(dial, ev, now)
            else:
                await self._customer_event(dial, ev, now)
        except (DomainError, ChannelNotReady) as exc:
            log.warning("voice: campaign attempt %s: %s not applied: %s", attempt_id, ev.kind, exc)

    async def _customer_event(self, dial: Dial, ev: CallEvent, now: datetime) -> None:
        own = ev.uniqueid == dial.leg
        if own and ev.channel:
            dial.channel = ev.channel
            dial.seen = True
        match ev.kind:
            case Kind.DIAL_END:
                telling = ev.dial_status not in ("", "ANSWER", "NOANSWER", "CANCEL")
                if telling or not dial.dial_status:
                    dial.dial_status = ev.dial_status if ev.dial_status != "ANSWER" else dial.dial_status
            case Kind.HANGUP:
                cause = str(ev.extra.get("cause", ""))
                if outcomes.specific_cause(cause) and not dial.hangup_cause:
                    dial.hangup_cause, dial.hangup_text = cause, ev.cause
                if own:
                    await self._customer_gone(dial, ev, now)
            case Kind.STATE if own and ev.state == "up":
                await self._customer_answered(dial, now)
            case Kind.ORIGINATE_RESPONSE if ev.success:
                await self._customer_answered(dial, now)
            case Kind.AMD if own:
                await self._amd_result(dial, ev, now)
            case Kind.CLAIM:
                dial.claim_queued = False
                await self._claim(dial, now, deadline=ev.extra.get("deadline") == "1")
            case Kind.ORIGINATE_RESPONSE if not dial.responded:
                # Its response comes through panoramisk's future callback, so it is applied
                # after the events that arrived with it; the leg's Hangup may precede it.
                dial.responded = True
                dial.reason = ev.cause if not ev.extra.get("grace") else ""
                if dial.hung_up_at is not None or not dial.seen:
                    await self._unanswered(dial, dial.hung_up_at or now)

    async def _customer_gone(self, dial: Dial, ev: CallEvent, now: datetime) -> None:
        if dial.answered_at is None:
            dial.hung_up_at = dial.hung_up_at or now
            if dial.responded:
                await self._unanswered(dial, now)
            else:  # the OriginateResponse follows; if it is lost, end with what we know
                grace = CallEvent(
                    Kind.ORIGINATE_RESPONSE, dial.leg, dial.leg, success=False, extra={"grace": "1"}
                )
                asyncio.get_running_loop().call_later(
                    self.ORIGINATE_GRACE_SECONDS,
                    self._events.put_nowait,
                    (grace, datetime.now(UTC), time.perf_counter()),
                )
        elif dial.amd and not dial.amd_done:
            # Gone while AMD() listened (its UserEvent with HANGUP may follow, or come first).
            dial.amd_done, dial.amd_status = True, "HANGUP"
            await self._finish(dial, Outcome.NO_ANSWER, "hung up during answering-machine detection", now)
        elif not dial.bridged:
            await self._finish(
                dial,
                Outcome.DROPPED,
                f"customer hung up before the operator answered ({ev.cause or 'hang-up'})",
                now,
            )
        # A bridged call's end is the registry's (wrap-up); the attempt ended when bridged.

    async def _unanswered(self, dial: Dial, now: datetime) -> None:
        outcome, cause = outcomes.failure(dial.dial_status, dial.hangup_cause, dial.hangup_text, dial.reason)
        await self._finish(dial, outcome, cause, now)

    async def _finish(self, dial: Dial, outcome: Outcome, cause: str, now: datetime) -> None:
        dial.done = True
        dial.claim_by = None
        self._waiting.discard(dial.attempt_id)
        self._dials.pop(dial.attempt_id, None)
        if len(self._dials_done) > 10_000:
            self._dials_done.clear()
        self._dials_done.add(dial.attempt_id)
        async with self.services.db.transaction() as session:
            await self._save_amd(session, dial)
            await dialing.do_end_attempt(
                session,
                dial.attempt_id,
                outcome,
                cause=cause,
                now=now,
                answered_at=dial.answered_at,
            )
        log.info("voice: campaign attempt %s: %s (%s)", dial.attempt_id, outcome, cause)

    async def _customer_answered(self, dial: Dial, now: datetime) -> None:
        """The customer picked up. With AMD the dialplan listens first (``_amd_result``
        decides); otherwise the call goes on to its operator (``_answered_human``)."""
        if dial.answered_at is not None:
            return
        dial.answered_at = now
        if dial.amd and not dial.amd_done:
            return
        await self._answered_human(dial, now)

    async def _answered_human(self, dial: Dial, now: datetime) -> None:
        """A person (or AMD not sure) is on the line: connect them by the campaign's mode."""
        if dial.dial_mode == DialMode.AGENTLESS:
            await self._answered_agentless(dial, now)
            return
        if dial.operator_id is not None:
            await self._connect(dial, now)
        elif dial.dial_mode == DialMode.PREDICTIVE:
            dial.claim_by = asyncio.get_running_loop().time() + max(0, dial.drop_seconds)
            self._waiting.add(dial.attempt_id)
            asyncio.get_running_loop().call_later(
                max(0, dial.drop_seconds), self._nudge_claim, dial.attempt_id, True
            )
            await self._claim(dial, now, deadline=False)
        else:
            await self._finish(dial, Outcome.DROPPED, f"no operator path for {dial.dial_mode} calls", now)
            await self._quietly(control.hangup(dial.channel or dial.leg))

    # --- AMD ---------------------------------------------------------------------------------

    async def _amd_result(self, dial: Dial, ev: CallEvent, now: datetime) -> None:
        """``UserEvent: OmniAmd`` (after ``AMD()`` in ``amd_context``, or from its ``h``
        extension when the customer hung up during it). The first one counts."""
        if not dial.amd or dial.amd_done:
            return
        status = str(ev.extra.get("status", "")).upper()
        cause = str(ev.extra.get("cause", ""))
        dial.amd_done, dial.amd_status = True, status
        dial.answered_at = dial.answered_at or now  # its OriginateResponse may still be on its way
        if status == "MACHINE":
            await self._machine(dial, cause, now)
        elif status == "HANGUP":
            await self._finish(dial, Outcome.NO_ANSWER, "hung up during answering-machine detection", now)
        else:  # HUMAN, NOTSURE, or empty (AMD could not run): as any answered call
            if not status:
                log.warning(
                    "voice: campaign attempt %s: AMD() did not run (is app_amd loaded? it needs"
                    " amd.conf); connecting the call as a person",
                    dial.attempt_id,
                )
            await self._answered_human(dial, now)

    async def _save_amd(self, session: Any, dial: Dial, attempt: m.CampaignAttempt | None = None) -> None:
        if not dial.amd_done:
            return
        attempt = attempt or await dialing.locked_attempt(session, dial.attempt_id)
        if attempt is not None and attempt.ended_at is None:
            await dialing.do_record_amd(session, attempt, dial.amd_status)

    async def _machine(self, dial: Dial, cause: str, now: datetime) -> None:
        """An answering machine: outcome ``machine`` (its retry rule). With ``machine_action``
        "message" it first hears the machine message (``machine_context`` waits for the
        silence after the beep); otherwise it is hung up."""
        sound, speak = "", ""
        async with self.services.db.transaction() as session:
            campaign = await session.get(m.Campaign, dial.campaign_id)
            if campaign is not None and campaign.machine_action == "message":
                sound, speak = await self._message(session, campaign.machine_prompt_id, campaign.machine_text)
        left = bool(sound or speak)
        what = f"answering machine: {cause}" if cause else "answering machine"
        await self._finish(dial, Outcome.MACHINE, f"{what}, message left" if left else what, now)
        if left:
            s = self.settings
            await self._play(
                dial,
                s.machine_context,
                sound,
                speak,
                {"OMNI_SILENCE": f"{s.machine_silence_ms},1,{s.machine_silence_wait_seconds}"},
            )
        else:
            await self._quietly(control.hangup(dial.channel or dial.leg))

    # --- messages ----------------------------------------------------------------------------

    def _start_prerender(self, order: AttemptOrder) -> None:
        """Render this call's texts while it rings (``channels.voice.prerender``), so the
        answered call plays them from the cache instead of a second of silence."""
        if self.services.settings.speech.engine != "espeak":
            return
        state: dict[str, Any] = self.__dict__.setdefault("_prerender_state", {})
        seen = state.setdefault("seen", prerender.Rendered())
        tasks: set[asyncio.Task[int]] = state.setdefault("tasks", set())

        async def run() -> int:
            try:
                return await prerender.prerender(self.services, order.campaign_id, order.target_id, seen)
            except Exception:  # the call renders on demand: never let this task's error surface
                log.exception("voice: pre-rendering the texts of attempt %s failed", order.attempt_id)
                return 0

        task = asyncio.create_task(run(), name=f"voice-prerender-{order.attempt_id}")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _message(self, session: Any, prompt_id: int | None, text: str) -> tuple[str, str]:
        """What a drop or machine message plays: ``(sound, speak)`` — the prompt's ``sound``,
        else what text to speech makes of the text (``omni.domain.speech``: ``utterance`` — a
        rendered file, or the TTS dialplan application with the spelled text —, else
        ``render``), else the text for ``OMNI_VOICE_TTS_APP``; ``("", "")``: nothing to say.
        A TTS failure is logged and falls back to the application (or to silence): the call
        must still end."""
        if prompt_id is not None:
            prompt = await session.get(m.Prompt, prompt_id)
            if prompt is not None and prompt.sound:
                return str(prompt.sound), ""
        if not text.strip():
            return "", ""
        settings = self.services.settings
        app = str(getattr(settings, "tts_app", "") or self.settings.tts_app)
        lang = settings.default_language
        try:
            speech: Any = importlib.import_module("omni.domain.speech")
        except ImportError:  # text to speech is not part of this install: the application
            return "", control.speak(app, text)
        try:
            if hasattr(speech, "utterance"):
                said = await speech.utterance(session, settings, text, lang)
                if said is None:
                    return "", ""
                if said.sound:
                    return str(said.sound), ""
                return "", control.speak(str(said.app), str(said.text or text))
            sound = await speech.render(session, settings, text, lang)
            return (str(sound), "") if sound else ("", control.speak(app, text))
        except (RuntimeError, DomainError, OSError, ValueError) as exc:  # speech.TtsError is a RuntimeError
            log.warning("voice: text to speech failed for a campaign message: %s", exc)
            return "", control.speak(app, str(getattr(exc, "text", "") or text))

    async def _play(
        self, dial: Dial, context: str, sound: str, speak: str, extra: dict[str, str] | None = None
    ) -> None:
        """Send the customer's channel to ``context`` with what to play set on it (``Setvar``
        first: AMI applies one session's actions in order). Asterisk refusing the redirect (a
        dialplan without the context) hangs the call up rather than leave it in music."""
        channel = dial.channel or dial.leg
        for name, value in {"OMNI_SOUND": sound, "OMNI_SPEAK": speak, **(extra or {})}.items():
            await self._quietly(control.setvar(channel, name, value))

        def redirected(result: Any) -> None:
            last = result[-1] if isinstance(result, list) else result
            if str(last.get("Response", "")).lower() == "error":
                log.warning("voice: %s refused (%s): hanging the call up", context, last.get("Message"))
                with contextlib.suppress(ChannelNotReady):
                    self.ami.fire(control.hangup(channel))

        try:
            self.ami.fire(control.redirect(channel, context), redirected)
        except ChannelNotReady as exc:
            log.info("voice: Redirect not sent: %s", exc)

    # --- predictive: a free operator within drop_seconds, else the drop message -------------

    def _operator_may_be_free(self, _data: Any = None) -> None:
        """The bus's ``routing`` hint (a commit freed an operator, or may have): every
        answered predictive call still looking asks again, in order with the AMI events."""
        for attempt_id in list(self._waiting):
            self._nudge_claim(attempt_id, False)

    def _nudge_claim(self, attempt_id: int, deadline: bool) -> None:
        dial = self._dials.get(attempt_id)
        if dial is None or dial.done or dial.claim_by is None:
            self._waiting.discard(attempt_id)
            return
        if dial.claim_queued and not deadline:
            return
        dial.claim_queued = True
        ev = CallEvent(Kind.CLAIM, dial.leg, dial.leg, extra={"deadline": "1" if deadline else ""})
        self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))

    async def _claim(self, dial: Dial, now: datetime, *, deadline: bool) -> None:
        """Look for a free operator for an answered predictive call; found: the conversation
        and the operator's phone as in progressive; nobody and the drop time is up: drop."""
        if dial.done or dial.claim_by is None:
            return
        started: _Started | None = None
        try:
            async with self.services.db.transaction() as session:
                attempt = await dialing.locked_attempt(session, dial.attempt_id)
                if attempt is None or attempt.ended_at is not None:
                    raise _Closed
                await self._save_amd(session, dial, attempt)
                if attempt.answered_at is None:
                    await dialing.do_attempt_answered(
                        session, attempt, conversation_id=None, now=dial.answered_at or now
                    )
                operator = await dialing.do_claim_operator(session, dial.attempt_id, now)
                if operator is not None:
                    dial.operator_id = operator
                    started = await self._start(session, dial, attempt, now)
        except _Closed:
            await self._too_late(dial)
            return
        except DomainError as exc:  # the operator could not take it after all: the next one
            log.info("voice: campaign attempt %s: operator not connected: %s", dial.attempt_id, exc)
            dial.operator_id = None
        if started is not None:
            dial.claim_by = None
            self._waiting.discard(dial.attempt_id)
            await self._ring_operator(dial, started)
            return
        if deadline or asyncio.get_running_loop().time() >= dial.claim_by:
            await self._drop(dial, now)

    async def _drop(self, dial: Dial, now: datetime) -> None:
        """Nobody free within ``drop_seconds``: ``dropped`` (abandoned, its retry rule), and the
        customer hears the drop message (prompt, else TTS of the text, else a moment of
        silence) in ``drop_context`` before the hang-up."""
        async with self.services.db.transaction() as session:
            campaign = await session.get(m.Campaign, dial.campaign_id)
            sound, speak = ("", "")
            if campaign is not None:
                sound, speak = await self._message(session, campaign.drop_prompt_id, campaign.drop_text)
        await self._finish(dial, Outcome.DROPPED, f"no operator free within {dial.drop_seconds} s", now)
        await self._play(dial, self.settings.drop_context, sound, speak)

    # --- connecting the operator ---------------------------------------------------------------

    async def _connect(self, dial: Dial, now: datetime) -> None:
        """The reserved operator (preview, progressive): the conversation (card variables),
        then the operator's phone. Nobody to connect (status, capacity, no extension, the
        attempt already ended by its deadline) hangs the customer up: ``dropped``."""
        try:
            async with self.services.db.transaction() as session:
                attempt = await dialing.locked_attempt(session, dial.attempt_id)
                if attempt is None or attempt.ended_at is not None:
                    raise _Closed  # its ring deadline ended it: nobody waits for this answer
                await self._save_amd(session, dial, attempt)
                started = await self._start(session, dial, attempt, now)
        except _Closed:
            await self._too_late(dial)
            return
        except DomainError as exc:
            log.warning("voice: campaign attempt %s answered, nobody to connect: %s", dial.attempt_id, exc)
            await self._finish(dial, Outcome.DROPPED, f"operator not available: {exc}", now)
            await self._quietly(control.hangup(dial.channel or dial.leg))
            return
        await self._ring_operator(dial, started)

    async def _too_late(self, dial: Dial) -> None:
        log.info("voice: campaign attempt %s answered after it ended; hanging up", dial.attempt_id)
        dial.done = True
        dial.claim_by = None
        self._waiting.discard(dial.attempt_id)
        self._dials.pop(dial.attempt_id, None)
        self._dials_done.add(dial.attempt_id)
        await self._quietly(control.hangup(dial.channel or dial.leg))

    async def _start(self, session: Any, dial: Dial, attempt: m.CampaignAttempt, now: datetime) -> _Started:
        """Inside the caller's transaction: the operator's conversation and call for the
        answered attempt (``DomainError`` when the operator can't take it)."""
        assert dial.operator_id is not None
        user = await calls.phone_user(session, dial.operator_id)
        extension = softphone.dial_extension(user, self.settings) if user else None
        if not extension:
            raise InvalidInput("the operator has no phone extension", field="sip_extension")
        name = str(dial.variables.get("name") or "")
        answered = dial.answered_at or now
        # The reservation ends at the answer (capacity stops counting the attempt), so
        # the conversation that takes its place fits the operator's capacity.
        if attempt.answered_at is None:
            attempt.answered_at = answered
        await session.flush()
        conv = await outgoing.do_start_outgoing(
            session,
            dial.operator_id,
            outgoing.OutgoingContact(
                inbox_id=dial.inbox_id or 0,
                identity_kind="phone",
                identity_value=dial.phone,
                contact_phone=dial.phone,
                contact_name=name,
                external_id=dial.leg,
                medium=m.Medium.VOICE,
                note=f"Campaign call to {dial.phone}",
                variables={**dial.variables, "linkedid": dial.leg},
            ),
            now=now,
        )
        await dialing.do_attempt_answered(session, attempt, conversation_id=conv.id, now=answered)
        call = Call(
            linkedid=dial.leg,
            direction="out",
            conversation_id=conv.id,
            caller_uniqueid=dial.leg,
            caller_channel=dial.channel,
            caller_number=dial.phone,
            caller_name=name,
            agent_uniqueid=dial.agent_leg,
            agent_user_id=dial.operator_id,
            answered_at=now,
            enqueued=True,
        )
        await self._save_call(call, session=session, inbox_id=dial.inbox_id)
        dial.conversation_id = conv.id
        return _Started(call, conv.id, extension, name)

    async def _ring_operator(self, dial: Dial, started: _Started) -> None:
        self.registry.add(started.call)
        action = control.campaign_agent(
            self.settings,
            started.extension,
            dial.agent_leg,
            ring_seconds=dial.ring_seconds,
            caller_number=dial.phone,
            caller_name=started.name,
            conversation_id=started.conversation_id,
            attempt_id=dial.attempt_id,
        )
        try:
            self.ami.fire(action, self._originate_failed(dial.agent_leg))
        except ChannelNotReady as exc:
            ev = CallEvent(Kind.ORIGINATE_RESPONSE, dial.agent_leg, success=False, cause=str(exc))
            self._events.put_nowait((ev, datetime.now(UTC), time.perf_counter()))

    async def _answered_agentless(self, dial: Dial, now: datetime) -> None:
        """An agentless campaign's customer answered: the conversation and its scenario
        (``agentless.do_start_agentless``), then the customer's channel is redirected to the
        agentless context, whose FastAGI ``outbound`` route plays the scenario and stores the
        result. From then on the call is the registry's like an inbound caller's (a hand-off
        queues it in the unified line, its hang-up ends the conversation) and this attempt's
        end is the IVR's (``agentless.do_store_result``). A scenario that can't start hangs
        the customer up: ``dropped``."""
        name = str(dial.variables.get("name") or "")
        try:
            async with self.services.db.transaction() as session:
                await self._save_amd(session, dial)  # a person (or AMD not sure) answered
                conv_id = await agentless.do_start_agentless(session, dial.attempt_id, now)
                call = Call(
                    linkedid=dial.leg,
                    conversation_id=conv_id,
                    caller_uniqueid=dial.leg,
                    caller_channel=dial.channel,
                    caller_number=dial.phone,
                    caller_name=name,
                    enqueued=True,  # the wait context's OmniEnqueue after a hand-off is this call
                )
                await self._save_call(call, session=session, inbox_id=dial.inbox_id, direction="out")
        except DomainError as exc:
            log.warning(
                "voice: agentless attempt %s answered, scenario not started: %s", dial.attempt_id, exc
            )
            await self._finish(dial, Outcome.DROPPED, f"scenario not started: {exc}", now)
            await self._quietly(control.hangup(dial.channel or dial.leg))
            return
        dial.conversation_id = conv_id
        dial.done = True
        self._dials.pop(dial.attempt_id, None)
        self._dials_done.add(dial.attempt_id)
        self.registry.add(call)
        await self._quietly(control.redirect(dial.channel or dial.leg, self.settings.agentless_context))

    async def _operator_event(self, dial: Dial, ev: CallEvent, now: datetime) -> None:
        """The operator's phone: answered → bridged with the customer, the attempt
        ``answered``; it never answers (busy, unreachable, not picked up) → ``dropped`` (the
        registry then ends the call: the customer is hung up, the conversation wrapped up)."""
        if dial.bridged or dial.answered_at is None or ev.uniqueid != dial.agent_leg:
            return
        if ev.kind == Kind.STATE and ev.state == "up":
            call = self.registry.for_conversation(dial.conversation_id) if dial.conversation_id else None
            if call is None or call.ended:
                return
            dial.bridged = True
            agent = call.agent_channel or ev.channel or dial.agent_leg
            await self._quietly(control.bridge(call.caller_channel or dial.channel or dial.leg, agent))
            if self._record(call):
                await self._save_call(call)
            await self._finish(dial, Outcome.ANSWERED, "connected to the operator", now)
        elif ev.kind == Kind.HANGUP or (ev.kind == Kind.ORIGINATE_RESPONSE and not ev.success):
            why = ev.cause or "no answer"
            await self._finish(dial, Outcome.DROPPED, f"operator unreachable: {why}", now)

    async def _dial_for(self, attempt_id: int) -> Dial | None:
        """The attempt's state, rebuilt from its row when this node did not place it (a
        restart): late events still end it."""
        dial = self._dials.get(attempt_id)
        if dial is not None or attempt_id in self._dials_done:
            return dial
        async with self.services.db.transaction() as session:
            attempt = await session.get(m.CampaignAttempt, attempt_id)
            if attempt is None or attempt.ended_at is not None or not attempt.external_id:
                return None
            if attempt.answered_at is not None:
                return None  # answered before a restart: the registry's resync owns the call
            campaign = await session.get(m.Campaign, attempt.campaign_id)
            assert campaign is not None
            dial = Dial(
                attempt_id=attempt.id,
                phone=attempt.phone,
                operator_id=attempt.operator_id,
                inbox_id=campaign.inbox_id,
                queue_id=campaign.queue_id,
                ring_seconds=campaign.ring_seconds,
                variables={
                    "campaign_id": campaign.id,
                    "target_id": attempt.target_id,
                    "attempt_id": attempt.id,
                },
                campaign_id=campaign.id,
                dial_mode=campaign.dial_mode,
                amd=campaign.amd_enabled,
                drop_seconds=campaign.drop_seconds,
            )
        self._dials[attempt_id] = dial
        return dial

    # --- resync ----------------------------------------------------------------------------

    async def _resync(self) -> None:
        await super()._resync()
        live = await self._live_channels()
        await self._reconcile_attempts({snap.linkedid for snap in live}, datetime.now(UTC))

    async def _reconcile_attempts(self, live_linkedids: set[str], now: datetime) -> None:
        """After a login (and so after a restart): placed attempts whose call Asterisk no
        longer has and that nobody here follows are ended instead of staying in progress —
        answered ones as ``dropped`` (no operator was connected), unanswered ones past their
        ring deadline as ``no_answer``; the rest are left to their events and deadline."""
        async with self.services.db.transaction() as session:
            rows = [
                (a.id, a.answered_at, a.started_at, a.conversation_id)
                for a in await dialing.placed_open_attempts(session, KIND)
            ]
        open_ids = {row[0] for row in rows}
        for attempt_id in [i for i in self._dials if i not in open_ids]:
            self._dials.pop(attempt_id, None)  # ended by its ring deadline; no event came since
        for attempt_id, answered_at, started_at, conversation_id in rows:
            leg = f"omni-a{attempt_id}"
            if attempt_id in self._dials:
                continue
            if leg in live_linkedids:
                if answered_at is not None and conversation_id is None:
                    # A predictive call that was looking for an operator on a node that went
                    # away: nobody looks any more, and its drop time is long past.
                    async with self.services.db.transaction() as session:
                        await dialing.do_end_attempt(
                            session,
                            attempt_id,
                            Outcome.DROPPED,
                            cause="no operator found before a restart",
                            now=now,
                        )
                    await self._quietly(control.hangup(leg))
                continue
            if answered_at is not None:
                async with self.services.db.transaction() as session:
                    await dialing.do_end_attempt(
                        session, attempt_id, Outcome.DROPPED, cause="call gone before the operator", now=now
                    )
            elif started_at is not None:
                async with self.services.db.transaction() as session:
                    attempt = await dialing.locked_attempt(session, attempt_id)
                    if attempt is None or attempt.ended_at is not None:
                        continue
                    campaign = await session.get(m.Campaign, attempt.campaign_id)
                    ring = campaign.ring_seconds if campaign is not None else 30
                    if (now - started_at).total_seconds() > ring + dialing.ANSWER_MARGIN_SECONDS:
                        await dialing.do_end_attempt(
                            session,
                            attempt_id,
                            Outcome.NO_ANSWER,
                            cause="call lost while Omni was away",
                            now=now,
                        )
