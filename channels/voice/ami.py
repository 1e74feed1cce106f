"""The AMI link: one supervised connection to Asterisk, with login, backoff, pings and a resync hook.

All wire code for Asterisk lives here. panoramisk parses and frames the protocol (its
``AMIProtocol``, ``Action`` and ``Message``) and dispatches events; the connection itself is
supervised here, because panoramisk 1.4's own connect/reconnect path can stop for good:

* its protocol learns its manager (``factory``) only in the manager's connect callback, which
  runs one loop turn after the connection is made. A peer that accepts and at once closes (a
  proxy or a published Docker port in front of a stopped Asterisk) reports the loss before that:
  ``AttributeError: 'NoneType' object has no attribute 'connection_lost'``, so no reconnect is
  ever scheduled, the manager then writes ``Login`` into the dead transport and its pings fail
  every 10 s forever;
* a ``Login`` that is never answered (the connection closed first) leaves the manager
  unauthenticated on a live timer with nothing that tries again;
* it reconnects on ``reconnect_timeout`` read when the timer is armed and cast to ``int``, so
  any backoff bookkeeping around it logs one delay and waits another.

One task (``_supervise``) therefore owns the link: connect (with a timeout), log in (with a
timeout), ping every ``ping_interval`` seconds while logged in (an unanswered ping closes the
link), and after any failure or loss wait and start again. The wait doubles from
``reconnect_min_seconds`` to ``reconnect_max_seconds`` and is reset by a successful login; a
refused login is logged as a configuration error and retried at the slowest pace. The delay a
log line announces is the delay slept (``delays`` keeps them, oldest first). Every time a
login succeeds ``on_login`` runs (the adapter then resynchronises its calls with
``CoreShowChannels``); events are handed to ``on_event`` in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from omni.aio import stop_tasks
from omni.channels import ChannelAuthFailed, ChannelNotReady
from omni.settings import VoiceSettings

log = logging.getLogger(__name__)

__all__ = ["AmiLink"]

EventHandler = Callable[[Mapping[str, Any]], None]
LoginHandler = Callable[[], Awaitable[None]]

EVENT_MASK = "call,user,system"
"""The event classes the login subscribes to. Everything the adapter reads is ``call``
(Newchannel, Newstate, Dial*, Bridge*, Hold, MusicOnHoldStart, Hangup, the transfers,
OriginateResponse) or ``user`` (the dialplan's ``OmniEnqueue``/``OmniAmd``), plus ``system``
(FullyBooted, Shutdown). Asterisk then never sends the bulk of a busy PBX's stream —
``dialplan`` (a ``Newexten`` per priority, a ``VarSet`` per variable set), ``reporting``
(RTCP every few seconds per channel), ``cdr``/``cel``, ``dtmf``, ``agent`` —, which would
otherwise be parsed only to be dropped. Responses to actions (``CoreShowChannel`` items) are
not events of a class and always come."""

PING_INTERVAL_SECONDS = 10.0
"""How often a logged-in link proves Asterisk still answers (a half-open TCP link is noticed)."""


class _Protocol(AMIProtocol):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's protocol bound to its manager from the first byte, with a ``lost`` future.

    ``AMIProtocol.connection_made`` clears ``factory``; it is set again here, in the same
    call, so a connection closed right after it was accepted reaches the manager instead of
    raising ``AttributeError`` inside asyncio. ``lost`` resolves whenever the transport goes
    away (peer close, ``Shutdown`` event, our own close), which is what the supervisor awaits.
    """

    def __init__(self, manager: _Manager) -> None:
        super().__init__()
        self._manager = manager
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        manager = self._manager
        self.factory = manager
        self.log = manager.log
        self.config = manager.config
        self.encoding = manager.config["encoding"]

    def connection_lost(self, exc: Any) -> None:
        try:
            super().connection_lost(exc)  # requeues unanswered actions, tells the manager
        finally:
            if not self.lost.done():
                self.lost.set_result(exc if isinstance(exc, BaseException) else None)

    def close(self) -> None:
        super().close()
        # A close of our own is final at once (asyncio reports it on a later turn, if at all).
        if not self.lost.done():
            self.lost.set_result(None)


class _Manager(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's manager used for framing and dispatch only: it never connects or reconnects
    by itself (``AmiLink`` does), so its own timers can't leave a dead link behind."""

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("AmiLink owns the AMI connection; Manager.connect is not used")

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        self.authenticated = False


class AmiLink:
    """One AMI connection for the node. ``send`` raises ``ChannelNotReady`` while it is down."""

    def __init__(
        self,
        settings: VoiceSettings,
        on_event: EventHandler,
        on_login: LoginHandler,
        *,
        ping_interval: float = PING_INTERVAL_SECONDS,
    ) -> None:
        self.settings = settings
        self.on_event = on_event
        self.on_login = on_login
        self.ping_interval = ping_interval
        self.connected = asyncio.Event()
        self.logins = 0
        self.auth_failed = False
        self.problem = "not started"
        """Why the link is not up (for ``/readyz`` and the log); ``""`` while it is."""
        self.on_state: Callable[[bool, str], None] | None = None
        """Told ``(True, "")`` when the link is usable (logged in and resynchronised) and
        ``(False, why)`` when it is not (lost, stopped); the adapter reports it to the core."""
        self.delays: deque[float] = deque(maxlen=100)
        """The reconnect delays actually slept, oldest first (what the log announced)."""
        self._delay = settings.reconnect_min_seconds
        self._manager: _Manager | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._login_task: asyncio.Task[None] | None = None
        self._session = 0
        self._closing = False

    async def start(self) -> None:
        """Start supervising the link; returns at once (Asterisk may come up later)."""
        self._closing = False
        self._delay = self.settings.reconnect_min_seconds
        manager = _Manager(
            host=self.settings.ami_host,
            port=self.settings.ami_port,
            username=self.settings.ami_username,
            secret=self.settings.ami_secret,
            loop=asyncio.get_running_loop(),
            forgetable_actions=("ping", "login", "coreshowchannels", "queuestatus"),
        )
        manager.register_event("*", self._dispatch)
        self._manager = manager
        self.problem = "connecting"
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="voice-ami-link")

    async def stop(self) -> None:
        self._closing = True
        await stop_tasks(self._supervisor, self._login_task)
        self._supervisor = self._login_task = None
        if self._manager is not None:
            self._manager.close()
            self._manager = None
        self.connected.clear()
        self.problem = "stopped"
        self._tell(False)

    # --- the supervisor ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        while not self._closing:
            try:
                await self._run_session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not end supervision: log it and go on
                log.exception("voice: AMI session failed")
                self.problem = f"session failed: {exc!r}"
            delay = self._next_delay()
            log.warning(
                "voice: AMI link to %s down (%s); retrying in %.2fs", self._where, self.problem, delay
            )
            self.delays.append(delay)
            await asyncio.sleep(delay)

    def _next_delay(self) -> float:
        """The wait before the next attempt; the one after it doubles (up to the maximum)."""
        if self.auth_failed:
            self._delay = self.settings.reconnect_max_seconds
        delay = self._delay
        self._delay = min(self.settings.reconnect_max_seconds, max(delay, 0.05) * 2)
        return delay

    @property
    def _where(self) -> str:
        return f"{self.settings.ami_host}:{self.settings.ami_port}"

    async def _run_session(self) -> None:
        """One connection from connect to loss; returns when it is over (``problem`` says why)."""
        manager = self._manager
        assert manager is not None
        loop = asyncio.get_running_loop()
        timeout = self.settings.action_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(manager), self.settings.ami_host, self.settings.ami_port
                )
        except (OSError, TimeoutError) as exc:
            self.problem = f"connect failed: {type(exc).__name__}: {exc}".rstrip(": ")
            return
        assert isinstance(protocol, _Protocol)
        self._session += 1
        manager.protocol = protocol
        manager.responses = protocol.responses
        manager.encoding = protocol.encoding
        manager._connected = True
        manager.authenticated = False
        try:
            if not await self._login(manager, protocol):
                return
            await self._keep_alive(protocol)
        finally:
            self.connected.clear()
            self._tell(False)
            manager.authenticated = False
            protocol.close()
            if manager.protocol is protocol:
                manager.protocol = None

    async def _login(self, manager: _Manager, protocol: _Protocol) -> bool:
        if protocol.lost.done():  # accepted and closed at once (uvloop reports it this early)
            self.problem = "the connection was closed before Asterisk answered the login"
            return False
        answer = protocol.send(
            {
                "Action": "Login",
                "Username": self.settings.ami_username,
                "Secret": self.settings.ami_secret,
                "Events": EVENT_MASK,
            }
        )
        await asyncio.wait(
            {answer, protocol.lost},
            timeout=self.settings.action_timeout_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not answer.done():
            answer.cancel()
            self.problem = (
                "the connection was closed before Asterisk answered the login"
                if protocol.lost.done()
                else "Asterisk did not answer the login"
            )
            return False
        if not answer.result().success:
            self.auth_failed = True
            self.problem = "login refused"
            log.error(
                "voice: AMI login refused for user %r: check OMNI_VOICE_AMI_USERNAME / OMNI_VOICE_AMI_SECRET",
                self.settings.ami_username,
            )
            return False
        manager.authenticated = True
        self._logged_in()
        return True

    async def _keep_alive(self, protocol: _Protocol) -> None:
        """Wait for the loss of the link, pinging meanwhile; an unanswered ping ends it."""
        while True:
            done, _ = await asyncio.wait({protocol.lost}, timeout=self.ping_interval)
            if done:
                exc = protocol.lost.result()
                self.problem = f"connection lost ({exc})" if exc else "connection lost"
                return
            pong = protocol.send({"Action": "Ping"})
            await asyncio.wait(
                {pong, protocol.lost},
                timeout=self.settings.action_timeout_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if protocol.lost.done():
                continue  # reported on the next turn
            if not pong.done():
                pong.cancel()
                self.problem = f"no answer to a ping within {self.settings.action_timeout_seconds:g}s"
                return

    # --- callbacks ----------------------------------------------------------------------------

    def _dispatch(self, _manager: Any, message: Mapping[str, Any]) -> None:
        try:
            self.on_event(message)
        except Exception:
            log.exception("voice: AMI event %s not handled", message.get("Event"))

    def _logged_in(self) -> None:
        self.logins += 1
        self.auth_failed = False
        self._delay = self.settings.reconnect_min_seconds
        self.problem = "logged in, resynchronising calls"
        log.info("voice: AMI login to %s accepted", self._where)
        previous = self._login_task
        self._login_task = asyncio.get_running_loop().create_task(self._after_login(self._session, previous))

    async def _after_login(self, session: int, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            # A resync of an earlier session still running: never run two at once.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(previous)
        try:
            await self.on_login()
        except Exception:
            log.exception("voice: resync after AMI login failed")
        manager = self._manager
        if session == self._session and manager is not None and manager.authenticated:
            self.problem = ""
            self.connected.set()
            self._tell(True)

    def _tell(self, up: bool) -> None:
        if self.on_state is not None:
            try:
                self.on_state(up, "" if up else self.problem)
            except Exception:
                log.exception("voice: reporting the AMI link state failed")

    # --- actions --------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._manager is not None and bool(self._manager.authenticated) and self.connected.is_set()

    def readiness(self) -> str:
        """``"ok"`` or why the link is down, for ``/readyz``."""
        if self.ready:
            return "ok"
        if self.auth_failed:
            return "error: Asterisk refused the AMI login"
        return f"error: AMI link to {self._where} is down ({self.problem})"

    def _require(self) -> _Manager:
        if self.auth_failed:
            raise ChannelAuthFailed("Asterisk refused the AMI login")
        manager = self._manager
        if manager is None or not manager.authenticated or manager.protocol is None:
            raise ChannelNotReady("the AMI link to Asterisk is down")
        return manager

    async def send(self, action: dict[str, Any]) -> Any:
        """Send an action and wait for its response (a list for event-list actions)."""
        manager = self._require()
        _guard(action)
        future = manager.send_action(action)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.settings.action_timeout_seconds)
        except TimeoutError as exc:
            raise ChannelNotReady(f"AMI action {action.get('Action')} got no answer") from exc

    def fire(self, action: dict[str, Any], done: Callable[[Any], None] | None = None) -> None:
        """Send without waiting (``Originate`` with ``Async: true`` answers when the phone does)."""
        manager = self._require()
        _guard(action)
        future: asyncio.Future[Any] = manager.send_action(action)

        def finished(f: asyncio.Future[Any]) -> None:
            if f.cancelled():
                return
            if f.exception() is not None:
                log.warning("voice: AMI %s failed: %s", action.get("Action"), f.exception())
                return
            if done is not None:
                try:
                    done(f.result())
                except Exception:
                    log.exception("voice: handling the %s response failed", action.get("Action"))

        future.add_done_callback(finished)


def _guard(action: dict[str, Any]) -> None:
    """panoramisk 1.4 reads ``action['async']`` for any response ending in "successfully
    queued" (Atxfer answers "Atxfer successfully queued") and drops the connection with a
    KeyError when the header is absent. Asterisk ignores the extra header."""
    action.setdefault("Async", "false")
