"""Socket.IO room names, in one place."""

from __future__ import annotations

ALL = "all"


def user(user_id: int) -> str:
    return f"user:{user_id}"


def queue(queue_id: int) -> str:
    return f"queue:{queue_id}"


def conversation(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"
