"""The IVR over FastAGI: a call runs the inbox's bot scenario, then waits in line.

Asterisk's dialplan hands the call to ``agi://<app>:4573/ivr,<inbox public token>``. The AGI
session drives the call; the scenario itself runs in the ordinary bot runner, so an IVR is
the same published scenario chats use (menus become "press N", see ``bots.checks``):

1. the caller is ingested once (``ingest_inbound``, ``external_id`` = the call's Linkedid
   and the caller identity ``caller_identity`` derives, as the AMI side does on
   ``OmniEnqueue``, so whichever side comes second gets the same conversation back); the
   inbox's scenario starts and stores its prompts as outbound messages;
2. each turn reads, in one snapshot, the conversation's status, what the bot waits for
   (``BotRunner.waiting``) and the bot messages not played yet (id after ``OMNI_PLAYED``, a
   channel variable, so a second AGI run on the same call doesn't replay them, and said by
   the running bot session, so a call an operator transferred to the IVR hears only the new
   scenario, see ``VoiceChannel.transfer(to_scenario=...)``);
3. each message is played: its prompt file (``STREAM FILE``, stored by the runner as a
   ``{"kind": "prompt"}`` attachment) if it has one, else the configured TTS application
   (``EXEC <tts_app> "<text>"``), else it is logged and skipped. While the bot waits for
   input any key interrupts the prompts (barge-in);
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

The wire: panoramisk parses the AGI result lines (``parse_agi_result``); the server loop is
ours because panoramisk's ``Application.handler`` spins forever on a connection closed before
the environment's blank line, has no way to stop running sessions and leaves a ``HANGUP``
notification in the buffer where the next command's result should be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from panoramisk.utils import parse_agi_result
from sqlalchemy import select

from bots.runner import BotRunner, Waiting
from bots.scenario import MenuNode, SurveyNode
from omni.channels import DeliveryReceipt, OutboundMessage
from omni.db import Database
from omni.db import models as m
from omni.domain import conversations, routing
from omni.domain.contacts import normalise_phone
from omni.domain.errors import InvalidInput, NotFound
from omni.services import Services

__all__ = [
    "AgiChannel",
    "AgiError",
    "AgiHangup",
    "AgiServer",
    "AnnounceSounds",
    "app_arg",
    "caller_identity",
    "quote",
]

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


# --- the wire ---------------------------------------------------------------------------


class AgiError(Exception):
    """Asterisk refused a command (``510``/``520``) or the session broke the protocol."""


class AgiHangup(Exception):
    """The caller hung up or the channel left the AGI (e.g. an AMI redirect): stop quietly."""


def quote(arg: str) -> str:
    """One AGI argument: double-quoted, ``\\`` and ``"`` escaped, line breaks flattened."""
    flat = re.sub(r"[\r\n\t]+", " ", arg)
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def app_arg(text: str) -> str:
    """A dialplan application's single argument: commas, quotes, brackets escaped, so a TTS
    sentence with a comma reaches e.g. ``Festival`` whole (``ast_app_separate_args``)."""
    return re.sub(r'([\\,"()\[\]])', r"\\\1", text)


