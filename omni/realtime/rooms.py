"""Socket.IO room names, in one place."""

from __future__ import annotations

ALL = "all"


def user(user_id: int) -> str:
    return f"user:{user_id}"


def queue(queue_id: int) -> str:
    return f"queue:{queue_id}"


def conversation(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


def exports(user_id: int) -> str:
    """One user's own report exports (progress), in every staff namespace; nobody else joins it."""
    return f"exports:{user_id}"
