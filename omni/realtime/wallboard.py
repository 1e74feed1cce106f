"""``/wallboard``: the wall screen's live numbers, for a wallboard token instead of a user.

A namespace of its own rather than a room of ``/supervisor``: the audience has no user, no
role and no session cookie (a TV opened with a link), so it authenticates differently, and it
must never receive domain events (they carry conversations and customers). ``socket_sink``
fans events out only to ``omni.realtime.NAMESPACES``, which does not include this one; a
wallboard receives nothing but ``board`` payloads built by ``omni.domain.wallboard.board`` and
typed by :class:`Board` (names and numbers only).

* connect with ``auth={"token": "<wallboard token>"}``; an unknown, revoked or expired token is
  refused (``{"error": "forbidden"}``).
* ``board`` {} → ``{ok, board}``: the numbers now (the page asks on every (re)connect).
* pushed ``board`` (a :class:`Board`): after any committed event on this node (at most every
  ``MIN_GAP_SECONDS``) and every ``CHECK_SECONDS`` (events committed on another node, the
  wall clock, the day's reset).
* pushed ``revoked`` {} then a server-side disconnect: the token was revoked or expired; the
  check runs every ``CHECK_SECONDS`` on every node, so a revocation reaches every screen within
  that time wherever it was made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import socketio
from socketio.exceptions import ConnectionRefusedError as Refused

from omni.aio import wait_set
from omni.db import models as m
from omni.domain import wallboard
from omni.domain.errors import DomainError, PermissionDenied
from omni.domain.events import DomainEvent
from omni.i18n import pick_language
from omni.realtime import _err, _ok
from omni.realtime.payloads import Empty, decode
from omni.services import Services

log = logging.getLogger(__name__)

NAMESPACE = "/wallboard"


def room(token_id: int) -> str:
    return f"wallboard:{token_id}"


class WaitThresholds(msgspec.Struct):
    amber: int
    red: int


class BoardQueue(msgspec.Struct, kw_only=True):
    """One queue's tile. ``*_level`` are ``green`` / ``amber`` / ``red`` (SL: also ``none``)."""

    id: int
    name: str
    sla_seconds: int
    waiting: int
    longest_wait_seconds: float
    longest_wait_since: str | None
    longest_wait_level: str
    thresholds: WaitThresholds
    in_service: int
    available: int
    answered_today: int
    abandoned_today: int
    service_level_pct: float | None
    service_level_level: str
    asa_seconds: float | None


class Board(msgspec.Struct, kw_only=True):
    """Everything a wallboard receives: no conversation, contact or operator appears here."""

    name: str
    now: str
    day_start: str
    timezone: str
    sl_target_pct: int
    queues: list[BoardQueue]


def board_payload(data: dict[str, Any]) -> dict[str, Any]:
    """The domain's board through :class:`Board`: a key the struct lacks never reaches a screen."""
    payload: dict[str, Any] = msgspec.to_builtins(msgspec.convert(data, Board))
    return payload


class WallboardNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # untyped base class
    CHECK_SECONDS = 2.0
    """How often each node rechecks its screens' tokens and resends their numbers."""
    MIN_GAP_SECONDS = 0.5
    """At most this often after events (a burst of events makes one recomputation)."""

    def __init__(self, namespace: str, services: Services) -> None:
        super().__init__(namespace)
        self.services = services
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def on_connect(self, sid: str, environ: dict[str, Any], auth_data: Any = None) -> None:
        secret = auth_data.get("token") if isinstance(auth_data, dict) else None
        async with self.services.db.transaction() as session:
            row = await wallboard.token_for(session, str(secret or ""))
            token_id = row.id if row is not None else None
        if token_id is None:
            raise Refused("wallboard token unknown, revoked or expired", {"error": "forbidden"})
        lang = pick_language(None, environ.get("HTTP_ACCEPT_LANGUAGE", ""))
        await self.save_session(sid, {"token_id": token_id, "lang": lang})
        await self.enter_room(sid, room(token_id))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="wallboard-push")

    async def on_board(self, sid: str, data: Any = None) -> dict[str, Any]:
        sess = await self.get_session(sid)
        try:
            decode(data, Empty)
            async with self.services.db.transaction() as session:
                row = await session.get(m.WallboardToken, sess["token_id"])
                if row is None or not wallboard.is_live(row, datetime.now(UTC)):
                    raise PermissionDenied("this wallboard link was revoked or has expired")
                return _ok(board=board_payload(await wallboard.board(session, row)))
        except DomainError as exc:
            return _err(exc, sess.get("lang", "en"))

    async def on_events(self, events: Sequence[DomainEvent]) -> None:
        """Relay sink: something changed; the loop recomputes soon (if any screen is open)."""
        if events:
            self._dirty.set()

    def _local_tokens(self) -> dict[int, list[str]]:
        """Token id → this node's sockets showing it."""
        found: dict[int, list[str]] = {}
        manager = self.server.manager
        for name in list(manager.rooms.get(self.namespace, {})):
            if isinstance(name, str) and name.startswith("wallboard:"):
                sids = [sid for sid, _ in manager.get_participants(self.namespace, name)]
                if sids:
                    found[int(name.split(":", 1)[1])] = sids
        return found

    async def _run(self) -> None:
        """Push numbers and drop dead tokens while this node has screens; ends with the last."""
        while True:
            await wait_set(self._dirty, self.CHECK_SECONDS)
            self._dirty.clear()
            screens = self._local_tokens()
            if not screens:
                return
            try:
                await self._push(screens)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("wallboard push failed")
            await asyncio.sleep(self.MIN_GAP_SECONDS)

    async def _push(self, screens: dict[int, list[str]]) -> None:
        now = datetime.now(UTC)
        boards: dict[int, dict[str, Any]] = {}
        async with self.services.db.transaction() as session:
            live = await wallboard.live_ids(session, set(screens), now)
            for token_id in sorted(live):
                row = await session.get(m.WallboardToken, token_id)
                if row is not None:
                    boards[token_id] = board_payload(await wallboard.board(session, row, now))
        for token_id, sids in screens.items():
            for sid in sids:
                if token_id in boards:
                    await self.emit("board", boards[token_id], to=sid, ignore_queue=True)
                else:
                    await self.emit("revoked", {}, to=sid, ignore_queue=True)
                    await self.disconnect(sid)


def register(sio: socketio.AsyncServer, services: Services) -> WallboardNamespace:
    namespace = WallboardNamespace(NAMESPACE, services)
    sio.register_namespace(namespace)
    services.relay.sinks.append(namespace.on_events)
    return namespace