class AgiChannel:
    """One FastAGI connection: the ``agi_*`` environment and a command/result exchange."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: dict[str, str],
        *,
        command_timeout: float = 300.0,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.env = env
        self.command_timeout = command_timeout
        self.hung_up = False
        """Asterisk sent its ``HANGUP`` notification (the caller is gone)."""

    @property
    def script(self) -> str:
        """The route: ``ivr`` for ``agi://host:4573/ivr``."""
        raw = self.env.get("agi_network_script") or self.env.get("agi_request", "").split("/", 3)[-1]
        return raw.split("?", 1)[0].strip("/")

    def arg(self, n: int) -> str:
        return self.env.get(f"agi_arg_{n}", "").strip()

    async def command(self, *parts: str) -> dict[str, Any]:
        """Send one command; its parsed ``200`` result, or ``AgiHangup`` / ``AgiError``."""
        if self.hung_up:
            raise AgiHangup("the caller hung up")
        line = " ".join(parts)
        try:
            self.writer.write(line.encode() + b"\n")
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise AgiHangup(f"connection lost: {exc}") from exc
        while True:
            raw = await self._readline()
            if raw == "HANGUP":
                self.hung_up = True  # the command's own result line still follows
                continue
            result: dict[str, Any] = parse_agi_result(raw)
            if result.get("error") == "AGIAppError":
                # "200 result=-1 ...": the application failed (a missing sound file) or the
                # channel is gone; panoramisk drops the code, the HANGUP flag tells them apart.
                result = {"status_code": 200, "result": ("-1", ""), "msg": raw}
            code = result.get("status_code")
            if code == 100:  # "100 result=0 Trying..."
                continue
            break
        if code == 511:  # "Command Not Permitted on a dead channel or intercept routine"
            self.hung_up = True
            raise AgiHangup(raw)
        if code == 520:
            usage = [raw]
            while not usage[-1].startswith("520 End"):
                usage.append(await self._readline())
            raise AgiError(f"{line}: {' '.join(usage)}")
        if code != 200:
            raise AgiError(f"{line}: {raw}")
        if self.hung_up or result.get("error") == "AGIResultHangup":
            self.hung_up = True
            raise AgiHangup(f"{line}: {raw}")
        return result

    async def _readline(self) -> str:
        try:
            raw = await asyncio.wait_for(self.reader.readline(), self.command_timeout)
        except (TimeoutError, ConnectionError) as exc:
            raise AgiHangup(f"no answer from Asterisk: {exc!r}") from exc
        if not raw:
            raise AgiHangup("connection closed by Asterisk")
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    @staticmethod
    def value(result: dict[str, Any]) -> str:
        """``result=`` of a parsed result (``""`` on a timeout)."""
        found = result.get("result", ("", ""))
        return str(found[0])

    # the commands the IVR uses --------------------------------------------------------

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, quote(value))

    async def get_variable(self, name: str) -> str | None:
        result = await self.command("GET VARIABLE", name)
        if self.value(result) != "1":
            return None
        return str(result["result"][1])

    async def stream_file(self, name: str, escape: str = "") -> str:
        """Play a sound file; the key that interrupted it, or ``""``."""
        result = await self.command("STREAM FILE", quote(name), quote(escape))
        code = self.value(result)
        if code == "-1":
            if await self._left_dialplan():
                # Answered (AMI Bridge pulled the channel out of the dialplan) or hung up mid-file:
                # nothing is wrong with the file, and this session is over.
                log.debug("sound file %r interrupted on %s: the channel left the dialplan",
                          name, self.env.get("agi_channel"))  # fmt: skip
                raise AgiHangup(f"{name} interrupted: the channel left the dialplan")
            log.warning("sound file %r could not be played on %s", name, self.env.get("agi_channel"))
            return ""
        return chr(int(code)) if code.isdigit() and int(code) > 0 else ""

    async def _left_dialplan(self) -> bool:
        """After ``result=-1``: is the channel still ours? Asterisk sends ``HANGUP`` (then 511
        to every command) once the channel was hung up or bridged away; a live channel answers
        ``CHANNEL STATUS`` (so the file itself is what failed)."""
        if self.hung_up:
            return True
        try:
            await self.command("CHANNEL STATUS")
        except AgiHangup:
            return True
        except AgiError:
            return False
        return self.hung_up

    async def exec(self, app: str, args: str) -> None:
        await self.command("EXEC", app, quote(args))

    async def wait_for_digit(self, timeout_ms: int) -> str:
        code = self.value(await self.command("WAIT FOR DIGIT", str(timeout_ms)))
        return chr(int(code)) if code.isdigit() and int(code) > 0 else ""

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str:
        result = await self.command("GET DATA", quote(sound), str(timeout_ms), str(max_digits))
        return self.value(result) if self.value(result) not in ("-1",) else ""

    async def say_number(self, number: int) -> None:
        await self.command("SAY NUMBER", str(number), quote(""))

    async def music(self, on: bool, moh_class: str = "") -> None:
        await self.command("SET MUSIC", "on" if on else "off", *([quote(moh_class)] if moh_class else []))

    async def hangup(self) -> None:
        await self.command("HANGUP")


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


Route = Callable[[AgiChannel], Awaitable[None]]


