"""Live sockets follow queue-membership changes (``queue.members_changed``).

An operator's ``/operator`` sockets join ``queue:{id}`` for the queues they are a member of
when they connect. When an admin changes a queue's members, every node moves its *own*
sockets (room membership is local to a node): the sockets of a user who joined enter the
room before the event is delivered, so the event itself (and every later one of the queue)
reaches them and the page reloads its lists; the sockets of a user who left receive the
event through the room, then leave it. Supervisors and admins see queues by scope, not by
membership, so only operators' sockets move.

Called wherever a node delivers an ``event`` to its local sockets: the relay's sink (in-process
manager), the Redis listener (``FanoutManager._handle_emit``) and the outbox replay.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

from omni.db import models as m
from omni.domain.auth import Principal
from omni.realtime import rooms

log = logging.getLogger(__name__)

MEMBERS_CHANGED = "queue.members_changed"
OPERATOR_NAMESPACE = "/operator"


def _local_sids(server: socketio.AsyncServer, namespace: str, room: str) -> list[str]:
    return [sid for sid, _eio in server.manager.get_participants(namespace, room)]


async def _operator_of(server: socketio.AsyncServer, sid: str, namespace: str) -> int | None:
    try:
        sess = await server.get_session(sid, namespace=namespace)
    except KeyError:  # disconnected meanwhile
        return None
    who: Principal | None = sess.get("who")
    return who.id if who is not None and who.role == m.Role.OPERATOR else None


async def follow_queue_members(
    server: socketio.AsyncServer, namespace: str, wire: Any
) -> list[tuple[str, str]]:
    """Join the sockets of the queue's new members to its room; returns the ``(sid, room)``
    pairs to leave once the event has been delivered (see ``leave``)."""
    if namespace != OPERATOR_NAMESPACE or not isinstance(wire, dict) or wire.get("type") != MEMBERS_CHANGED:
        return []
    data = wire.get("data") or {}
    queue_id, members = data.get("queue_id"), set(data.get("user_ids") or ())
    if not isinstance(queue_id, int):
        return []
    room = rooms.queue(queue_id)
    inside = set(_local_sids(server, namespace, room))
    for user_id in members:
        for sid in _local_sids(server, namespace, rooms.user(user_id)):
            if sid not in inside and await _operator_of(server, sid, namespace) == user_id:
                await server.enter_room(sid, room, namespace=namespace)
    leaving: list[tuple[str, str]] = []
    for sid in inside:
        user_id = await _operator_of(server, sid, namespace)
        if user_id is not None and user_id not in members:
            leaving.append((sid, room))
    return leaving


async def leave(server: socketio.AsyncServer, namespace: str, leaving: list[tuple[str, str]]) -> None:
    for sid, room in leaving:
        await server.leave_room(sid, room, namespace=namespace)
