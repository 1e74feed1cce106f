"""The AMI link: panoramisk's ``Manager`` with login, backoff and a resync hook.

All wire code for Asterisk lives here. panoramisk reconnects after a fixed delay; this wrapper
doubles the delay on every failed attempt (``reconnect_min_seconds`` … ``reconnect_max_seconds``)
and resets it after a successful login. A refused login is logged as a configuration error and
retried at the slowest pace. Every time a login succeeds ``on_login`` runs (the adapter then
resynchronises its calls with ``CoreShowChannels``); events are handed to ``on_event`` in
arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from panoramisk import Manager

from omni.channels import ChannelAuthFailed, ChannelNotReady
from omni.settings import VoiceSettings

log = logging.getLogger(__name__)

__all__ = ["AmiLink"]

EventHandler = Callable[[Mapping[str, Any]], None]
LoginHandler = Callable[[], Awaitable[None]]


class _Manager(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's manager with a growing reconnect delay and login bookkeeping."""

    link: AmiLink

    def connection_made(self, f: Any) -> None:
        if f.exception() is not None:
            self.link._failed("connect", f.exception())
        super().connection_made(f)

    def login(self, future: Any) -> bool:
        ok: bool = super().login(future)
        if not ok:
            self.link._auth_failed()
        return ok

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.link._closing:
            return None  # a reconnect timer that fired after ``stop``
        return super().connect(*args, **kwargs)

    def connection_lost(self, exc: Any) -> None:
        self.link._lost()
        if not self.link._closing:  # a deliberate close must not reconnect
            super().connection_lost(exc)


class AmiLink:
    """One AMI connection for the node. ``send`` raises ``ChannelNotReady`` while it is down."""

    def __init__(self, settings: VoiceSettings, on_event: EventHandler, on_login: LoginHandler) -> None:
        self.settings = settings
        self.on_event = on_event
        self.on_login = on_login
        self.connected = asyncio.Event()
        self.logins = 0
        self.auth_failed = False
        self._delay = settings.reconnect_min_seconds
        self._manager: _Manager | None = None
        self._login_task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._closing = False
        manager = _Manager(
            host=self.settings.ami_host,
            port=self.settings.ami_port,
            username=self.settings.ami_username,
            secret=self.settings.ami_secret,
            ping_delay=10,
            ping_interval=10,
            reconnect_timeout=self.settings.reconnect_min_seconds,
            loop=asyncio.get_running_loop(),
            forgetable_actions=("ping", "login", "coreshowchannels", "queuestatus"),
            on_login=self._logged_in,
        )
        manager.link = self
        manager.reconnect_timeout = self._delay  # panoramisk casts to int; keep sub-second delays
        manager.register_event("*", self._dispatch)
        self._manager = manager
        with contextlib.suppress(OSError):  # not up yet: panoramisk retries on its own timer
            await manager.connect()

    async def stop(self) -> None:
        self._closing = True
        if self._manager is not None:
            self._manager.close()
            self._manager = None
        if self._login_task is not None:
            self._login_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._login_task
        self.connected.clear()

    # --- callbacks from the manager ----------------------------------------------------

    def _dispatch(self, _manager: Any, message: Mapping[str, Any]) -> None:
        try:
            self.on_event(message)
        except Exception:
            log.exception("voice: AMI event %s not handled", message.get("Event"))

    def _logged_in(self, _manager: Any) -> None:
        self.logins += 1
        self.auth_failed = False
        self._delay = self.settings.reconnect_min_seconds
        if self._manager is not None:
            self._manager.reconnect_timeout = self._delay
        log.info("voice: AMI login to %s:%s accepted", self.settings.ami_host, self.settings.ami_port)
        self._login_task = asyncio.get_running_loop().create_task(self._after_login())

    async def _after_login(self) -> None:
        try:
            await self.on_login()
        except Exception:
            log.exception("voice: resync after AMI login failed")
        self.connected.set()

    def _backoff(self) -> None:
        self._delay = min(self.settings.reconnect_max_seconds, max(self._delay, 0.05) * 2)
        if self._manager is not None:
            self._manager.reconnect_timeout = self._delay

    def _failed(self, what: str, exc: BaseException | None) -> None:
        log.warning("voice: AMI %s failed (%s); retrying in %.1fs", what, exc, self._delay)
        self._backoff()

    def _auth_failed(self) -> None:
        self.auth_failed = True
        self._delay = self.settings.reconnect_max_seconds
        if self._manager is not None:
            self._manager.reconnect_timeout = self._delay
        log.error(
            "voice: AMI login refused for user %r: check OMNI_VOICE_AMI_USERNAME / OMNI_VOICE_AMI_SECRET",
            self.settings.ami_username,
        )

    def _lost(self) -> None:
        self.connected.clear()
        if not self._closing:
            log.warning("voice: AMI connection lost; reconnecting in %.1fs", self._delay)
            self._backoff()

    # --- actions ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._manager is not None and bool(self._manager.authenticated) and self.connected.is_set()

    def _require(self) -> _Manager:
        if self.auth_failed:
            raise ChannelAuthFailed("Asterisk refused the AMI login")
        if self._manager is None or not self._manager.authenticated or self._manager.protocol is None:
            raise ChannelNotReady("the AMI link to Asterisk is down")
        return self._manager

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
