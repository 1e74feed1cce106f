"""The IVR over FastAGI: a call runs the inbox's bot scenario, then waits in line.

Asterisk's dialplan hands the call to ``agi://<app>:4573/ivr,<inbox public token>``. The AGI
session drives the call; the scenario itself runs in the ordinary bot runner, so an IVR is
the same published scenario chats use (menus become "press N", see ``bots.checks``):

1. the caller is ingested once (``do_ingest_inbound``, ``external_id`` = the call's Linkedid
   and the caller identity ``caller_identity`` derives, as the AMI side does on
   ``OmniEnqueue``, so whichever side comes second gets the same conversation back); the
   inbox's scenario starts and stores its prompts as outbound messages;
2. each turn reads, in one snapshot, the conversation's status, what the bot waits for
   (``BotRunner.waiting``) and the bot messages not played yet (id after ``OMNI_PLAYED``, a
   channel variable, so a second AGI run on the same call doesn't replay them, and said by
   the running bot session, so a call an operator transferred to the IVR hears only the new
   scenario, see ``VoiceChannel.transfer(to_scenario=...)``);
3. each message is played: its prompt file (``STREAM FILE``, stored by the runner as a
   ``{"kind": "prompt"}`` attachment) if it has one, else text to speech
   (``omni.domain.speech.utterance``, in the conversation's language: engine ``espeak``
   renders the text with numbers, dates and money spelled into a cached file played by
   ``STREAM FILE``; engine ``app`` runs ``EXEC <OMNI_TTS_APP> "<spelled text>"``; with no
   engine the older ``tts_app`` gets the text as written), else it is logged and skipped. A
   render that fails is logged and falls back to ``tts_app`` when there is one. While the bot
   waits for input any key interrupts the prompts (barge-in);
4. input: a menu reads one digit (``WAIT FOR DIGIT``), an ask/survey up to 32 ending with
   ``#`` (``GET DATA``), both with the node's timeout (``default_timeout`` when it has none).
   Digits enter the core as an inbound message with a ``{"kind": "dtmf"}`` attachment (the
   runner feeds ``Dtmf``); a timeout is fed as ``NoInput`` through
   ``BotRunner.on_no_input`` with the timer token, and the persisted no-input timer is
   deferred first, so the IVR owns the clock and a no-input is never counted twice;
5. while the bot is busy (HTTP node, wait node) the caller hears music on hold;
6. when the conversation leaves status ``bot`` the session sets ``OMNI_CONVERSATION``,
   ``OMNI_INBOX_ID``, ``OMNI_QUEUE`` and ``OMNI_RESULT`` and returns: ``queued`` → the
   dialplan continues to the holding context; ``closed`` → the closing words were played and
   the session hangs up; ``error`` → the dialplan apologises and hangs up.

Holding: the waiting context (``omni-wait``, docker/asterisk/extensions.conf) raises the
``OmniEnqueue`` user event the AMI side listens for, then loops
``AGI(agi://<app>:4573/announce,${OMNI_CONVERSATION})`` and ``MusicOnHold(,30)``. The
announce route reads ``routing.wait_info`` and says the place in line and the expected wait
with Asterisk's own queue sound files and ``SAY NUMBER``; it sets ``OMNI_RESULT`` to the
conversation's status, so the loop ends once the caller is no longer waiting.

The wire (one AGI session, the listener) is ``channels.voice.agi.wire``; what the IVR reads of
the core goes through ``omni.domain.ivr``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import anyio

from bots.runner import BotRunner, Waiting
from bots.scenario import MenuNode, RecordNode, SurveyNode
from channels.voice.agi.wire import AgiChannel, AgiHangup, FastAgiServer, app_arg
from omni.channels import DeliveryReceipt, OutboundMessage
from omni.db import Database
from omni.db import models as m
from omni.domain import conversations, files, place, prompts, routing
from omni.domain import ivr as core
from omni.domain.contacts import normalise_phone
from omni.domain.errors import Conflict, InvalidInput, NotFound
from omni.domain.outbound import agentless
from omni.domain.speech import TtsError, Utterance, utterance
from omni.services import Services
from omni.settings import Settings

__all__ = ["AgiServer", "AnnounceSounds", "caller_identity", "prompt_path"]

log = logging.getLogger(__name__)

ANY_KEY = "0123456789*#"
MAX_ROUNDS = 600
"""Rounds (one input, or one second of a busy bot) per IVR session: a guard against a scenario
that never lets the caller go."""
TIMER_GRACE_SECONDS = 15
"""The persisted no-input timer fires this long after the IVR's own timeout (a fallback)."""
POLL_SECONDS = 1
ASK_MAX_DIGITS = 32
SILENCE = "silence/1"
"""What ``GET DATA`` plays before collecting digits (the prompt was played already)."""


