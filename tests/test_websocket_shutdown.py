"""A node's stop while a client's WebSocket is closing (``omni.cli.ClosingSafeWSProtocol``)."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from omni.cli import ClosingSafeWSProtocol

UPGRADE = (
    b"GET /socket.io/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
CLIENT_CLOSE = bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])
"""A client's close frame, code 1000, masked (with a zero key) as a client's frames must be."""


async def test_a_stop_right_after_a_client_closed_its_socket_does_not_fail() -> None:
    # The server's shutdown reaches a connection whose close handshake has just completed
    # (before ``connection_lost`` took it off the server's list): with uvicorn's own protocol
    # the second close frame raised, and the app's lifespan shutdown never ran.
    received: list[dict[str, Any]] = []
    stopped: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        received.append(await receive())
        await send({"type": "websocket.accept"})
        received.append(await receive())

    class StoppedWhileClosing(ClosingSafeWSProtocol):
        def handle_close(self, event: Any) -> None:
            super().handle_close(event)
            try:
                self.shutdown()  # what ``Server.shutdown`` does for every connection it still lists
            except Exception as exc:
                stopped.set_result(exc)
            else:
                stopped.set_result(None)

    config = uvicorn.Config(app, lifespan="off", ws=StoppedWhileClosing, log_level="warning")
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: StoppedWhileClosing(config, state, app_state={}), host="127.0.0.1", port=0
    )
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(UPGRADE)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        writer.write(CLIENT_CLOSE)
        assert await asyncio.wait_for(stopped, 10) is None
        rest = await asyncio.wait_for(reader.read(), 10)  # the server's close frame, then EOF
        assert rest[:1] == b"\x88", rest
        writer.close()
        assert [m["type"] for m in received] == ["websocket.connect", "websocket.disconnect"]
    finally:
        server.close()
        await server.wait_closed()
