"""Masked live fan-out: staff sockets whose role lacks ``grants.PII_VIEW`` get every event
with the phones and e-mails in it masked (``omni.domain.masking.mask_payload``: contact
fields, the text of customers' messages, bot variables).

Per reader, without a query per socket:

- Every event room (``all``, ``queue:N``, ``user:N``, ``conversation:N``) has a *masked twin*,
  ``masked:<room>``. A staff socket joins one of the two, by its role's ``PII_VIEW`` read
  once at connect (``masked`` in its session).
- The emitter masks each event once and sends the full wire to the plain rooms and the
  masked wire to the twins: two emits per namespace, each encoded once by python-socketio,
  whatever the number of sockets. An event with nothing to mask (most: presence, statuses,
  SLA) is one emit to both room lists, as before.
- Over Redis (``FanoutManager``) an emit carries its room list, so every node delivers each
  copy to its own sockets of that twin and never masks again; the outbox replay
  (``LiveFanout``) emits through here as the relay does.
- When an admin changes a role's grants (``grants.changed``, emitted in the same
  transaction), every node moves its own sockets of that role between the twins as the
  event passes (``follow_grants``, called where ``queue.members_changed`` moves sockets);
  events committed before the change but delivered after it go to the new twin.

Customers' channels (widget, Telegram) never pass through here: their payloads are not masked.
"""

from __future__ import annotations

from typing import Any

import socketio

from omni.domain.masking import mask_payload
from omni.realtime import rooms

MASKED = "masked:"
GRANTS_CHANGED = "grants.changed"
PII_VIEW = "pii.view"  # omni.domain.grants.PII_VIEW, without importing the domain's grants here
_EVENT_ROOM_PREFIXES = ("user:", "queue:", "conversation:")


def twin(room: str, masked: bool) -> str:
    """``room`` as a socket with (``masked=False``) or without ``PII_VIEW`` joins it."""
    return MASKED + room if masked else room


def plain(room: str) -> str:
    return room[len(MASKED) :] if room.startswith(MASKED) else room


def is_event_room(room: object) -> bool:
    if not isinstance(room, str):
        return False
    name = plain(room)
    return name == rooms.ALL or name.startswith(_EVENT_ROOM_PREFIXES)


def masked_wire(wire: dict[str, Any]) -> dict[str, Any] | None:
    """The event as a masked reader gets it, or ``None`` when it has nothing to mask."""
    masked: dict[str, Any] = mask_payload(wire)
    return None if masked == wire else masked


async def emit_event(
    sio: socketio.AsyncServer,
    namespace: str,
    wire: dict[str, Any],
    masked: dict[str, Any] | None,
    targets: list[str],
    **kwargs: Any,
) -> None:
    """One event to ``targets`` (plain room names) and their masked twins."""
    twins = [MASKED + r for r in targets]
    if masked is None:
        await sio.emit("event", wire, to=targets + twins, namespace=namespace, **kwargs)
        return
    await sio.emit("event", wire, to=targets, namespace=namespace, **kwargs)
    await sio.emit("event", masked, to=twins, namespace=namespace, **kwargs)


async def follow_grants(server: socketio.AsyncServer, namespace: str, wire: Any) -> None:
    """On ``grants.changed``: this node's sockets of that role whose ``PII_VIEW`` changed move
    to the other twin of every event room they are in."""
    if not isinstance(wire, dict) or wire.get("type") != GRANTS_CHANGED:
        return
    data = wire.get("data") or {}
    role, held = data.get("role"), set(data.get("grants") or ())
    should_mask = PII_VIEW not in held
    manager = server.manager
    for sid, _eio in list(manager.get_participants(namespace, None)):
        try:
            sess = await server.get_session(sid, namespace=namespace)
        except KeyError:  # disconnected meanwhile
            continue
        who = sess.get("who")
        if who is None or str(getattr(who.role, "value", who.role)) != role:
            continue
        if bool(sess.get("masked")) == should_mask:
            continue
        for room in list(manager.get_rooms(sid, namespace)):
            if is_event_room(room):
                await server.leave_room(sid, room, namespace=namespace)
                await server.enter_room(sid, twin(plain(room), should_mask), namespace=namespace)
        sess["masked"] = should_mask
        await server.save_session(sid, sess, namespace=namespace)
