"""The tests' live server owns its port from the moment it is made.

On the shared CI machine a run failed with 13 errors from one "address already in use": the
live server picked a free port, another test run bound it before uvicorn did, and uvicorn's
``SystemExit`` broke the event loop of every later test on that pytest worker."""

from __future__ import annotations

import errno
import socket

import httpx

from omni.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import HTTP_TIMEOUT


async def test_another_process_cannot_take_a_live_servers_port_before_it_starts(settings: Settings) -> None:
    server = LiveServer(settings)
    intruder = socket.socket()
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        try:
            intruder.bind(("127.0.0.1", server.port))
            intruder.listen()
        except OSError as exc:
            assert exc.errno == errno.EADDRINUSE
        else:
            raise AssertionError(f"port {server.port} was free for anyone until the server started")
    finally:
        intruder.close()
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT) as client:
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await server.stop()