class AgiServer:
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
    ) -> None:
        self.db = services if isinstance(services, Database) else services.db
        self.host = host
        self.port = port
        self.tts_app = tts_app
        self.prompts_dir = prompts_dir
        self.moh_class = moh_class
        self.default_timeout = default_timeout
        self.max_busy_seconds = max_busy_seconds
        self.sounds = sounds or AnnounceSounds()
        self.routes: dict[str, Route] = {"ivr": self.ivr, "announce": self.announce}
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[Any]] = set()

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
            **options,
        )

    # lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        if self.port == 0:
            self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("FastAGI listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end the running sessions (their calls continue in the dialplan
        with ``OMNI_RESULT`` unset, which the sample dialplan treats as an error)."""
        if self._server is not None:
            self._server.close()
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            env = await self._environment(reader)
            if env is None:
                return
            channel = AgiChannel(reader, writer, env)
            route = self.routes.get(channel.script)
            if route is None:
                log.error(
                    "FastAGI request for unknown route %r from %s", channel.script, env.get("agi_channel")
                )
                with contextlib.suppress(AgiHangup, AgiError):
                    await channel.set_variable("OMNI_RESULT", "error")
                return
            try:
                await route(channel)
            except AgiHangup as exc:
                log.info("%s: %s ended by the channel (%s)", env.get("agi_channel"), channel.script, exc)
            except Exception:
                log.exception("FastAGI %s failed on %s", channel.script, env.get("agi_channel"))
                with contextlib.suppress(AgiHangup, AgiError):
                    await channel.set_variable("OMNI_RESULT", "error")
        finally:
            if task is not None:
                self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _environment(reader: asyncio.StreamReader) -> dict[str, str] | None:
        """``agi_name: value`` lines up to the blank line; ``None`` if the peer gave up."""
        env: dict[str, str] = {}
        try:
            async with asyncio.timeout(10):
                for _ in range(200):
                    raw = await reader.readline()
                    if not raw:
                        return None
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if not line:
                        return env
                    name, sep, value = line.partition(":")
                    if sep:
                        env[name.strip()] = value.strip()
        except (TimeoutError, ConnectionError):
            return None
        log.warning("FastAGI environment longer than 200 lines; dropped")
        return None

    async def prompt_sink(self, msg: OutboundMessage) -> DeliveryReceipt:
        """For ``VoiceChannel.prompt_sink``: a bot message on a call is played by the caller's
        IVR session, which reads it from the database and marks it ``delivered`` then (on
        whichever node runs the session), so the relay records nothing now."""
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
        played = await call.get_variable("OMNI_PLAYED")
        cursor = int(played) if played and played.isdigit() else 0
        music = False
        busy_since: float | None = None
        loop = asyncio.get_running_loop()
        for _ in range(MAX_ROUNDS):
            turn = await self._turn(conv_id, cursor)
            asking = turn.waiting is not None and turn.waiting.kind == "input"
            if music and (turn.said or asking or turn.status != m.ConversationStatus.BOT):
                await call.music(False)
                music = False
            pressed = await self._play(call, turn.said, barge_in=asking)
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

    async def _inbox(self, token: str) -> m.Inbox | None:
        if not token:
            return None
        async with self.db.transaction() as session:
            inbox = await session.scalar(select(m.Inbox).where(m.Inbox.public_token == token))
        if inbox is None or not inbox.active or inbox.channel != "voice":
            return None
        return inbox

    async def _ingest_call(self, inbox: m.Inbox, call: AgiChannel) -> _Caller:
        uniqueid = call.env["agi_uniqueid"]
        linkedid = await call.get_variable("CHANNEL(linkedid)") or uniqueid
        kind, value, phone = caller_identity(call.env.get("agi_callerid", ""), linkedid)
        name = call.env.get("agi_calleridname", "")
        async with self.db.transaction() as session:
            result = await conversations.ingest_inbound(
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
            found = (
                await session.execute(
                    select(m.ContactIdentity.kind, m.ContactIdentity.value)
                    .where(m.ContactIdentity.contact_id == conv.contact_id)
                    .order_by((m.ContactIdentity.kind == kind).desc(), m.ContactIdentity.id)
                    .limit(1)
                )
            ).first()
            caller = _Caller(
                conversation_id=conv.id,
                identity=(found[0], found[1]) if found else (kind, value),
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
        async with self.db.transaction() as session:
            if not self.db.is_sqlite:  # SQLite: transactions are serialised by ``Database``
                _ = await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            conv = await session.get(m.Conversation, conv_id)
            if conv is None:
                raise NotFound("conversation {conv_id} is gone", conv_id=conv_id)
            runner = self._runner()
            waiting = await runner.waiting(session, conv_id) if runner is not None else None
            query = select(m.Message).where(
                m.Message.conversation_id == conv_id,
                m.Message.direction == "out",
                m.Message.author_user_id.is_(None),
                m.Message.id > cursor,
            )
            bot = await session.get(m.BotSession, conv_id)
            if bot is not None:
                # Only what the current bot run said: after a transfer to the IVR (a new
                # scenario on a call that skipped the IVR, so without OMNI_PLAYED) the words of
                # an earlier run are not replayed.
                query = query.where(m.Message.created_at >= bot.started_at)
            rows = (await session.scalars(query.order_by(m.Message.id))).all()
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
            return _Turn(status=conv.status, queue_id=conv.queue_id, waiting=waiting, said=said)

    async def _play(self, call: AgiChannel, said: list[_Said], *, barge_in: bool) -> str:
        """Play the messages in order; with ``barge_in`` a key stops them and is returned."""
        escape = ANY_KEY if barge_in else ""
        for item in said:
            if item.prompt:
                key = await call.stream_file(prompt_path(self.prompts_dir, item.prompt), escape)
                if key:
                    return key
            elif self.tts_app and item.body.strip() and item.body != "…":
                await call.exec(self.tts_app, app_arg(item.body))
            else:
                log.warning("message %s has no prompt file and no TTS is configured; not played: %r",
                            item.id, item.body[:80])  # fmt: skip
        return ""

    async def _mark_played(self, ids: list[int]) -> None:
        async with self.db.transaction() as session:
            for message_id in ids:
                await conversations.mark_delivery(session, message_id, "delivered")

    async def _collect(self, call: AgiChannel, conv_id: int, waiting: Waiting, pressed: str) -> str:
        """The caller's digits for the waiting node; ``""`` = no input within the timeout."""
        node = waiting.node
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
                conv = await session.get(m.Conversation, conv_id, with_for_update=True)
                if conv is not None and not await runner.on_no_input(session, conv, token=waiting.token):
                    log.info("conversation %s moved on before the IVR's no-input; not fed", conv_id)
            return
        async with self.db.transaction() as session:
            result = await conversations.ingest_inbound(
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
                conv = await session.get(m.Conversation, int(raw))
            elif linkedid:
                conv = await session.scalar(
                    select(m.Conversation)
                    .join(m.Message, m.Message.conversation_id == m.Conversation.id)
                    .where(m.Message.external_id == linkedid, m.Message.direction == "in")
                    .order_by(m.Conversation.id.desc())
                    .limit(1)
                )
            if conv is None or conv.medium != m.Medium.VOICE:
                log.warning("announce: no voice conversation %r (linkedid %r) on %s",
                            raw, linkedid, call.env.get("agi_channel"))  # fmt: skip
                await call.set_variable("OMNI_RESULT", "error")
                return
            conv_id, status = conv.id, conv.status
            info = await routing.wait_info(session, conv)
        if not raw.isdigit():
            await call.set_variable("OMNI_CONVERSATION", str(conv_id))
        if status not in (m.ConversationStatus.QUEUED, m.ConversationStatus.OFFERED):
            await call.set_variable("OMNI_RESULT", str(status))
            return
        await call.set_variable("OMNI_RESULT", "queued")
        await call.set_variable("OMNI_POSITION", str(info.position))
        await call.set_variable("OMNI_WAIT", str(info.estimated_wait_seconds or ""))
        s = self.sounds
        if info.position <= 1:
            await call.stream_file(s.first)
        else:
            await call.stream_file(s.position)
            await call.say_number(info.position - 1)
            await call.stream_file(s.calls)
        if info.estimated_wait_seconds:
            await call.stream_file(s.hold_time)
            await call.say_number(max(1, math.ceil(info.estimated_wait_seconds / 60)))
            await call.stream_file(s.minutes)
        await call.stream_file(s.thanks)
