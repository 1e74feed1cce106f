"""A loopback Asterisk Manager Interface (AMI) server for tests and benchmarks.

It speaks the real wire protocol — the ``Asterisk Call Manager/5.0.x`` banner, CRLF headers,
``Action: Login`` with Username/Secret, ``ActionID`` echoed on every response and list item,
event lists (``EventList: start`` … ``…Complete``), ``Response: Follows`` for ``Command`` — and
keeps a small model of channels and bridges so scripted calls produce the events a real
Asterisk emits (Newchannel, Newstate, VarSet, Newexten, UserEvent, MusicOnHoldStart,
DialBegin/DialEnd, BridgeCreate/BridgeEnter/BridgeLeave/BridgeDestroy, Hold/Unhold, Hangup,
OriginateResponse, AttendedTransfer, BlindTransfer) and reacts to Originate, Redirect,
Bridge, Hangup, Atxfer, BlindTransfer, MixMonitor, Setvar, CoreShowChannels, QueueStatus,
Command. Campaign calls originated into the sample dialplan's AMD context run an emulated
``AMD()`` (``amd[number]``: answer, ``amd_seconds`` of listening, then ``VarSet AMDSTATUS`` /
``AMDCAUSE`` and the dialplan's ``UserEvent: OmniAmd``; a hang-up during it runs the ``h``
extension); channels redirected to a message context (``omni-drop``, ``omni-machine``) step
through it and record what ``Playback()`` played in ``played``.

Phones: ``phones[extension]`` is ``manual`` (ring until ``answer(ext)``; the default),
``answer`` (pick up at once), ``busy``, ``no_answer`` (ring until the originate's timeout) or
``unreachable`` (no channel is ever created: the Originate is queued, then only an
``OriginateResponse: Failure`` comes, as for an unregistered endpoint).
Knobs: ``refuse_login``, ``muted`` (read actions, answer nothing), ``drop()`` (cut every
connection, as a network failure would; the
model keeps running, events meanwhile are lost like with a real Asterisk), ``refuse[action]``
(answer that action with ``Response: Error`` and the given message, e.g. a channel that just
went away), ``vanish(ref)`` (a channel goes away and its ``Hangup`` event is lost).

Bridges end like Asterisk's: when one party leaves a two-party bridge (hang-up or
``Redirect``), the other one goes on with its dialplan at the next priority
(``after_bridge[context]``: ``hangup`` by default — ``Dial()``/``Wait()`` followed by
``Hangup()`` —, ``music`` for the waiting/hold contexts that loop, or ``wait`` for a context
that loops back to ``Wait()``); the callee of a ``Dial()`` is hung up with its caller. A
``Redirect`` with ``ExtraChannel`` moves both parties at once, so neither runs on.

Link faults as seen in the field: an emulator built but not ``start()``-ed yet is an Asterisk
that is not listening yet (Omni started first); ``stop()`` stops listening and cuts the
sessions (Asterisk stopped); ``accept_then_close()`` puts a listener on the port that accepts
each TCP connection and closes it at once, from its own thread like a separate proxy process
would (a published Docker port or a TCP proxy in front of a stopped Asterisk), so the close
can reach the client before its event loop has finished handling the connect;
``closed_at_accept`` counts those connections. ``start()`` again brings Asterisk back on the
same port.

Every event carries its Asterisk class in ``Privilege`` (``EVENT_CLASS``) and goes only to the
sessions whose Login ``Events`` mask names that class (``event_mask``), as ``manager.c`` does;
``events_sent`` counts what the model generated, ``events_written`` what went out. A busy PBX's
traffic that is none of Omni's business: ``channel_noise(ref)`` (a dialplan's VarSet flood and
Newexten, RTCP reports) and ``internal_call(a, b)`` (two extensions calling each other).

After an AMI ``Bridge`` (this takes precedence over ``after_bridge`` above):
when that bridge ends without a channel (its peer hung up or was
redirected away), Asterisk sends the channel on in the dialplan at the priority after the
application it was running when it was bridged. The emulator does the same with the sample
dialplan (``docker/asterisk/extensions.conf``, read by ``tests/channels/voice/dialplan.py``):
an operator leg goes on past ``Wait()``, a caller past the position announcement (which set
``OMNI_RESULT=queued`` before speaking) or past ``MusicOnHold()``; it then hangs up, plays
music (``MusicOnHoldStart``) or waits, as that dialplan says. ``history`` lists every event
sent as ``(event, uniqueid)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tests.channels.voice.dialplan import Dialplan

EOL = "\r\n"
CAUSE_TEXT = {
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
    21: "Call Rejected",
    27: "Destination out of order",
    34: "Circuit/channel congestion",
}
"""Asterisk's ``Cause-txt`` of the ISDN causes the emulator sends."""
STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
EVENT_CLASS = {
    "VarSet": "dialplan",
    "Newexten": "dialplan",
    "UserEvent": "user",
    "RTCPSent": "reporting",
    "RTCPReceived": "reporting",
    "Cdr": "cdr",
    "Cel": "cel",
    "DTMFBegin": "dtmf",
    "DTMFEnd": "dtmf",
    "FullyBooted": "system",
    "Shutdown": "system",
}
"""Each event's class (its ``Privilege``) as Asterisk 22 declares it; every other event the
emulator sends is ``call``. A manager session gets an event only when its ``Events`` mask
(the Login header) names the class."""
ALL_CLASSES = frozenset(
    {
        "system",
        "call",
        "log",
        "verbose",
        "command",
        "agent",
        "user",
        "config",
        "dtmf",
        "reporting",
        "cdr",
        "dialplan",
        "originate",
        "agi",
        "cc",
        "aoc",
        "test",
        "security",
        "message",
    }
)


def event_mask(value: Any) -> frozenset[str]:
    """The classes a Login's ``Events`` header subscribes to, read as Asterisk's
    ``set_eventmask`` does: ``on``/``yes`` all, ``off``/``no`` none, else a comma list."""
    text = str(value if value is not None else "on").strip().lower()
    if text in ("on", "yes", "true", "all"):
        return ALL_CLASSES
    if text in ("off", "no", "false", ""):
        return frozenset()
    return frozenset(part.strip() for part in text.split(",")) & ALL_CLASSES


@dataclass
class Chan:
    name: str
    uniqueid: str
    linkedid: str
    state: int = 0
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    cid_num: str = ""
    cid_name: str = ""
    bridge: str = ""
    application: str = ""
    app_data: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    originate_action_id: str = ""
    originate: dict[str, Any] = field(default_factory=dict)
    consult_of: str = ""
    """Atxfer: the transferer leg this consultation leg belongs to."""
    dial_bridge: bool = False
    dial_caller: bool = False
    """In a ``Dial()`` bridge: this leg ran ``Dial()`` (it goes on in its dialplan when the
    callee leaves; the callee is hung up when it leaves)."""
    ext: str = ""
    halves: list[str] = field(default_factory=list)
    """An originated ``Local/ext@ctx`` channel (``;1``): its ``;2`` half and the phone that
    half dials, which ring, answer and hang up with it."""
    epoch: int = 0
    """Bumped whenever the channel moves (dialplan jump, bridge, hang-up)."""
    fail_reason: int | None = None
    """The ``OriginateResponse`` ``Reason`` its failure reports (a campaign call through a
    ``Local`` channel learns only "hung up", 1, whatever the trunk said)."""
    dial_half: str = ""
    """A campaign call's ``;1``: the ``;2`` half whose ``Dial()`` rings the trunk."""