# --- pure helpers ------------------------------------------------------------------------


def caller_identity(callerid: str, linkedid: str) -> tuple[str, str, str | None]:
    """``(identity kind, value, phone)`` of a caller, the same as the AMI side derives (so both
    sides of one call find one contact): the E.164 number when the caller id is one, else one
    anonymous contact per call (``anonymous:<linkedid>``), so hidden numbers never share a
    conversation."""
    raw = (callerid or "").strip()
    try:
        phone = normalise_phone(raw)
    except InvalidInput:
        return "external", f"anonymous:{linkedid}", None
    return "phone", phone, phone


def prompt_path(prompts_dir: str, name: str) -> str:
    """What ``STREAM FILE`` takes: no extension; relative names under ``prompts_dir``."""
    path = PurePosixPath(name)
    if path.suffix.lower() in (".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".g722", ".mp3", ".ogg"):
        path = path.with_suffix("")
    if prompts_dir and not path.is_absolute():
        path = PurePosixPath(prompts_dir) / path
    return str(path)


@dataclass(frozen=True)
class AnnounceSounds:
    """Sound files of the position / expected-wait announcement (Asterisk's queue sounds)."""

    first: str = "queue-youarenext"
    """"Your call is now first in line and will be answered by the next available representative"."""
    position: str = "queue-thereare"
    """"There are"; followed by ``SAY NUMBER`` of the callers ahead and :attr:`calls`."""
    calls: str = "queue-callswaiting"
    """"calls waiting"."""
    hold_time: str = "queue-holdtime"
    """"The estimated hold time is currently"; then the minutes."""
    minutes: str = "queue-minutes"
    thanks: str = "queue-thankyou"
    callback: str = "queue-callback"
    """Played after the caller pressed the inbox's ``callback_key``: "we will call you back"
    (a recording of your own in the sounds directory; Asterisk ships none by this name)."""
    telegram: str = "queue-telegram"
    """Played after the caller pressed the inbox's ``telegram_key``: "we go on in Telegram, you
    keep your place" (a recording of your own, like :attr:`callback`): the call ends politely."""


async def _check_shared(sound: str, what: str, *, setting: str = "") -> None:
    """A file Asterisk plays or writes by an absolute path is in a directory both hosts see at
    that path (docs/voice.md, shared directories): one missing or unreadable here means the
    directory is not shared (or the file was removed), and the caller hears nothing — say so,
    naming the path, rather than leave a silent call to puzzle over."""
    path = PurePosixPath(sound)
    if not path.is_absolute():
        return  # a name in Asterisk's own sounds directory: only Asterisk can tell
    folder = anyio.Path(str(path.parent))
    try:
        found = [p async for p in folder.glob(f"{path.name}.*")]
        readable = bool(found) and os.access(found[0], os.R_OK)
    except OSError:
        found, readable = [], False
    if not readable:
        where = f" ({setting})" if setting else ""
        log.error(
            "%s file %s.* is %s on this node: its directory%s must be the same path on the Asterisk"
            " host and on every Omni node (a shared volume)",
            what,
            sound,
            "unreadable" if found else "missing",
            where,
        )


# --- the server --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Caller:
    conversation_id: int
    identity: tuple[str, str]
    uniqueid: str


@dataclass
class _Said:
    id: int
    body: str
    prompt: str


@dataclass
class _Turn:
    status: str
    queue_id: int | None
    waiting: Waiting | None
    said: list[_Said] = field(default_factory=list)
    lang: str = "en"


class AgiServer(FastAgiServer):
    """The FastAGI server: routes ``ivr`` (a call through the inbox's scenario into the line)
    and ``announce`` (place in line while holding).

    ``tts_app``: a dialplan application that speaks its argument (``Festival``, ``Flite``, a
    cloud TTS app); empty = prompt files only. ``prompts_dir``: where relative prompt names
    live on the Asterisk host (empty = Asterisk's sounds directory). ``moh_class``: the music
    class for the caller while the bot is busy and, via ``CHANNEL(musicclass)``, in the line.
    """

    def __init__(
        self,
        services: Services | Database,
        host: str = "0.0.0.0",  # noqa: S104 - Asterisk connects from another host/container
        port: int = 4573,
        *,
        tts_app: str = "",
        prompts_dir: str = "",
        moh_class: str = "",
        default_timeout: float = 5.0,
        max_busy_seconds: float = 300.0,
        sounds: AnnounceSounds | None = None,
        replies_dir: str = "",
    ) -> None:
        super().__init__(host, port)
        self.db = services if isinstance(services, Database) else services.db
        self.settings: Settings | None = None if isinstance(services, Database) else services.settings
        """Text to speech (``settings.speech``) comes from here; ``None``: ``tts_app`` only."""
        self.tts_app = tts_app
        self.prompts_dir = prompts_dir
        self.moh_class = moh_class
        self.default_timeout = default_timeout
        self.max_busy_seconds = max_busy_seconds
        self.sounds = sounds or AnnounceSounds()
        self.replies_dir = replies_dir
        self.routes.update(ivr=self.ivr, announce=self.announce, outbound=self.outbound)

    @classmethod
    def from_settings(cls, services: Services, **options: Any) -> AgiServer:
        """Bind address, prompts directory and music class from ``settings.voice``."""
        voice = services.settings.voice
        return cls(
            services,
            voice.agi_host,
            voice.agi_port,
            prompts_dir=str(voice.prompts_dir),
            moh_class=voice.moh_class,
            replies_dir=str(voice.replies_dir),
            **options,
        )

    async def prompt_sink(self, msg: OutboundMessage) -> DeliveryReceipt:
        """For ``VoiceChannel.prompt_sink``: a bot message on a call is played by the caller's
        IVR session, which reads it from the database and marks it ``delivered`` then (on
        whichever node runs the session), so the relay records nothing now. A message for a
        conversation that is not an open call has nobody to hear it: it fails at once."""
        async with self.db.transaction() as session:
            conv = await core.conversation(session, msg.conversation_id)
            on_call = conv is not None and conv.medium == m.Medium.VOICE and conv.status in m.OPEN_STATUSES
        if not on_call:
            return DeliveryReceipt("failed", error="there is no call in progress for this conversation")
        return DeliveryReceipt("pending")

    def _runner(self) -> BotRunner | None:
        runner = self.db.plugins.bot_gateway
        return runner if isinstance(runner, BotRunner) else None

    # the IVR ----------------------------------------------------------------------------

    async def ivr(self, call: AgiChannel) -> None:
        """One inbound call: scenario prompts and digits until the conversation leaves the bot."""
        token = call.arg(1)
        uniqueid = call.env.get("agi_uniqueid", "")
        inbox = await self._inbox(token)
        if inbox is None or not uniqueid:
            log.warning("IVR refused call %s on %s: unknown or inactive voice inbox token %r",
                        uniqueid, call.env.get("agi_channel"), token[:12])  # fmt: skip
            await call.set_variable("OMNI_RESULT", "error")
            return
        await call.answer()
        try:
            caller = await self._ingest_call(inbox, call)
        except (InvalidInput, NotFound) as exc:
            log.warning("IVR refused call %s on inbox %s: %s", uniqueid, inbox.id, exc)
            await call.set_variable("OMNI_RESULT", "error")
            return
        conv_id = caller.conversation_id
        await call.set_variable("OMNI_CONVERSATION", str(conv_id))
        await call.set_variable("OMNI_INBOX_ID", str(inbox.id))
        await self._drive(call, inbox, caller)

    async def _drive(self, call: AgiChannel, inbox: m.Inbox, caller: _Caller) -> None:
        """Scenario prompts and digits until the conversation leaves the bot (both routes)."""
        conv_id = caller.conversation_id
        played = await call.get_variable("OMNI_PLAYED")
        cursor = int(played) if played and played.isdigit() else 0
        if not cursor:
            await self._welcome(call, conv_id, inbox)
        music = False
        busy_since: float | None = None
        loop = asyncio.get_running_loop()
        for _ in range(MAX_ROUNDS):
            turn = await self._turn(conv_id, cursor)
            asking = turn.waiting is not None and turn.waiting.kind == "input"
            recording = turn.waiting is not None and turn.waiting.kind == "record"
            if music and (turn.said or asking or recording or turn.status != m.ConversationStatus.BOT):
                await call.music(False)
                music = False
            pressed = await self._play(call, turn.said, barge_in=asking, lang=turn.lang)
            if turn.said:
                cursor = turn.said[-1].id
                await call.set_variable("OMNI_PLAYED", str(cursor))
                await self._mark_played([s.id for s in turn.said])
            if turn.status != m.ConversationStatus.BOT:
                await self._leave(call, conv_id, turn)
                return
            if turn.waiting is None:
                log.error("conversation %s is with the bot but no bot runs; IVR gives up", conv_id)
                await call.set_variable("OMNI_RESULT", "error")
                return
            if asking:
                busy_since = None
                digits = await self._collect(call, conv_id, turn.waiting, pressed)
                await self._answer(inbox, caller, turn.waiting, digits)
                continue
            if turn.waiting.kind == "record":
                busy_since = None
                await self._record(call, inbox, caller, turn.waiting)
                continue
            # The bot is busy (an HTTP request, a wait node): music, and look again shortly.
            busy_since = busy_since or loop.time()
            if loop.time() - busy_since > self.max_busy_seconds:
                log.error("conversation %s: the bot stayed busy over %ss; IVR gives up",
                          conv_id, self.max_busy_seconds)  # fmt: skip
                await call.set_variable("OMNI_RESULT", "error")
                return
            if not music:
                await call.music(True, self.moh_class)
                music = True
            await call.wait_for_digit(POLL_SECONDS * 1000)
        log.error("conversation %s: the IVR ran %s rounds; gives up", conv_id, MAX_ROUNDS)
        await call.set_variable("OMNI_RESULT", "error")

    async def _welcome(self, call: AgiChannel, conv_id: int, inbox: m.Inbox) -> None:
        """The inbox's welcome prompt, once per call before the scenario speaks."""
        async with self.db.transaction() as session:
            sound = await prompts.welcome_sound(session, inbox, conv_id)
        if sound:
            await call.stream_file(sound)

    async def _inbox(self, token: str) -> m.Inbox | None:
        async with self.db.transaction() as session:
            return await core.voice_inbox_by_token(session, token)

    async def _ingest_call(self, inbox: m.Inbox, call: AgiChannel) -> _Caller:
        uniqueid = call.env["agi_uniqueid"]
        linkedid = await call.get_variable("CHANNEL(linkedid)") or uniqueid
        kind, value, phone = caller_identity(call.env.get("agi_callerid", ""), linkedid)
        name = call.env.get("agi_calleridname", "")
        async with self.db.transaction() as session:
            result = await conversations.do_ingest_inbound(
                session,
                conversations.InboundMessage(
                    inbox_id=inbox.id,
                    identity_kind=kind,
                    identity_value=value,
                    contact_phone=phone,
                    contact_name="" if name.lower() in ("unknown", "anonymous", "<unknown>") else name[:128],
                    body=f"Incoming call from {phone or 'an unknown number'}",
                    external_id=linkedid[:128],
                    medium=m.Medium.VOICE,
                    variables={"linkedid": linkedid},
                ),
            )
            conv = result.conversation
            # Digits must reach this conversation: use the identity its contact really has
            # (whoever ingested the call first, this session or the AMI side).
            found = await core.contact_identity(session, conv.contact_id, kind)
            caller = _Caller(
                conversation_id=conv.id,
                identity=found or (kind, value),
                uniqueid=uniqueid,
            )
        log.info("IVR call %s (%s) → conversation %s (%s)", linkedid, value, caller.conversation_id,
                 "already known" if result.duplicate else "new")  # fmt: skip
        return caller

    async def _turn(self, conv_id: int, cursor: int) -> _Turn:
        """Status, what the bot waits for and the unplayed bot messages, read together.

        "Together" means one snapshot: under PostgreSQL's default READ COMMITTED every
        statement sees the latest commit, so a bot step committing between the read of the
        conversation (still ``bot``) and of its bot session (already ``handed_off``: the HTTP
        answer came and the hand-off queued the call) looked like a conversation with the bot
        and no bot running, and the IVR gave up on a caller who was in fact queued.
        """
        async with self.db.transaction(snapshot=True) as session:
            conv = await core.conversation(session, conv_id)
            if conv is None:
                raise NotFound("conversation {conv_id} is gone", conv_id=conv_id)
            runner = self._runner()
            waiting = await runner.waiting(session, conv_id) if runner is not None else None
            # Only what the current bot run said (``bot_said``): after a transfer to the IVR
            # (a new scenario on a call that skipped the IVR, so without OMNI_PLAYED) the words
            # of an earlier run are not replayed.
            rows = await core.bot_said(session, conv_id, cursor)
            said = [
                _Said(
                    id=row.id,
                    body=row.body,
                    prompt=next(
                        (
                            str(a.get("file") or "")
                            for a in row.attachments or []
                            if a.get("kind") == "prompt"
                        ),
                        "",
                    ),
                )
                for row in rows
            ]
            lang = str((conv.variables or {}).get("lang") or "")
            if not lang and self.settings is not None:
                lang = self.settings.default_language
            return _Turn(status=conv.status, queue_id=conv.queue_id, waiting=waiting, said=said,
                         lang=lang or "en")  # fmt: skip

    async def _play(self, call: AgiChannel, said: list[_Said], *, barge_in: bool, lang: str = "en") -> str:
        """Play the messages in order; with ``barge_in`` a key stops them and is returned."""
        escape = ANY_KEY if barge_in else ""
        for item in said:
            if item.prompt:
                path = prompt_path(self.prompts_dir, item.prompt)
                if self._omni_wrote(path):
                    await _check_shared(path, "prompt")
                key = await call.stream_file(path, escape)
                if key:
                    return key
                continue
            speech = await self._speech(item, lang) if item.body.strip() and item.body != "…" else None
            if speech is not None and speech.sound:
                if self._omni_wrote(speech.sound):
                    await _check_shared(speech.sound, "rendered speech")
                key = await call.stream_file(speech.sound, escape)
                if key:
                    return key
            elif speech is not None:
                await call.exec(speech.app, app_arg(speech.text))
            else:
                log.warning("message %s has no prompt file and no TTS is configured; not played: %r",
                            item.id, item.body[:80])  # fmt: skip
        return ""

    def _omni_wrote(self, sound: str) -> bool:
        """Is ``sound`` in a directory Omni writes for Asterisk (uploaded prompts, the TTS
        cache)? Those files must be here too; sounds an administrator put on the Asterisk host
        (``OMNI_VOICE_PROMPTS_DIR``, Asterisk's own) can only be checked by Asterisk."""
        if self.settings is None:
            return False
        roots = (self.settings.prompts_dir, self.settings.tts_cache_dir)
        return any(PurePosixPath(sound).is_relative_to(str(root)) for root in roots)

    async def _speech(self, item: _Said, lang: str) -> Utterance | None:
        """How to say a text message: the configured engine (``settings.speech``), else
        ``tts_app`` with the text as written; a failed render falls back to ``tts_app``."""
        if self.settings is not None and self.settings.speech.engine:
            try:
                async with self.db.transaction() as session:
                    return await utterance(session, self.settings, item.body, lang)
            except TtsError as exc:
                fallback = self.tts_app or self.settings.tts_app
                log.error("message %s could not be said by text to speech (%s)%s", item.id, exc,
                          f"; falling back to {fallback}" if fallback else "")  # fmt: skip
                return Utterance(app=fallback, text=exc.text or item.body) if fallback else None
        if self.tts_app:
            return Utterance(app=self.tts_app, text=item.body)
        return None

    async def _mark_played(self, ids: list[int]) -> None:
        async with self.db.transaction() as session:
            for message_id in ids:
                await conversations.do_mark_delivery(session, message_id, "delivered")

    async def _collect(self, call: AgiChannel, conv_id: int, waiting: Waiting, pressed: str) -> str:
        """The caller's digits for the waiting node; ``""`` = no input within the timeout."""
        node = waiting.node if not isinstance(waiting.node, RecordNode) else None
        timeout = float(node.timeout_seconds if node is not None and node.timeout_seconds else 0)
        timeout = timeout or self.default_timeout
        runner = self._runner()
        if runner is not None:
            async with self.db.transaction() as session:
                await runner.defer_timers(session, conv_id, timeout + TIMER_GRACE_SECONDS)
        ms = int(timeout * 1000)
        single = isinstance(node, MenuNode) or (isinstance(node, SurveyNode) and node.kind == "single")
        if single:
            return pressed or await call.wait_for_digit(ms)
        if pressed == "#":
            return ""
        more = await call.get_data(SILENCE, ms, ASK_MAX_DIGITS - len(pressed))
        return (pressed + more).rstrip("#")

    async def _answer(self, inbox: m.Inbox, caller: _Caller, waiting: Waiting, digits: str) -> None:
        runner = self._runner()
        conv_id = caller.conversation_id
        if not digits:
            if runner is None:
                return
            async with self.db.transaction() as session:
                conv = await core.conversation(session, conv_id, lock=True)
                if conv is not None and not await runner.on_no_input(session, conv, token=waiting.token):
                    log.info("conversation %s moved on before the IVR's no-input; not fed", conv_id)
            return
        async with self.db.transaction() as session:
            result = await conversations.do_ingest_inbound(
                session,
                conversations.InboundMessage(
                    inbox_id=inbox.id,
                    identity_kind=caller.identity[0],
                    identity_value=caller.identity[1],
                    body=digits,
                    attachments=[{"kind": "dtmf", "digits": digits}],
                    external_id=f"{caller.uniqueid}/dtmf/{waiting.token}"[:128],
                    medium=m.Medium.VOICE,
                ),
            )
            if result.conversation.id != conv_id:
                log.error("DTMF of call %s landed in conversation %s, not %s",
                          caller.uniqueid, result.conversation.id, conv_id)  # fmt: skip

    async def _leave(self, call: AgiChannel, conv_id: int, turn: _Turn) -> None:
        """Hand the call back to the dialplan with the outcome in channel variables."""
        waiting = turn.status in (m.ConversationStatus.QUEUED, m.ConversationStatus.OFFERED)
        if turn.queue_id is not None:
            await call.set_variable("OMNI_QUEUE", str(turn.queue_id))
        if waiting and self.moh_class:
            await call.set_variable("CHANNEL(musicclass)", self.moh_class)
        result = "queued" if waiting else str(turn.status)
        await call.set_variable("OMNI_RESULT", result)
        log.info("IVR: conversation %s leaves the bot: %s", conv_id, result)
        if turn.status == m.ConversationStatus.CLOSED:
            await call.hangup()

    # agentless campaign calls (docs/dialer.md "Agentless notifications") --------------------

    async def outbound(self, call: AgiChannel) -> None:
        """An answered agentless campaign call (``AGI(…/outbound,${OMNI_ATTEMPT})`` in the
        agentless context): the scenario ``do_start_agentless`` started on its conversation
        is played as an inbound IVR's is; when it ends — or the call does — the contact's
        result is stored and the attempt closed (``agentless.do_store_result``)."""
        raw = call.arg(1)
        uniqueid = call.env.get("agi_uniqueid", "")
        async with self.db.transaction() as session:
            found = await core.agentless_call(session, int(raw)) if raw.isdigit() else None
            identity = await core.contact_identity(session, found[0].contact_id, "phone") if found else None
        if found is None or identity is None:
            log.warning("outbound AGI refused on %s: attempt %r has no answered conversation",
                        call.env.get("agi_channel"), raw[:12])  # fmt: skip
            await call.set_variable("OMNI_RESULT", "error")
            return
        conv, inbox = found
        caller = _Caller(conversation_id=conv.id, identity=identity, uniqueid=uniqueid or f"omni-a{raw}")
        try:
            await call.set_variable("OMNI_CONVERSATION", str(conv.id))
            await call.set_variable("OMNI_INBOX_ID", str(inbox.id))
            await self._drive(call, inbox, caller)
        finally:
            await self._store_result(conv.id)

    async def _store_result(self, conv_id: int) -> None:
        try:
            async with self.db.transaction() as session:
                result = await agentless.collect_result(session, conv_id)
                result["completed"] = result["status"] in agentless.COMPLETED
                await agentless.do_store_result(session, conv_id, result)
        except Exception:
            log.exception("conversation %s: the agentless result could not be stored", conv_id)

    async def _record(self, call: AgiChannel, inbox: m.Inbox, caller: _Caller, waiting: Waiting) -> None:
        """A ``record`` node: beep, record until silence, ``#`` or the limit, then the file is
        attached to the conversation (a message with a ``{"kind": "recording"}`` attachment,
        which the runner feeds as ``Recorded``). Nothing recorded: a no-input. A hang-up
        during the recording keeps what was said."""
        node = waiting.node
        if not isinstance(node, RecordNode):
            log.error("conversation %s records on a node that is no record node", caller.conversation_id)
            return
        conv_id = caller.conversation_id
        runner = self._runner()
        if runner is not None:
            async with self.db.transaction() as session:
                await runner.defer_timers(
                    session, conv_id, node.max_seconds + node.silence_seconds + TIMER_GRACE_SECONDS
                )
        base = PurePosixPath(self.replies_dir or "/tmp") / f"{conv_id}-{node.id}-{waiting.token}"  # noqa: S108 - Asterisk's own default spool
        gone: AgiHangup | None = None
        try:
            await call.record_file(
                str(base), timeout_ms=node.max_seconds * 1000, beep=node.beep, silence=node.silence_seconds
            )
        except AgiHangup as exc:
            gone = exc
        if gone is None:
            await _check_shared(str(base), "voice reply", setting="OMNI_VOICE_REPLIES_DIR")
        async with self.db.transaction() as session:
            stored = await files.do_attach_recording(
                session,
                path=Path(f"{base}.wav"),
                conversation_id=conv_id,
                inbox_id=inbox.id,
                name=f"reply-{conv_id}-{node.id}.wav",
            )
            if stored is not None:
                await conversations.do_ingest_inbound(
                    session,
                    conversations.InboundMessage(
                        inbox_id=inbox.id,
                        identity_kind=caller.identity[0],
                        identity_value=caller.identity[1],
                        body="Voice reply",
                        attachments=[{"kind": "recording", **files.descriptor(stored)}],
                        external_id=f"{caller.uniqueid}/record/{waiting.token}"[:128],
                        medium=m.Medium.VOICE,
                    ),
                )
            elif gone is None and runner is not None:
                conv = await core.conversation(session, conv_id, lock=True)
                if conv is not None:
                    await runner.on_no_input(session, conv, token=waiting.token)
        log.info("conversation %s: voice reply %s", conv_id, stored.id if stored else "not recorded")
        if gone is not None:
            raise gone

    # holding ----------------------------------------------------------------------------

    async def announce(self, call: AgiChannel) -> None:
        """Say the caller's place in line and expected wait; ``OMNI_RESULT`` = ``queued``
        while they are waiting, else the conversation's status (the hold loop then ends).

        The argument is the conversation id (``OMNI_CONVERSATION``, set by the IVR); a call
        that skipped the IVR is found by its Linkedid (the AMI side's ``external_id``)."""
        raw = call.arg(1)
        linkedid = "" if raw.isdigit() else await call.get_variable("CHANNEL(linkedid)") or ""
        async with self.db.transaction() as session:
            conv: m.Conversation | None = None
            if raw.isdigit():
                conv = await core.conversation(session, int(raw))
            elif linkedid:
                conv = await core.call_conversation(session, linkedid)
            if conv is None or conv.medium != m.Medium.VOICE:
                log.warning("announce: no voice conversation %r (linkedid %r) on %s",
                            raw, linkedid, call.env.get("agi_channel"))  # fmt: skip
                await call.set_variable("OMNI_RESULT", "error")
                return
            conv_id, status = conv.id, conv.status
            info = await routing.wait_info(session, conv)
            inbox = await session.get(m.Inbox, conv.inbox_id) if conv.inbox_id else None
            # The inbox's key for "call me back, keeping my place" (docs/voice.md); "" = none.
            config = (inbox.config or {}) if inbox else {}
            key = str(config.get("callback_key") or "")[:1]
            telegram = str(config.get("telegram_key") or "")[:1]  # "go on in Telegram"
        if not raw.isdigit():
            await call.set_variable("OMNI_CONVERSATION", str(conv_id))
        if status not in (m.ConversationStatus.QUEUED, m.ConversationStatus.OFFERED):
            await call.set_variable("OMNI_RESULT", str(status))
            return
        await call.set_variable("OMNI_RESULT", "queued")
        await call.set_variable("OMNI_POSITION", str(info.position))
        await call.set_variable("OMNI_WAIT", str(info.estimated_wait_seconds or ""))
        s = self.sounds
        pressed = ""
        keys = key + telegram
        if info.position <= 1:
            pressed = await call.stream_file(s.first, keys)
        else:
            pressed = await call.stream_file(s.position, keys)
            await call.say_number(info.position - 1)
            pressed = pressed or await call.stream_file(s.calls, keys)
        if info.estimated_wait_seconds and not pressed:
            pressed = await call.stream_file(s.hold_time, keys)
            await call.say_number(max(1, math.ceil(info.estimated_wait_seconds / 60)))
            pressed = pressed or await call.stream_file(s.minutes, keys)
        pressed = pressed or await call.stream_file(s.thanks, keys)
        if key and pressed == key:
            await self._call_me_back(call, conv_id)
        elif telegram and pressed == telegram:
            await self._go_on_in_telegram(call, conv_id)

    async def _go_on_in_telegram(self, call: AgiChannel, conv_id: int) -> None:
        """The caller pressed the Telegram key: the conversation keeps its place and goes on in
        the Telegram chat Omni knows (``omni.domain.place``); they hear so and the call ends
        (``OMNI_RESULT=telegram``). Unknown in Telegram: they keep waiting on the line."""
        try:
            async with self.db.transaction() as session:
                await place.check_continue_in_telegram(session, conv_id, via="ivr")
        except (InvalidInput, Conflict, NotFound) as exc:
            log.warning("announce: conversation %s: not moved to Telegram: %s", conv_id, exc.message)
            return
        await call.set_variable("OMNI_RESULT", "telegram")
        await call.stream_file(self.sounds.telegram)
        await call.hangup()

    async def _call_me_back(self, call: AgiChannel, conv_id: int) -> None:
        """The caller pressed the callback key while waiting: the same conversation keeps its
        place as a callback to their number (``omni.domain.place``), they hear so and the call
        ends (``OMNI_RESULT=callback``); the adapter sees the hang-up and keeps the place."""
        try:
            async with self.db.transaction() as session:
                await place.check_request_callback(session, conv_id, number=None, via="ivr")
        except (InvalidInput, Conflict, NotFound) as exc:
            log.warning("announce: conversation %s: no callback: %s", conv_id, exc.message)
            return
        await call.set_variable("OMNI_RESULT", "callback")
        await call.stream_file(self.sounds.callback)
        await call.hangup()
