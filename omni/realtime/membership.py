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
from omni.realtime import pii, rooms

log = logging.getLogger(__name__)

MEMBERS_CHANGED = "queue.members_changed"
OPERATOR_NAMESPACE = "/operator"


def _local_sids(server: socketio.AsyncServer, namespace: str, room: str) -> list[str]:
    """This node's sockets in ``room`` or its masked twin (``omni.realtime.pii``)."""
    return [
        sid
        for name in (room, pii.twin(room, True))
        for sid, _eio in server.manager.get_participants(namespace, name)
    ]


async def _operator_of(server: socketio.AsyncServer, sid: str, namespace: str) -> tuple[int | None, bool]:
    """The operator behind a socket (``None`` for other roles) and whether it reads masked."""
    try:
        sess = await server.get_session(sid, namespace=namespace)
    except KeyError:  # disconnected meanwhile
        return None, False
    who: Principal | None = sess.get("who")
    operator = who.id if who is not None and who.role == m.Role.OPERATOR else None
    return operator, bool(sess.get("masked"))


async def follow_queue_members(
    server: socketio.AsyncServer, namespace: str, wire: Any
) -> list[tuple[str, str]]:
    """Join the sockets of the queue's new members to its room; returns the ``(sid, room)``
    pairs to leave once the event has been delivered (see ``leave``). Also moves sockets
    between masked and plain rooms on ``grants.changed`` (``pii.follow_grants``)."""
    await pii.follow_grants(server, namespace, wire)
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
            operator, masked = await _operator_of(server, sid, namespace)
            if sid not in inside and operator == user_id:
                await server.enter_room(sid, pii.twin(room, masked), namespace=namespace)
    leaving: list[tuple[str, str]] = []
    for sid in inside:
        operator, masked = await _operator_of(server, sid, namespace)
        if operator is not None and operator not in members:
            leaving.append((sid, pii.twin(room, masked)))
    return leaving


async def leave(server: socketio.AsyncServer, namespace: str, leaving: list[tuple[str, str]]) -> None:
    for sid, room in leaving:
        await server.leave_room(sid, room, namespace=namespace)
