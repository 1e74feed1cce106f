"""The floor for ``bench/widget.py``: a bare python-socketio relay, no database, no Redis.

It speaks the same wire format as Omni's ``/widget`` and ``/operator`` namespaces, as far as
the benchmark looks at it, so one client drives both servers:

- a visitor connects to ``/widget`` (auth ignored), gets ``welcome`` with a conversation id,
  sends ``message`` {body, client_id}; the server acks {ok, conversation_id, message} and
  emits ``event`` {type: "message.created", user_id, conversation_id, data} to the operator
  the conversation belongs to (round robin over the operators connected at that moment);
- an operator connects to ``/operator`` with auth {"token": "..."}, sends ``send``
  {conversation_id, body, client_id}; the server acks and emits ``message`` to the visitor.

Run under uvicorn with the same defaults as ``omni serve`` (auto loop and WebSocket
implementation), as a separate process::

    .venv/bin/python bench/relay_baseline.py --port 8765 [--redis-url redis://...]
"""

from __future__ import annotations

import argparse
import itertools
from datetime import UTC, datetime
from typing import Any

import socketio
import uvicorn


def build_app(redis_url: str = "") -> socketio.ASGIApp:
    manager = socketio.AsyncRedisManager(redis_url, channel="omni-bench-relay") if redis_url else None
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins="*",
        logger=False,
        engineio_logger=False,
    )
    conversations = itertools.count(1)
    messages = itertools.count(1)
    seq = itertools.count(1)
    operators: list[int] = []  # operator ids, in connection order
    rr = itertools.count()
    visitor_conv: dict[str, int] = {}  # sid -> conversation id
    conv_sid: dict[int, str] = {}  # conversation id -> visitor sid
    conv_operator: dict[int, int] = {}  # conversation id -> operator id

    def message(conv_id: int, direction: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": next(messages),
            "conversation_id": conv_id,
            "direction": direction,
            "body": str(data.get("body", "")),
            "attachments": [],
            "client_id": data.get("client_id"),
            "delivery": "sent" if direction == "out" else "stored",
            "created_at": datetime.now(UTC).isoformat(),
        }

    @sio.on("connect", namespace="/operator")  # type: ignore[untyped-decorator]  # untyped library
    async def operator_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = str(auth.get("token", "")) if isinstance(auth, dict) else ""
        op_id = int(token.rsplit("-", 1)[-1]) if token.rsplit("-", 1)[-1].isdigit() else len(operators) + 1
        if op_id not in operators:
            operators.append(op_id)
        await sio.enter_room(sid, f"user:{op_id}", namespace="/operator")

    @sio.on("send", namespace="/operator")  # type: ignore[untyped-decorator]  # untyped library
    async def operator_send(sid: str, data: Any) -> dict[str, Any]:
        conv_id = int(data["conversation_id"])
        target = conv_sid.get(conv_id)
        if target is None:
            return {"ok": False, "error": "not_found"}
        msg = message(conv_id, "out", data)
        await sio.emit("message", msg, to=target, namespace="/widget")
        return {"ok": True, "message": msg}

    @sio.on("connect", namespace="/widget")  # type: ignore[untyped-decorator]  # untyped library
    async def widget_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        conv_id = next(conversations)
        visitor_conv[sid] = conv_id
        conv_sid[conv_id] = sid
        if operators:
            conv_operator[conv_id] = operators[next(rr) % len(operators)]
        await sio.emit(
            "welcome",
            {
                "visitor": f"v-{conv_id}",
                "conversation_id": None,
                "messages": [],
                "config": {},
                "online": True,
            },
            to=sid,
            namespace="/widget",
        )

    @sio.on("disconnect", namespace="/widget")  # type: ignore[untyped-decorator]  # untyped library
    async def widget_disconnect(sid: str, reason: Any = None) -> None:
        conv_id = visitor_conv.pop(sid, None)
        if conv_id is not None:
            conv_sid.pop(conv_id, None)
            conv_operator.pop(conv_id, None)

    @sio.on("message", namespace="/widget")  # type: ignore[untyped-decorator]  # untyped library
    async def widget_message(sid: str, data: Any) -> dict[str, Any]:
        conv_id = visitor_conv[sid]
        msg = message(conv_id, "in", data)
        op_id = conv_operator.get(conv_id)
        if op_id is None and operators:
            op_id = conv_operator[conv_id] = operators[next(rr) % len(operators)]
        if op_id is not None:
            await sio.emit(
                "event",
                {
                    "seq": next(seq),
                    "type": "message.created",
                    "at": msg["created_at"],
                    "conversation_id": conv_id,
                    "queue_id": 1,
                    "user_id": op_id,
                    "data": msg,
                },
                to=f"user:{op_id}",
                namespace="/operator",
            )
        return {"ok": True, "duplicate": False, "conversation_id": conv_id, "message": msg, "position": 0}

    return socketio.ASGIApp(sio, socketio_path="socket.io")


def main() -> None:
    p = argparse.ArgumentParser(description="bare python-socketio relay (the floor of bench/widget.py)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--redis-url", default="", help="use AsyncRedisManager like Omni does (default: none)")
    args = p.parse_args()
    uvicorn.run(build_app(args.redis_url), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
