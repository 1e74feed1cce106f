"""No node is special: two real ``omni serve`` nodes with voice and a polling Telegram bot
enabled on both. The first node holds the AMI link (``voice:ami``) and the bot's poller
(``telegram:poll:<bot id>``); when it is SIGKILLed the second takes both over, resynchronises
the calls in progress and polls on from Telegram's cursor: no update lost or stored twice.

Against the loopback AMI emulator and Bot API emulator, both run by this test; the nodes are
separate processes on one PostgreSQL + Redis, as in ``test_race``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from omni.db import Database
from omni.db import models as m
from omni.domain import inboxes
from tests import factories as f
from tests.channels.telegram.emulator import BotApiEmulator
from tests.channels.voice.ami_emulator import AmiEmulator
from tests.conftest import REDIS_URL, free_port
from tests.helpers import HTTP_TIMEOUT, until, wait_ready
from tests.test_realtime import OperatorClient

SECRET = "lease-secret-" + "z" * 32
BOT_ID_KEY = "telegram:poll:{bot_id}"


@pytest.fixture
async def ami() -> AsyncIterator[AmiEmulator]:
    emu = AmiEmulator(free_port())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture
async def bot_api() -> AsyncIterator[BotApiEmulator]:
    emu = BotApiEmulator(free_port())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


def _node_env(
    pg_url: str, prefix: str, ami: AmiEmulator, bot_api: BotApiEmulator, tmp: Path
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMNI_DATABASE_URL=pg_url,
        OMNI_REDIS_URL=REDIS_URL,
        OMNI_REDIS_PREFIX=prefix,
        OMNI_SECRET_KEY=SECRET,
        OMNI_DATA_DIR=str(tmp),
        OMNI_ROUTING_TICK_SECONDS="0.1",
        OMNI_LOG_LEVEL="INFO",
        OMNI_LEASE_CHECK_SECONDS="0.2",
        OMNI_VOICE_ENABLED="true",
        OMNI_VOICE_AMI_PORT=str(ami.port),
        OMNI_VOICE_AMI_SECRET=ami.secret,
        OMNI_VOICE_AGI_PORT="0",
        OMNI_VOICE_RECONNECT_MIN_SECONDS="0.05",
        OMNI_VOICE_RECONNECT_MAX_SECONDS="0.4",
        OMNI_VOICE_RECORDINGS_DIR=str(tmp / "recordings"),
        OMNI_TELEGRAM_API_BASE_URL=bot_api.url,
        OMNI_TELEGRAM_POLL_TIMEOUT_SECONDS="2",
        OMNI_TELEGRAM_POLL_BACKOFF_SECONDS="0.1",
        OMNI_TELEGRAM_POLL_BACKOFF_MAX_SECONDS="0.5",
        OMNI_TELEGRAM_RECONCILE_SECONDS="1",
    )
    return env


def _start(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "omni.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def _ready(client: httpx.AsyncClient, port: int) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"http://127.0.0.1:{port}/readyz")).json()
    return body


async def _token(port: int, username: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as client:
        resp = await client.post("/api/v1/auth/login", json={"username": username, "password": f.PASSWORD})
        assert resp.status_code == 200, resp.text
        created = await client.post("/api/v1/me/tokens", json={"name": "socket"})
        token: str = created.json()["token"]
        return token


async def _leases(client: httpx.AsyncClient, port: int) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"http://127.0.0.1:{port}/leases")).json()
    return body


@pytest.mark.timeout(600)  # two nodes start on a loaded 2-core machine (as in test_race)
async def test_sigkilled_owner_hands_the_ami_link_and_the_poller_to_the_other_node(
    pg_url: str, tmp_path: Path, ami: AmiEmulator, bot_api: BotApiEmulator
) -> None:
    token = bot_api.add_bot("omni_lease_bot")
    bot_id = int(token.split(":")[0])
    poll_lease = BOT_ID_KEY.format(bot_id=bot_id)
    db = Database(pg_url)
    async with db.transaction() as s:
        ops = [await f.user(s, f"op{i}", sip_extension=f"20{i}") for i in range(2)]
        await f.result_code(s)
        q = await f.queue(
            s,
            "calls",
            ops,
            strategy=m.Strategy.LINEAR,
            operator_timeout_seconds=30,
            wrap_up_seconds=600,
            queue_timeout_seconds=600,
        )
        line = await f.inbox(s, q, channel="voice", name="line")
        line.config = {"did": "4957000000"}
        chats = await f.queue(s, "chats", [])
        tg = await f.inbox(
            s,
            chats,
            channel="telegram",
            name="bot",
            config={
                "mode": "polling",
                "bot_id": bot_id,
                "bot_username": "omni_lease_bot",
                "queue_message": "",
            },
        )
        inboxes.do_store_inbox_secret(tg, SECRET, token)
        for u in ops:
            await f.set_status(s, u)
        line_id, tg_id = line.id, tg.id
    prefix = f"lease-{random.randrange(1 << 30)}"
    env = _node_env(pg_url, prefix, ami, bot_api, tmp_path)
    port_a, port_b = free_port(), free_port()
    node_a = _start(port_a, env, tmp_path / "node_a.log")
    node_b: subprocess.Popen[bytes] | None = None
    user = {"id": 5550001, "first_name": "Olga"}
    sent: list[str] = []

    def say(text: str) -> None:
        bot_api.push(token, bot_api.update(message=bot_api.message(user, text=text)))
        sent.append(text)

    async def stored() -> list[tuple[str | None, str, int]]:
        async with db.transaction() as s:
            rows = await s.execute(
                select(m.Message.external_id, m.Message.body, func.count())
                .where(m.Message.inbox_id == tg_id, m.Message.direction == "in")
                .group_by(m.Message.external_id, m.Message.body)
            )
            return [(r[0], r[1], int(r[2])) for r in rows]

    async def call_of(caller_uid: str) -> tuple[m.Conversation, m.Call]:
        async with db.transaction() as s:
            call = await s.scalar(select(m.Call).where(m.Call.linkedid == caller_uid))
            assert call is not None
            conv = await s.get(m.Conversation, call.conversation_id)
            assert conv is not None
            return conv, call

    async def talking(caller_uid: str) -> bool:
        ch = ami.channels.get(caller_uid)
        if ch is None or not ch.bridge:
            return False
        conv, _ = await call_of(caller_uid)
        return conv.status == "active"

    try:
        async with httpx.AsyncClient(timeout=60) as client:
            await wait_ready(f"http://127.0.0.1:{port_a}", node_a)

            async def owns(port: int) -> str | None:
                """The node at ``port`` when it holds both leases and its AMI link is up."""
                leases = await _leases(client, port)
                held = {name: lease["held"] for name, lease in leases["leases"].items()}
                voice = (await _ready(client, port))["checks"]["voice"]
                if held == {"voice:ami": True, poll_lease: True} and voice == "ok":
                    return str(leases["node"])
                return None

            node_a_id = await until(
                lambda: owns(port_a), 60, what="node A holding the AMI link and the poller"
            )
            node_b = _start(port_b, env, tmp_path / "node_b.log")
            await wait_ready(f"http://127.0.0.1:{port_b}", node_b)
            leases = await _leases(client, port_b)
            assert leases["leases"] == {
                "voice:ami": {"held": False, "holder": node_a_id},
                poll_lease: {"held": False, "holder": node_a_id},
            }, leases
            assert (await _ready(client, port_b))["checks"]["voice"].startswith("standby")
            assert ami.sessions == 1, "only the holder talks to Asterisk"

            # Two calls in progress, answered and bridged while A runs the link.
            first = ami.incoming_call("+79160000001", "First", inbox=line_id)
            await until(lambda: ami.ringing("200"), 30, what="operator 1's phone ringing")
            ami.answer("200")
            await until(lambda: talking(first.uniqueid), 30, what="call 1 bridged")
            second = ami.incoming_call("+79160000002", "Second", inbox=line_id)
            await until(lambda: ami.ringing("201"), 30, what="operator 2's phone ringing")
            ami.answer("201")
            await until(lambda: talking(second.uniqueid), 30, what="call 2 bridged")
            agent_leg_2 = ami.agent_leg("201")
            assert agent_leg_2 is not None

            # Operator 2 works through node B, the standby: hold and resume reach Asterisk
            # through node A's link (B asks A), and the acks come back as on A.
            conv2, _ = await call_of(second.uniqueid)
            op2 = OperatorClient(f"http://127.0.0.1:{port_b}", await _token(port_b, "op1"))
            await op2.connect()
            try:
                ack = await op2.call("call_hold", {"conversation_id": conv2.id, "hold": True})
                assert ack["ok"], ack
                await until(lambda: not second.bridge, what="caller 2 held through node A's link")
                ack = await op2.call("call_hold", {"conversation_id": conv2.id, "hold": False})
                assert ack["ok"], ack
                await until(
                    lambda: second.bridge and second.bridge == agent_leg_2.bridge, what="caller 2 resumed"
                )
            finally:
                await op2.sio.disconnect()
            assert ami.sessions == 1

            # Telegram updates while A polls.
            for i in range(5):
                say(f"before {i}")
            await until(lambda: _bodies(stored(), sent), 30, what="the first updates stored by node A")
            assert bot_api.bots[token].overlapping_polls == 0, "node B polled the bot while A did"

            # The first caller hangs up and nobody hears it (the Hangup event is lost); then A dies.
            ami.vanish(first.uniqueid)
            for i in range(3):
                say(f"just before {i}")
            node_a.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            node_a.wait(timeout=30)
            for i in range(10):
                say(f"during {i}")

            node_b_id = await until(
                lambda: owns(port_b), 60, what="node B taking the AMI link and the poller over"
            )
            took = time.monotonic() - killed_at
            print(f"node B took over {took:.2f}s after node A was SIGKILLed")
            assert node_b_id != node_a_id
            await until(lambda: ami.sessions == 1, what="one AMI session: node B's")

            # The resync after B's login: call 1's caller is gone → the call ends, wrap-up.
            async def first_ended() -> bool:
                conv, call = await call_of(first.uniqueid)
                return call.ended_at is not None and conv.status == "wrap_up"

            await until(first_ended, 30, what="call 1 ended by node B's resync")
            # Call 2 goes on: B knows it (from the database) and follows its hang-up.
            conv2, call2 = await call_of(second.uniqueid)
            assert conv2.status == "active" and call2.ended_at is None
            ami.hangup(second.uniqueid)

            async def second_ended() -> bool:
                conv, call = await call_of(second.uniqueid)
                return call.ended_at is not None and conv.status == "wrap_up"

            await until(second_ended, 30, what="call 2's hang-up applied by node B")
            await until(
                lambda: agent_leg_2.uniqueid not in ami.channels,
                30,
                what="operator 2's leg hung up by node B",
            )

            for i in range(5):
                say(f"after {i}")
            await until(lambda: _bodies(stored(), sent), 60, what="every update stored")
            rows = await stored()
            assert sorted(body for _, body, _ in rows) == sorted(sent), "an update was lost"
            assert all(count == 1 for _, _, count in rows), f"an update was stored twice: {rows}"
            assert len({ext for ext, _, _ in rows}) == len(sent)
    finally:
        for proc in (node_a, node_b):
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in (node_a, node_b):
            if proc is not None:
                proc.wait(timeout=30)
        await db.dispose()


async def _bodies(rows_future: Any, sent: list[str]) -> bool:
    rows = await rows_future
    return {body for _, body, _ in rows} >= set(sent)