@dataclass
class Conn:
    writer: asyncio.StreamWriter
    logged_in: bool = False
    events: frozenset[str] = ALL_CLASSES
    """The event classes this session subscribed to (its Login's ``Events`` mask)."""


class AmiEmulator:
    def __init__(self, port: int, *, username: str = "omni", secret: str = "s3cret") -> None:
        self.port = port
        self.username = username
        self.secret = secret
        self.refuse_login = False
        self.muted = False
        """Read actions but answer none (a hung Asterisk or a half-open TCP link)."""
        self.closed_at_accept = 0
        self.dialplan = Dialplan.load()
        self.history: list[tuple[str, str]] = []
        self._go_on: dict[str, tuple[str, int, dict[str, str]]] = {}
        """Uniqueid → where the channel goes on after the AMI bridge it is in (context, the
        priority it was at, its variables then)."""
        self._proxy: threading.Thread | None = None
        self._proxy_stop = threading.Event()
        self.phones: dict[str, str] = {}
        self.customers: dict[str, str] = {}
        """Click-to-call destinations: ``answer`` (default), ``busy``, ``manual``."""
        self.refuse: dict[str, str] = {}
        """Action name (lower case) → the ``Message`` of a ``Response: Error`` it gets."""
        self.after_bridge: dict[str, str] = {}
        """Context → what the next priority does for a channel left alone in a bridge."""
        self.duplicate_events = False
        """Send every event twice (as a flapping link or two manager sessions on one socket do)."""
        self.lose_originate_responses = False
        """Never send ``OriginateResponse`` (the call itself still happens)."""
        self.originate_response_first = False
        """A failed campaign call's ``OriginateResponse`` before its channels' events (a race
        seen on Asterisk 22: it sometimes comes first)."""
        self.campaign_calls: dict[str, tuple[str, str]] = {}
        """Campaign calls by number: (the originated ``;1`` Uniqueid, the trunk channel's)."""
        self.amd: dict[str, str] = {}
        """Campaign calls by number: what ``AMD()`` concludes when the call is originated into
        the AMD context — ``human`` (default), ``machine``, ``notsure``, ``hangup`` (the customer
        hangs up while it listens) or ``manual`` (until ``amd_result(number, status)``)."""
        self.amd_seconds = 0.05
        """How long the emulated ``AMD()`` listens after the answer before it concludes."""
        self.amd_before_response = False
        """The ``OmniAmd`` result before the ``OriginateResponse`` (the originate thread and
        the channel's PBX thread race on a real Asterisk; a short greeting can win)."""
        self.amd_loaded = True
        """``False``: app_amd is not loaded (no amd.conf): the sample dialplan skips ``AMD()``."""
        self.amd_runs: dict[str, str] = {}
        """Uniqueid → the arguments ``AMD()`` ran with (after variable substitution)."""
        self.played: list[tuple[str, str]] = []
        """What message contexts played: (Uniqueid, ``Playback()`` file or ``exec:<app(args)>``)."""
        self.waited_for_silence: list[tuple[str, str]] = []
        """(Uniqueid, ``WaitForSilence()`` arguments) as the machine context ran them."""
        self.message_contexts = {"omni-drop", "omni-machine"}
        """Contexts that play something and hang up (stepped through the sample dialplan)."""
        self.actions: list[dict[str, Any]] = []
        self.channels: dict[str, Chan] = {}
        self.bridges: dict[str, list[str]] = {}
        self.recordings: dict[str, str] = {}
        self.logins = 0
        self.events_sent = 0
        """Events the model generated (what Asterisk would emit), whoever subscribed to them."""
        self.events_written = 0
        """Events written to manager sessions (after each session's ``Events`` mask)."""
        self._conns: list[Conn] = []
        self._server: asyncio.Server | None = None
        self._seq = itertools.count(1)
        self._base = int(time.time())
        self._timers: set[asyncio.TimerHandle] = set()
        self._silent = False

    # --- server ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._stop_proxy()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def accept_then_close(self) -> None:
        """Asterisk stops behind a proxy: every connection is accepted, then closed at once."""
        await self.stop()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.02)
        self._proxy_stop.clear()
        self._proxy = threading.Thread(target=self._proxy_loop, args=(listener,), daemon=True)
        self._proxy.start()

    def _proxy_loop(self, listener: socket.socket) -> None:
        with listener:
            while not self._proxy_stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                conn.close()
                self.closed_at_accept += 1

    async def _stop_proxy(self) -> None:
        if self._proxy is not None:
            self._proxy_stop.set()
            await asyncio.to_thread(self._proxy.join)
            self._proxy = None

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        await self.stop()

    async def stop(self) -> None:
        """Stop listening and cut the sessions (Asterisk stopped); ``start()`` brings it back."""
        await self._stop_proxy()
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop(self) -> None:
        """Cut every AMI connection (the channels keep living, like a network failure)."""
        for conn in list(self._conns):
            conn.writer.transport.abort()
        self._conns.clear()

    def reset(self) -> None:
        self.refuse_login = False
        self.muted = False
        self.phones.clear()
        self.customers.clear()
        self.refuse.clear()
        self.after_bridge.clear()
        self.actions.clear()
        self.duplicate_events = False
        self.lose_originate_responses = False
        self.originate_response_first = False
        self.campaign_calls.clear()
        self.amd.clear()
        self.amd_seconds = 0.05
        self.amd_before_response = False
        self.amd_loaded = True
        self.amd_runs.clear()
        self.played.clear()
        self.waited_for_silence.clear()

    @property
    def listening(self) -> bool:
        """Whether Asterisk is "up" (``start()``-ed and not ``stop()``-ed since)."""
        return self._server is not None

    @property
    def sessions(self) -> int:
        return sum(1 for c in self._conns if c.logged_in)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(writer)
        self._conns.append(conn)
        writer.write(b"Asterisk Call Manager/5.0.6\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = self._parse(raw.decode())
                if action:
                    self._handle(conn, action)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if conn in self._conns:
                self._conns.remove(conn)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    def _parse(text: str) -> dict[str, Any]:
        action: dict[str, Any] = {}
        for line in text.split(EOL):
            if ": " not in line:
                continue
            key, value = line.split(": ", 1)
            if key in action:
                prev = action[key]
                action[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                action[key] = value
        return action

    def _write(self, conn: Conn, headers: list[tuple[str, Any]], body: str = "") -> None:
        text = EOL.join(f"{k}: {v}" for k, v in headers if v is not None) + EOL
        if body:
            text += body + EOL
        conn.writer.write((text + EOL).encode())

    def _respond(self, conn: Conn, action: dict[str, Any], response: str = "Success", **fields: Any) -> None:
        headers: list[tuple[str, Any]] = [("Response", response), ("ActionID", action.get("ActionID"))]
        headers += list(fields.items())
        self._write(conn, headers)

    # --- events ---------------------------------------------------------------------------

    def _chan_fields(self, ch: Chan) -> list[tuple[str, Any]]:
        return [
            ("Channel", ch.name),
            ("ChannelState", ch.state),
            ("ChannelStateDesc", STATE_DESC.get(ch.state, "Unknown")),
            ("CallerIDNum", ch.cid_num or "<unknown>"),
            ("CallerIDName", ch.cid_name or "<unknown>"),
            ("ConnectedLineNum", "<unknown>"),
            ("ConnectedLineName", "<unknown>"),
            ("Language", "en"),
            ("AccountCode", ""),
            ("Context", ch.context),
            ("Exten", ch.exten),
            ("Priority", ch.priority),
            ("Uniqueid", ch.uniqueid),
            ("Linkedid", ch.linkedid),
        ]

    def event(self, name: str, ch: Chan | None = None, **fields: Any) -> None:
        cls = EVENT_CLASS.get(name, "call")
        headers: list[tuple[str, Any]] = [("Event", name), ("Privilege", f"{cls},all")]
        if ch is not None:
            headers += self._chan_fields(ch)
        headers += list(fields.items())
        if self._silent:
            return
        self.events_sent += 1
        self.history.append((name, ch.uniqueid if ch is not None else ""))
        for conn in self._conns:
            if conn.logged_in and cls in conn.events:
                self.events_written += 1
                self._write(conn, headers)
                if self.duplicate_events:
                    self._write(conn, headers)

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        handle = asyncio.get_running_loop().call_later(delay, fn, *args)
        self._timers.add(handle)

    # --- model helpers -------------------------------------------------------------------

    def _uid(self) -> str:
        return f"{self._base}.{next(self._seq)}"

    def find(self, ref: str) -> Chan | None:
        """A channel by name or Uniqueid (like ``ast_channel_get_by_name``)."""
        if ref in self.channels:
            return self.channels[ref]
        return next((c for c in self.channels.values() if c.name == ref), None)

    def _new(self, name: str, *, uid: str | None = None, linkedid: str | None = None, **kw: Any) -> Chan:
        uid = uid or self._uid()
        ch = Chan(name=name, uniqueid=uid, linkedid=linkedid or uid, **kw)
        self.channels[uid] = ch
        self.event("Newchannel", ch)
        return ch

    def _set_state(self, ch: Chan, state: int) -> None:
        ch.state = state
        self.event("Newstate", ch)

    def _goto(self, ch: Chan, context: str, exten: str = "s", priority: int = 1) -> None:
        self._go_on.pop(ch.uniqueid, None)  # a Redirect overrides the after-bridge location
        self._leave_bridge(ch)
        ch.epoch += 1
        ch.context, ch.exten, ch.priority = context, exten, priority
        ch.application = ""
        self.event("Newexten", ch, Extension=exten, Application="NoOp", AppData="")
        if context.endswith(("wait", "hold")):
            ch.application = "MusicOnHold"
            self.event("MusicOnHoldStart", ch, Class="default")
        elif context in self.message_contexts:
            self._later(0.01, self._run_message, ch.uniqueid, ch.epoch)

    def _bridge(self, a: Chan, b: Chan, *, dial: bool = False) -> str:
        for ch in (a, b):
            self._leave_bridge(ch)
        bid = str(uuid.uuid4())
        self.bridges[bid] = []
        self.event(
            "BridgeCreate", None, BridgeUniqueid=bid, BridgeType="basic", BridgeTechnology="simple_bridge"
        )
        for ch in (a, b):
            self._enter(ch, bid)
            ch.dial_bridge = dial
            ch.dial_caller = dial and ch is a
        return bid

    def _enter(self, ch: Chan, bid: str) -> None:
        ch.epoch += 1
        self.bridges[bid].append(ch.uniqueid)
        ch.bridge = bid
        self.event("BridgeEnter", ch, BridgeUniqueid=bid, BridgeNumChannels=len(self.bridges[bid]))

    def _leave_bridge(self, ch: Chan) -> None:
        bid = ch.bridge
        if not bid or bid not in self.bridges:
            return
        self.bridges[bid].remove(ch.uniqueid)
        ch.bridge = ""
        self.event("BridgeLeave", ch, BridgeUniqueid=bid, BridgeNumChannels=len(self.bridges[bid]))
        if len(self.bridges[bid]) <= 1:
            rest = list(self.bridges[bid])
            for uid in rest:
                other = self.channels.get(uid)
                if other is not None:
                    self.bridges[bid].remove(uid)
                    other.bridge = ""
                    self.event("BridgeLeave", other, BridgeUniqueid=bid, BridgeNumChannels=0)
                    if uid not in self._go_on:  # else: the sample dialplan decides, below
                        # After the leaving party's own events (its Hangup / Newexten).
                        self._later(0, self._run_on, other.uniqueid, other.epoch)
            del self.bridges[bid]
            self.event("BridgeDestroy", None, BridgeUniqueid=bid)
            for uid in rest:
                other = self.channels.get(uid)
                if other is not None and uid in self._go_on:
                    self._go_on_after_bridge(other)

    def _dialplan_position(self, ch: Chan) -> tuple[str, int, dict[str, str]] | None:
        """Where in the sample dialplan a channel that is not in a bridge is: the application it
        waits in (an operator leg: ``Wait``; a caller in the line: the announcement's AGI, which
        has set ``OMNI_RESULT=queued``; a held caller: ``MusicOnHold``)."""
        if (
            ch.bridge
            or ch.context not in self.dialplan.contexts
            or "s" not in self.dialplan.contexts[ch.context]
        ):
            return None
        variables = dict(ch.variables)
        context, priority, step = self.dialplan.run(ch.context, 1, variables)
        if step.app == "AGI" and "/announce" in step.args:
            variables["OMNI_RESULT"] = "queued"
        return context, priority, variables

    def _go_on_after_bridge(self, ch: Chan) -> None:
        context, priority, variables = self._go_on.pop(ch.uniqueid)
        context, priority, step = self.dialplan.go_on_after_bridge(context, priority, variables)
        ch.context, ch.exten, ch.priority = context, "s", priority
        ch.variables.update(variables)
        ch.application, ch.app_data = step.app, step.args
        self.event("Newexten", ch, Extension="s", Application=step.app, AppData=step.args)
        if step.app == "MusicOnHold":
            self.event("MusicOnHoldStart", ch, Class="default")
        elif step.app == "Hangup":
            self._hangup(ch, 16)

    def _run_on(self, uid: str, epoch: int) -> None:
        """A party left alone in a bridge goes on with its dialplan (unless it moved since)."""
        ch = self.channels.get(uid)
        if ch is None or ch.epoch != epoch or ch.bridge:
            return
        was_callee = ch.dial_bridge and not ch.dial_caller
        ch.dial_bridge = ch.dial_caller = False
        if was_callee:
            self._hangup(ch, 16)
            return
        default = "music" if ch.context.endswith(("wait", "hold")) else "hangup"
        then = self.after_bridge.get(ch.context, default)
        ch.priority += 1
        if then == "hangup":
            self.event("Newexten", ch, Extension=ch.exten, Application="Hangup", AppData="")
            self._hangup(ch, 16)
        elif then == "music":
            ch.application = "MusicOnHold"
            self.event("MusicOnHoldStart", ch, Class="default")
        else:
            ch.application = "Wait"
            self.event("Newexten", ch, Extension=ch.exten, Application="Wait", AppData="3600")

    def _hangup(self, ch: Chan, cause: int = 16) -> None:
        if ch.uniqueid not in self.channels:
            return
        self._go_on.pop(ch.uniqueid, None)
        ringing = ch.state != 6 and ch.originate_action_id
        ch.epoch += 1
        self._leave_bridge(ch)
        del self.channels[ch.uniqueid]
        text = CAUSE_TEXT.get(cause, "")
        self.event("Hangup", ch, Cause=cause, **{"Cause-txt": text})
        for uid in ch.halves:
            half = self.channels.get(uid)
            if half is not None:
                self._hangup(half, cause)
        if ringing:
            reason = ch.fail_reason if ch.fail_reason is not None else 5 if cause == 17 else 3
            self._originate_response(ch, success=False, reason=reason)
        for other in list(self.channels.values()):
            if other.consult_of == ch.uniqueid:
                self._hangup(other)

    def _originate_response(self, ch: Chan, *, success: bool, reason: int) -> None:
        if not ch.originate_action_id or self.lose_originate_responses:
            return
        action_id, ch.originate_action_id = ch.originate_action_id, ""
        headers: list[tuple[str, Any]] = [
            ("Event", "OriginateResponse"),
            ("Privilege", "call,all"),
            ("ActionID", action_id),
            ("Response", "Success" if success else "Failure"),
            ("Channel", ch.name),
            ("Context", ch.originate.get("Context", "")),
            ("Exten", ch.originate.get("Exten", "")),
            ("Application", ch.originate.get("Application", "")),
            ("Data", ch.originate.get("Data", "")),
            ("Reason", 4 if success else reason),
            ("Uniqueid", ch.uniqueid if success else "<null>"),
            ("CallerIDNum", ch.cid_num or "<unknown>"),
            ("CallerIDName", ch.cid_name or "<unknown>"),
        ]
        for conn in self._conns:
            if conn.logged_in:
                self._write(conn, headers)
                if self.duplicate_events:
                    self._write(conn, headers)

    # --- scripted calls (what callers and phones do) --------------------------------------

    def incoming_call(
        self, number: str, name: str = "", *, inbox: int | str = "", did: str = "4951000000"
    ) -> Chan:
        """A caller rings the trunk, is answered, (IVR is elsewhere) and waits with MOH."""
        n = next(self._seq)
        ch = self._new(f"PJSIP/trunk-{n:08x}", cid_num=number, cid_name=name, context="from-trunk", exten=did)
        ch.state = 4
        self.event("Newstate", ch)
        self._set_state(ch, 6)
        self.event("VarSet", ch, Variable="OMNI_INBOX", Value=str(inbox))
        ch.variables["OMNI_INBOX"] = str(inbox)
        self._goto(ch, "omni-wait")
        self.event("UserEvent", ch, UserEvent="OmniEnqueue", Inbox=str(inbox), DID=did)
        return ch

    def ivr_call(self, number: str, name: str = "", *, did: str = "4951000000") -> Chan:
        """A caller answered and running ``AGI(ivr)`` in ``omni-ivr``: no ``OmniEnqueue`` yet
        (the FastAGI side is driven separately, e.g. with ``agi_client.EmulatedCall``)."""
        n = next(self._seq)
        ch = self._new(f"PJSIP/trunk-{n:08x}", cid_num=number, cid_name=name, context="from-trunk", exten=did)
        self._set_state(ch, 6)
        self._goto(ch, "omni-ivr")
        ch.application = "AGI"
        return ch

    def channel_noise(self, ref: str, *, varsets: int = 10, newexten: int = 3, rtcp: int = 2) -> None:
        """What a live channel also sends that Omni never uses: a dialplan's ``Set()`` and
        macros (a ``VarSet`` flood, a ``Newexten`` per priority) and, while media flows, RTP
        statistics (``RTCPSent``/``RTCPReceived`` every few seconds)."""
        ch = self.find(ref)
        if ch is None:
            raise KeyError(ref)
        for i in range(varsets):
            self.event("VarSet", ch, Variable=f"__NOISE_{i}", Value=f"value-{i}")
        for i in range(newexten):
            self.event("Newexten", ch, Extension=ch.exten, Application="NoOp", AppData=f"step {i}")
        for i in range(rtcp):
            self.event(
                "RTCPSent" if i % 2 == 0 else "RTCPReceived",
                ch,
                SSRC="0x2b7d3b8a",
                PT="200(SR)",
                ReportCount=1,
                SentPackets=50 * (i + 1),
                SentOctets=8000 * (i + 1),
                **{"Report0FractionLost": 0, "Report0CumulativeLost": 0, "Report0IAJitter": 12},
            )

    def internal_call(self, caller_ext: str, callee_ext: str, *, varsets: int = 10, rtcp: int = 4) -> None:
        """One extension calls another on the same PBX, from dial to hang-up: the traffic of
        a real Asterisk that is none of Omni's business (Newchannel, Newstate, the dialplan's
        VarSet/Newexten, DialBegin/DialEnd, the bridge, RTCP while they talk, HangupRequest,
        Hangup, Cdr). Its channels are not kept in the model."""
        n = next(self._seq)
        a = self._new(
            f"PJSIP/{caller_ext}-{n:08x}", cid_num=caller_ext, context="from-internal", exten=callee_ext
        )
        self._set_state(a, 4)
        self.channel_noise(a.uniqueid, varsets=varsets, newexten=3, rtcp=0)
        b = self._new(
            f"PJSIP/{callee_ext}-{n:08x}", linkedid=a.linkedid, cid_num=callee_ext, exten=callee_ext
        )
        dest = {"DestChannel": b.name, "DestUniqueid": b.uniqueid, "DestLinkedid": a.linkedid}
        self.event("DialBegin", a, DialString=callee_ext, **dest)
        self._set_state(b, 5)
        self._set_state(b, 6)
        self.event("DialEnd", a, DialStatus="ANSWER", **dest)
        self._set_state(a, 6)
        bid = str(uuid.uuid4())
        self.event(
            "BridgeCreate", None, BridgeUniqueid=bid, BridgeType="basic", BridgeTechnology="simple_bridge"
        )
        for i, ch in enumerate((a, b)):
            self.event("BridgeEnter", ch, BridgeUniqueid=bid, BridgeNumChannels=i + 1)
        for ch in (a, b):
            self.channel_noise(ch.uniqueid, varsets=0, newexten=0, rtcp=rtcp)
        self.event("HangupRequest", b, Cause=16)
        for i, ch in enumerate((b, a)):
            self.event("BridgeLeave", ch, BridgeUniqueid=bid, BridgeNumChannels=1 - i)
        self.event("BridgeDestroy", None, BridgeUniqueid=bid)
        for ch in (b, a):
            del self.channels[ch.uniqueid]
            self.event("Hangup", ch, Cause=16, **{"Cause-txt": CAUSE_TEXT[16]})
        self.event(
            "Cdr",
            None,
            Source=caller_ext,
            Destination=callee_ext,
            Disposition="ANSWERED",
            UniqueID=a.uniqueid,
        )

    def hangup(self, ref: str, cause: int = 16) -> None:
        """The party on this channel hangs up (an attended transferer hanging up completes it)."""
        ch = self.find(ref)
        if ch is None:
            raise KeyError(ref)
        consult = next(
            (c for c in self.channels.values() if c.consult_of == ch.uniqueid and c.state == 6), None
        )
        if consult is not None:
            self._complete_attended(ch, consult)
            return
        self._hangup(ch, cause)

    def vanish(self, ref: str) -> None:
        """The channel goes away and Omni never hears of it (its ``Hangup`` event was lost)."""
        ch = self.find(ref)
        if ch is None:
            return
        self._silent = True
        try:
            self._hangup(ch)
        finally:
            self._silent = False

    def ringing(self, ext: str) -> Chan | None:
        return next((c for c in self.channels.values() if c.ext == ext and c.state in (0, 5)), None)

    def answer(self, ext: str) -> Chan:
        ch = self.ringing(ext)
        if ch is None:
            raise KeyError(f"extension {ext} is not ringing")
        self._answer(ch)
        return ch

    def phone_hold(self, ref: str, on: bool = True) -> None:
        ch = self.find(ref)
        assert ch is not None
        self.event("Hold" if on else "Unhold", ch, **({"MusicClass": "default"} if on else {}))

    def agent_leg(self, ext: str) -> Chan | None:
        """The answered leg Omni originated to this extension (``;1`` of a Local channel)."""
        return next((c for c in self.channels.values() if c.ext == ext and c.state == 6), None)

    # --- actions --------------------------------------------------------------------------

    def _handle(self, conn: Conn, action: dict[str, Any]) -> None:
        name = str(action.get("Action", "")).lower()
        self.actions.append(action)
        if self.muted:
            return
        if name == "login":
            ok = (
                not self.refuse_login
                and action.get("Username") == self.username
                and action.get("Secret") == self.secret
            )
            if not ok:
                self._respond(conn, action, "Error", Message="Authentication failed")
                conn.writer.transport.close()  # Asterisk ends the session after a failed login
                return
            conn.logged_in = True
            conn.events = event_mask(action.get("Events", "on"))
            self.logins += 1
            self._respond(conn, action, Message="Authentication accepted")
            if "system" in conn.events:
                self._write(
                    conn, [("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted")]
                )
            return
        if not conn.logged_in:
            self._respond(conn, action, "Error", Message="Permission denied")
            return
        if name in self.refuse:
            self._respond(conn, action, "Error", Message=self.refuse[name])
            return
        handler = getattr(self, f"_a_{name}", None)
        if handler is None:
            self._respond(conn, action, "Error", Message="Invalid/unknown command")
            return
        handler(conn, action)

    def _a_ping(self, conn: Conn, action: dict[str, Any]) -> None:
        self._respond(conn, action, Ping="Pong", Timestamp=f"{time.time():.6f}")

    def _a_logoff(self, conn: Conn, action: dict[str, Any]) -> None:
        self._respond(conn, action, "Goodbye", Message="Thanks for all the fish.")
        conn.writer.transport.close()

    def _a_command(self, conn: Conn, action: dict[str, Any]) -> None:
        command = str(action.get("Command", ""))
        if command == "core show version":
            output = "Asterisk 20.5.0 (omni AMI emulator)"
        elif command == "core show channels count":
            output = f"{len(self.channels)} active channels"
        else:
            output = (
                f"No such command '{command}' (type 'core show help {command}' for other possible commands)"
            )
        self._write(
            conn,
            [("Response", "Follows"), ("Privilege", "Command"), ("ActionID", action.get("ActionID"))],
            body=f"{output}\n--END COMMAND--",
        )

    def _a_coreshowchannels(self, conn: Conn, action: dict[str, Any]) -> None:
        aid = action.get("ActionID")
        self._respond(conn, action, EventList="start", Message="Channels will follow")
        for ch in self.channels.values():
            headers: list[tuple[str, Any]] = [("Event", "CoreShowChannel"), ("ActionID", aid)]
            headers += self._chan_fields(ch)
            headers += [
                ("Application", ch.application),
                ("ApplicationData", ch.app_data),
                ("Duration", "00:00:01"),
                ("BridgeId", ch.bridge),
            ]
            self._write(conn, headers)
        self._write(
            conn,
            [
                ("Event", "CoreShowChannelsComplete"),
                ("ActionID", aid),
                ("EventList", "Complete"),
                ("ListItems", len(self.channels)),
            ],
        )

    def _a_queuestatus(self, conn: Conn, action: dict[str, Any]) -> None:
        aid = action.get("ActionID")
        self._respond(conn, action, EventList="start", Message="Queue status will follow")
        self._write(
            conn,
            [
                ("Event", "QueueStatusComplete"),
                ("ActionID", aid),
                ("EventList", "Complete"),
                ("ListItems", 0),
            ],
        )

    def _a_originate(self, conn: Conn, action: dict[str, Any]) -> None:
        dial = str(action.get("Channel", ""))
        ext = dial.split("/", 1)[-1]
        local = dial.startswith("Local/")
        if local:
            ext = ext.split("@", 1)[0]
        async_ = str(action.get("Async", "false")).lower() == "true"
        self._respond(conn, action, Message="Originate successfully queued")
        if local and any(str(v).startswith("OMNI_CAMPAIGN=") for v in _as_list(action.get("Variable"))):
            self._campaign_originate(action, ext, dial.split("@", 1)[-1], async_)
            return
        behaviour = self.phones.get(ext, "manual")
        if behaviour == "unreachable":
            ghost = Chan(name=dial, uniqueid="<null>", linkedid="", originate=dict(action))
            ghost.originate_action_id = str(action.get("ActionID", "")) if async_ else ""
            self._later(0.01, lambda: self._originate_response(ghost, success=False, reason=0))
            return
        n = next(self._seq)
        cid = str(action.get("CallerID", ""))
        cid_name, _, cid_num = cid.partition("<")
        ch = self._new(
            f"{dial}-{n:08x}" + (";1" if local else ""),
            uid=str(action.get("ChannelId") or "") or None,
            cid_num=cid_num.rstrip(">").strip() or ext,
            cid_name=cid_name.strip().strip('"'),
            context=str(action.get("Context", "default")),
            exten=str(action.get("Exten", "s")),
            ext=ext,
        )
        if local:
            self._local_halves(ch, ext)
        ch.originate = dict(action)
        ch.originate_action_id = str(action.get("ActionID", "")) if async_ else ""
        for item in _as_list(action.get("Variable")):
            for pair in str(item).split(","):
                key, _, value = pair.partition("=")
                ch.variables[key] = value
        if behaviour == "busy":
            self._later(0.01, self._hangup, ch, 17)
            return
        self._set_state(ch, 5)
        timeout = int(action.get("Timeout", 30000)) / 1000
        self._later(timeout, self._ring_timeout, ch.uniqueid)
        if behaviour == "answer":
            self._later(0.01, self._answer, ch)

    def _local_halves(self, one: Chan, ext: str) -> None:
        """``Local/ext@ctx`` as Asterisk builds it: ``;1`` (the ChannelId) and ``;2``
        (``<ChannelId>;2``) share the Linkedid; ``;2`` runs the context and dials the phone."""
        two = self._new(one.name[:-2] + ";2", uid=f"{one.uniqueid};2", linkedid=one.linkedid, cid_num=ext)
        n = next(self._seq)
        phone = self._new(f"PJSIP/{ext}-{n:08x}", linkedid=one.linkedid, cid_num=ext, exten=ext)
        self.event(
            "DialBegin",
            two,
            DestChannel=phone.name,
            DestUniqueid=phone.uniqueid,
            DestLinkedid=phone.linkedid,
            DialString=ext,
        )
        self._set_state(phone, 5)
        one.halves = [two.uniqueid, phone.uniqueid]

    def _ring_timeout(self, uid: str) -> None:
        ch = self.channels.get(uid)
        if ch is None or ch.state == 6:
            return
        two = self.channels.get(ch.dial_half)
        if two is None:
            self._hangup(ch, 19)
            return
        # A campaign call's ring time ran out (as captured): the Originate gives up (Reason 3),
        # ;1 hangs up, the ;2 Dial() is cancelled, then the trunk and ;2 hang up.
        trunk = self.campaign_customer(two.exten)
        self._originate_response(ch, success=False, reason=3)
        self._only(ch, 19)
        self.event(
            "DialEnd",
            two,
            DestChannel=trunk.name if trunk else "",
            DestUniqueid=trunk.uniqueid if trunk else "",
            DialStatus="CANCEL",
        )
        self._only(trunk, 19)
        self._only(two, 19)

    # --- campaign calls: customer first, through a Local channel into the outbound context ---
    # The event orders below are those of Asterisk 22.10.1 (captured with a Local "trunk" whose
    # dialplan answered Busy(), Congestion(), Hangup(<cause>), nothing, Answer()): a Local
    # chain's OriginateResponse says Reason 0 for every failure it did not time out itself,
    # and it races the channels' Hangups (``originate_response_first`` puts it first).

    CUSTOMER_FAILURES: ClassVar[dict[str, tuple[str, int, int]]] = {
        "busy": ("BUSY", 17, 16),
        "congestion": ("CONGESTION", 34, 16),
        "chanunavail": ("CHANUNAVAIL", 27, 16),
        "invalid": ("NOANSWER", 1, 1),
        "rejected": ("NOANSWER", 21, 21),
    }
    """``customers[number]`` → (the ``;2`` Dial's DialStatus, the trunk's Cause, the cause the
    ``Local`` halves hang up with): a cause Dial() does not translate ends it as NOANSWER and
    travels up the chain; busy and congestion end in the dialplan's ``Hangup()`` (16)."""

    def _campaign_originate(self, action: dict[str, Any], number: str, context: str, async_: bool) -> None:
        """``Originate Channel=Local/<number>@<outbound context>``: ``;1`` (the ChannelId) rings
        until ``;2``'s ``Dial()`` to the trunk is answered, then goes to the Originate's
        context. A context that does not exist (an unknown trunk): the OriginateResponse
        (Failure, Reason 0) comes first, then both halves appear and hang up with cause 0."""
        action_id = str(action.get("ActionID", "")) if async_ else ""
        n = next(self._seq)
        cid = str(action.get("CallerID", ""))
        uid = str(action.get("ChannelId") or "") or None
        if not context.endswith("outbound"):
            ghost = Chan(name=f"Local/{number}@{context}", uniqueid=uid or "<null>", linkedid="")
            ghost.originate, ghost.originate_action_id = dict(action), action_id
            self._later(0.01, self._campaign_nowhere, ghost, number, context, n)
            return
        one = self._new(
            f"Local/{number}@{context}-{n:08x};1",
            uid=uid,
            cid_num=cid.rpartition("<")[2].rstrip(">") or cid,
            context=str(action.get("Context", "default")),
            exten=str(action.get("Exten", "s")),
        )
        two = self._new(
            one.name[:-2] + ";2",
            uid=f"{one.uniqueid};2",
            linkedid=one.linkedid,
            context=context,
            exten=number,
        )
        trunk = self._new(
            f"PJSIP/trunk-{next(self._seq):08x}",
            linkedid=one.linkedid,
            cid_num=number,
            context=context,
            exten=number,
        )
        one.originate, one.originate_action_id, one.dial_half = dict(action), action_id, two.uniqueid
        for item in _as_list(action.get("Variable")):
            key, _, value = str(item).partition("=")
            one.variables[key] = two.variables[key] = value
        one.halves, two.halves, trunk.halves = [two.uniqueid, trunk.uniqueid], [one.uniqueid], [two.uniqueid]
        self.campaign_calls[number] = (one.uniqueid, trunk.uniqueid)
        self.event(
            "DialBegin",
            two,
            DestChannel=trunk.name,
            DestUniqueid=trunk.uniqueid,
            DestLinkedid=trunk.linkedid,
            DialString=f"{number}@trunk",
        )
        self._set_state(trunk, 5)
        self._set_state(one, 5)
        self._later(int(action.get("Timeout", 30000)) / 1000, self._ring_timeout, one.uniqueid)
        behaviour = self.customers.get(number, "answer")
        if behaviour == "answer":
            self._later(0.01, self.campaign_answers, number)
        elif behaviour in self.CUSTOMER_FAILURES:
            self._later(0.01, self._campaign_fails, number, behaviour)
        # "manual" / "no_answer": rings until ``campaign_answers`` or the Originate's Timeout

    def _campaign_nowhere(self, ghost: Chan, number: str, context: str, n: int) -> None:
        self._originate_response(ghost, success=False, reason=0)
        one = self._new(f"Local/{number}@{context}-{n:08x};1", uid=ghost.uniqueid, context=context)
        two = self._new(one.name[:-2] + ";2", uid=f"{one.uniqueid};2", linkedid=one.linkedid, context=context)
        self._hangup(two, 0)
        self._hangup(one, 0)

    def _only(self, ch: Chan | None, cause: int) -> None:
        """Hang up one channel of a campaign call, not the rest of its chain."""
        if ch is not None:
            action_id, ch.halves, ch.originate_action_id = ch.originate_action_id, [], ""
            self._hangup(ch, cause)
            ch.originate_action_id = action_id  # its OriginateResponse is sent on its own

    def _campaign_fails(self, number: str, behaviour: str) -> None:
        one_uid, trunk_uid = self.campaign_calls[number]
        one, trunk = self.channels.get(one_uid), self.channels.get(trunk_uid)
        if one is None or trunk is None:
            return
        status, cause, chain = self.CUSTOMER_FAILURES[behaviour]
        two = self.channels.get(one.dial_half)
        response_last = behaviour == "congestion" or status == "NOANSWER"  # as captured
        if self.originate_response_first:
            self._originate_response(one, success=False, reason=0)
        dial_end = {"DestChannel": trunk.name, "DestUniqueid": trunk.uniqueid, "DialStatus": status}
        if status == "NOANSWER":  # the callee hung up with a cause Dial() does not translate
            self._only(trunk, cause)
            if two is not None:
                self.event("DialEnd", two, **dial_end)
        else:
            if two is not None:
                self.event("DialEnd", two, **dial_end)
            self._only(trunk, cause)
        self._only(two, chain)
        if response_last:
            self._only(one, chain)
            self._originate_response(one, success=False, reason=0)
        else:
            self._originate_response(one, success=False, reason=0)
            self._only(one, chain)

    def campaign_answers(self, number: str) -> None:
        """The customer picks up: trunk Up, ``DialEnd ANSWER``, ``;2`` and ``;1`` Up, ``;1`` goes
        on in the Originate's context (music on hold), then ``OriginateResponse Success``."""
        one_uid, trunk_uid = self.campaign_calls[number]
        one, trunk = self.channels.get(one_uid), self.channels.get(trunk_uid)
        if one is None or trunk is None or one.state == 6:
            return
        two = self.channels[one.dial_half]
        self._set_state(trunk, 6)
        self.event("DialEnd", two, DestChannel=trunk.name, DestUniqueid=trunk.uniqueid, DialStatus="ANSWER")
        self._set_state(two, 6)
        self._set_state(one, 6)
        self._goto(one, one.context, one.exten)
        if self._amd_start(one, number) and self.amd_before_response:
            self._amd_conclude(one.uniqueid, one.epoch, self.amd.get(number, "human"))
        self._originate_response(one, success=True, reason=4)

    # --- AMD() in the outbound dialplan (apps/app_amd.c as of Asterisk 22) --------------------

    AMD_CAUSES: ClassVar[dict[str, str]] = {
        "HUMAN": "HUMAN-800-800",
        "MACHINE": "MAXWORDS-3-2",
        "NOTSURE": "TOOLONG-5000",
    }
    """A typical ``AMDCAUSE`` per result (``<reason>-<measured>-<limit>``)."""

    def _amd_start(self, one: Chan, number: str) -> bool:
        """The answered ``;1`` entered its context: if the sample dialplan runs ``AMD()`` there,
        it listens for ``amd_seconds`` (``Newexten AMD``), then concludes as ``amd[number]``."""
        variables = dict(one.variables)
        if one.context not in self.dialplan.contexts:
            return False
        if not self.amd_loaded:
            variables["IFMODULE(app_amd.so)"] = "0"
        trail: list[Any] = []
        context, priority, step = self.dialplan.run(one.context, 1, variables, trail=trail)
        if step.app != "AMD":
            if any(s.app == "UserEvent" for s in trail):  # AMD() skipped: reported empty
                self._user_events(one, trail, variables)
                one.context, one.priority, one.application = context, priority, step.app
                if step.app == "MusicOnHold":
                    self.event("MusicOnHoldStart", one, Class="default")
            return False
        args = self.dialplan.expand(step.args, variables)
        one.context, one.priority, one.application, one.app_data = context, priority, "AMD", args
        self.amd_runs[one.uniqueid] = args
        self.event("Newexten", one, Extension="s", Application="AMD", AppData=args)
        behaviour = self.amd.get(number, "human")
        if behaviour == "hangup":
            self._later(self.amd_seconds, self._amd_hangup, one.uniqueid, one.epoch)
        elif behaviour != "manual" and not self.amd_before_response:
            self._later(self.amd_seconds, self._amd_conclude, one.uniqueid, one.epoch, behaviour)
        return True

    def amd_result(self, number: str, status: str) -> None:
        """``AMD()`` concludes now for a ``manual`` call (``human``/``machine``/``notsure``/``hangup``)."""
        one = self.campaign_leg(number)
        assert one is not None and one.application == "AMD", "AMD() is not listening on that call"
        if status == "hangup":
            self._amd_hangup(one.uniqueid, one.epoch)
        else:
            self._amd_conclude(one.uniqueid, one.epoch, status)

    def _amd_conclude(self, uid: str, epoch: int, behaviour: str) -> None:
        """``AMD()`` sets ``AMDSTATUS``/``AMDCAUSE`` (``VarSet``, sent only to a manager user
        with the ``dialplan`` class) and returns: the dialplan's ``UserEvent(OmniAmd)``, then
        on to the hold context (a person) or the wait for Omni (a machine)."""
        ch = self.channels.get(uid)
        if ch is None or ch.epoch != epoch or ch.application != "AMD":
            return
        status = behaviour.upper()
        self._amd_set(ch, status, self.AMD_CAUSES.get(status, ""))
        trail: list[Any] = []
        variables = dict(ch.variables)
        context, priority, step = self.dialplan.run(ch.context, ch.priority + 1, variables, trail=trail)
        self._user_events(ch, trail, variables)
        ch.context, ch.exten, ch.priority = context, "s", priority
        ch.application, ch.app_data = step.app, self.dialplan.expand(step.args, variables)
        self.event("Newexten", ch, Extension="s", Application=step.app, AppData=ch.app_data)
        if step.app == "MusicOnHold":
            self.event("MusicOnHoldStart", ch, Class="default")
        elif step.app == "Hangup":
            self._hangup(ch, 16)

    def _amd_hangup(self, uid: str, epoch: int) -> None:
        """The customer hangs up while ``AMD()`` listens: the trunk and ``;2`` go first; on
        ``;1`` ``ast_read`` fails, AMD sets HANGUP and returns, the PBX runs the context's
        ``h`` extension (its ``UserEvent(OmniAmd)``), then ``;1`` hangs up."""
        one = self.channels.get(uid)
        if one is None or one.epoch != epoch or one.application != "AMD":
            return
        two = self.channels.get(one.dial_half)
        trunk = self.campaign_customer(two.exten) if two is not None else None
        self._only(trunk, 16)
        self._only(two, 16)
        self._amd_set(one, "HANGUP", "")
        if "h" in self.dialplan.contexts.get(one.context, {}):
            trail: list[Any] = []
            variables = dict(one.variables)
            self.dialplan.run(one.context, 1, variables, exten="h", trail=trail)
            self._user_events(one, trail, variables)
        self._hangup(one, 16)

    def _amd_set(self, ch: Chan, status: str, cause: str) -> None:
        ch.variables["AMDSTATUS"], ch.variables["AMDCAUSE"] = status, cause
        self.event("VarSet", ch, Variable="AMDSTATUS", Value=status)
        self.event("VarSet", ch, Variable="AMDCAUSE", Value=cause)

    def _user_events(self, ch: Chan, trail: list[Any], variables: dict[str, str]) -> None:
        """``UserEvent(Name,Key: value,...)`` steps the dialplan ran, as AMI events."""
        for step in trail:
            if step.app != "UserEvent":
                continue
            name, *pairs = self.dialplan.expand(step.args, variables).split(",")
            fields = {}
            for pair in pairs:
                key, _, value = pair.partition(":")
                fields[key.strip()] = value.strip()
            self.event("UserEvent", ch, UserEvent=name, **fields)

    def _run_message(self, uid: str, epoch: int) -> None:
        """A channel redirected to a message context (drop, machine) runs it through the
        sample dialplan: ``WaitForSilence``, ``Playback`` (recorded in ``played``), ``Exec``
        (a TTS application), then ``Hangup`` (the whole campaign chain hangs up with it)."""
        ch = self.channels.get(uid)
        if ch is None or ch.epoch != epoch:
            return
        variables = ch.variables
        context, priority = ch.context, ch.priority
        for _ in range(20):
            trail: list[Any] = []
            context, priority, step = self.dialplan.run(context, priority, variables, trail=trail)
            self._user_events(ch, trail, variables)
            args = self.dialplan.expand(step.args, variables)
            ch.context, ch.priority, ch.application, ch.app_data = context, priority, step.app, args
            self.event("Newexten", ch, Extension="s", Application=step.app, AppData=args)
            if step.app == "Hangup":
                self._hangup(ch, 16)
                return
            if step.app == "Playback":
                self.played.append((uid, args))
            elif step.app == "Exec":
                self.played.append((uid, f"exec:{args}"))
            elif step.app == "WaitForSilence":
                self.waited_for_silence.append((uid, args))
            priority += 1

    def campaign_customer(self, number: str) -> Chan | None:
        """The customer's trunk channel of a campaign call (hang it up to make them leave)."""
        return self.channels.get(self.campaign_calls.get(number, ("", ""))[1])

    def campaign_leg(self, number: str) -> Chan | None:
        """The originated ``;1`` of a campaign call (what Omni bridges with the operator)."""
        return self.channels.get(self.campaign_calls.get(number, ("", ""))[0])

    def _answer(self, ch: Chan) -> None:
        if ch.uniqueid not in self.channels or ch.state == 6:
            return
        halves = [self.channels[u] for u in ch.halves if u in self.channels]
        if halves:  # the phone answers the ;2 half's Dial(), which answers ;1
            two, phone = halves[0], halves[-1]
            self._set_state(phone, 6)
            self.event(
                "DialEnd", two, DestChannel=phone.name, DestUniqueid=phone.uniqueid, DialStatus="ANSWER"
            )
            self._set_state(two, 6)
        self._set_state(ch, 6)
        if ch.consult_of:
            return  # an attended transfer's target: talks to the transferer until completion
        self._originate_response(ch, success=True, reason=4)
        app = str(ch.originate.get("Application", ""))
        if app:
            ch.application = app
            ch.app_data = str(ch.originate.get("Data", ""))
            if app == "ChanSpy":
                self.event("ChanSpyStart", None, SpyerChannel=ch.name, SpyeeChannel=ch.app_data.split(",")[0])
            return
        if ch.context.endswith("outbound"):
            self._dial_customer(ch)
            return
        self.event("Newexten", ch, Extension=ch.exten, Application="Wait", AppData="3600")
        ch.application = "Wait"

    def _dial_customer(self, agent: Chan) -> None:
        n = next(self._seq)
        number = agent.exten
        cust = self._new(
            f"PJSIP/trunk-{n:08x}",
            linkedid=agent.linkedid,
            cid_num=number,
            context=agent.context,
            exten=number,
        )
        self.event(
            "DialBegin",
            agent,
            DestChannel=cust.name,
            DestUniqueid=cust.uniqueid,
            DestLinkedid=cust.linkedid,
            DialString=f"trunk/{number}",
        )
        self._set_state(cust, 5)
        behaviour = self.customers.get(number, "answer")
        if behaviour == "busy":
            self.event("DialEnd", agent, DestChannel=cust.name, DestUniqueid=cust.uniqueid, DialStatus="BUSY")
            self._hangup(cust, 17)
            return
        if behaviour == "answer":
            self._later(0.01, self._customer_answers, agent.uniqueid, cust.uniqueid)

    def customer_answers(self, number: str) -> None:
        cust = next(c for c in self.channels.values() if c.exten == number and c.state == 5)
        agent = next(c for c in self.channels.values() if c.linkedid == cust.linkedid and c is not cust)
        self._customer_answers(agent.uniqueid, cust.uniqueid)

    def _customer_answers(self, agent_uid: str, cust_uid: str) -> None:
        agent, cust = self.channels.get(agent_uid), self.channels.get(cust_uid)
        if agent is None or cust is None:
            return
        self._set_state(cust, 6)
        self.event("DialEnd", agent, DestChannel=cust.name, DestUniqueid=cust.uniqueid, DialStatus="ANSWER")
        self._bridge(agent, cust, dial=True)

    def _a_hangup(self, conn: Conn, action: dict[str, Any]) -> None:
        ch = self.find(str(action.get("Channel", "")))
        if ch is None:
            self._respond(conn, action, "Error", Message="No such channel")
            return
        self._respond(conn, action, Message="Channel Hungup")
        self._hangup(ch, int(action.get("Cause", 16)))

    def _a_redirect(self, conn: Conn, action: dict[str, Any]) -> None:
        ch = self.find(str(action.get("Channel", "")))
        if ch is None:
            self._respond(conn, action, "Error", Message="Channel does not exist")
            return
        extra = self.find(str(action.get("ExtraChannel", ""))) if action.get("ExtraChannel") else None
        if action.get("ExtraChannel") and extra is None:
            self._respond(conn, action, "Error", Message="ExtraChannel does not exist")
            return
        self._respond(conn, action, Message="Redirect successful")
        self._goto(
            ch, str(action.get("Context")), str(action.get("Exten", "s")), int(action.get("Priority", 1))
        )
        if extra is not None:  # moved in the same breath: it doesn't run on (see ``_run_on``)
            self._goto(
                extra,
                str(action.get("ExtraContext")),
                str(action.get("ExtraExten", "s")),
                int(action.get("ExtraPriority", 1)),
            )

    def _a_bridge(self, conn: Conn, action: dict[str, Any]) -> None:
        a = self.find(str(action.get("Channel1", "")))
        b = self.find(str(action.get("Channel2", "")))
        if a is None or b is None:
            self._respond(conn, action, "Error", Message="Channel1 or Channel2 does not exist")
            return
        self._respond(conn, action, Message="Channels have been bridged")
        for ch in (a, b):
            position = self._dialplan_position(ch)
            if position is not None:
                self._go_on[ch.uniqueid] = position
        a.application = b.application = "Bridge"
        self._bridge(a, b)

    def _a_setvar(self, conn: Conn, action: dict[str, Any]) -> None:
        ch = self.find(str(action.get("Channel", "")))
        if ch is None:
            self._respond(conn, action, "Error", Message="Channel not found")
            return
        name, value = str(action.get("Variable", "")), str(action.get("Value", ""))
        ch.variables[name] = value
        self.event("VarSet", ch, Variable=name, Value=value)
        self._respond(conn, action, Message="Variable Set")

    def _a_mixmonitor(self, conn: Conn, action: dict[str, Any]) -> None:
        ch = self.find(str(action.get("Channel", "")))
        if ch is None:
            self._respond(conn, action, "Error", Message="No such channel")
            return
        path = str(action.get("File", ""))
        self.recordings[ch.uniqueid] = path
        self.event("VarSet", ch, Variable="MIXMONITOR_FILENAME", Value=path)
        self._respond(conn, action, Message="Success")

    def _a_atxfer(self, conn: Conn, action: dict[str, Any]) -> None:
        ch = self.find(str(action.get("Channel", "")))
        if ch is None or not ch.bridge:
            self._respond(conn, action, "Error", Message="Channel is not in a bridge")
            return
        self._respond(conn, action, Message="Atxfer successfully queued")
        ext = str(action.get("Exten", ""))
        n = next(self._seq)
        consult = self._new(
            f"PJSIP/{ext}-{n:08x}",
            linkedid=ch.linkedid,
            cid_num=ch.cid_num,
            context="omni-internal",
            exten=ext,
        )
        consult.ext = ext
        consult.consult_of = ch.uniqueid
        self._set_state(consult, 5)
        if self.phones.get(ext, "manual") == "answer":
            self._later(0.01, self._answer, consult)

    def _complete_attended(self, transferer: Chan, target: Chan) -> None:
        bid = transferer.bridge
        peers = [self.channels[u] for u in self.bridges.get(bid, []) if u != transferer.uniqueid]
        transferee = peers[0] if peers else None
        self.event(
            "AttendedTransfer",
            None,
            Result="Success",
            OrigTransfererChannel=transferer.name,
            OrigTransfererUniqueid=transferer.uniqueid,
            OrigTransfererLinkedid=transferer.linkedid,
            OrigBridgeUniqueid=bid,
            SecondTransfererChannel=target.name,
            SecondTransfererUniqueid=target.uniqueid,
            TransfereeChannel=transferee.name if transferee else "",
            TransfereeUniqueid=transferee.uniqueid if transferee else "",
            TransferTargetChannel=target.name,
            TransferTargetUniqueid=target.uniqueid,
            DestType="Bridge",
            DestBridgeUniqueid=bid,
        )
        target.consult_of = ""
        if transferee is not None:
            self.bridges[bid].remove(transferer.uniqueid)
            transferer.bridge = ""
            self.event("BridgeLeave", transferer, BridgeUniqueid=bid, BridgeNumChannels=1)
            self._enter(target, bid)
        self._hangup(transferer, 16)

    def _a_blindtransfer(self, conn: Conn, action: dict[str, Any]) -> None:
        ch = self.find(str(action.get("Channel", "")))
        if ch is None or not ch.bridge:
            self._respond(conn, action, "Error", Message="Channel is not in a bridge")
            return
        self._respond(conn, action, Message="Transfer succeeded")
        bid = ch.bridge
        peers = [self.channels[u] for u in self.bridges.get(bid, []) if u != ch.uniqueid]
        context, exten = str(action.get("Context", "")), str(action.get("Exten", ""))
        self.event(
            "BlindTransfer",
            None,
            Result="Success",
            TransfererChannel=ch.name,
            TransfererUniqueid=ch.uniqueid,
            TransfererLinkedid=ch.linkedid,
            TransfereeChannel=peers[0].name if peers else "",
            TransfereeUniqueid=peers[0].uniqueid if peers else "",
            IsExternal="No",
            Context=context,
            Extension=exten,
        )
        for peer in peers:
            self._goto(peer, context, exten)
        self._hangup(ch, 16)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
