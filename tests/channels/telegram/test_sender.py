"""``BotSender`` on its own: the order of calls per chat under the bot-wide pacer.

The calls are plain coroutines standing in for Bot API calls (the ``Call`` seam), so the test
can hold one "in flight" as long as it needs.
"""

from __future__ import annotations

import asyncio
import functools

from channels.telegram import make_bot
from channels.telegram.sender import BotSender, Call, Job
from tests.channels.telegram.emulator import BotApiEmulator
from tests.conftest import free_port
from tests.helpers import until


async def test_a_message_queued_while_its_chat_waits_for_the_pacer_is_not_sent_twice() -> None:
    """Regression: a chat's lane taken off the ready heap, waiting for the pacer (or the
    window), was put back on the heap by a message submitted meanwhile; the loop then started
    a second call on the same lane while the first was still in flight — the same message
    sent twice, two calls to one chat at once."""
    calls: list[str] = []
    release = asyncio.Event()
    reports: list[tuple[int, str]] = []

    def call(name: str, *, hold: bool = False) -> Call:
        async def run() -> None:
            calls.append(name)
            if hold:
                await release.wait()

        return run

    async def report(message_id: int, state: str, error: str) -> None:
        reports.append((message_id, state))

    sender = BotSender(report, rate=5, per_chat_interval=0.0, attempts=1, backoff=0.0, name="t")
    sender.start()
    try:
        sender.submit(Job(1, chat_id=1, calls=[call("a")]))
        await until(lambda: "a" in calls, what="the first call")
        sender.submit(Job(2, chat_id=2, calls=[call("x", hold=True)]))
        await until(lambda: not sender._ready, what="chat 2 taken off the heap, waiting for the pacer")
        sender.submit(Job(3, chat_id=2, calls=[call("y")]))
        sender.submit(Job(4, chat_id=3, calls=[call("z")]))
        await until(lambda: "z" in calls or calls.count("x") > 1, what="the next call")
        assert calls.count("x") == 1, calls
        release.set()
        await until(lambda: len(reports) == 4, what="every message marked")
        assert calls == ["a", "x", "z", "y"]
        assert sorted(reports) == [(1, "sent"), (2, "sent"), (3, "sent"), (4, "sent")]
    finally:
        await sender.stop()


async def test_a_jittery_network_does_not_push_a_full_sender_over_30_a_second_at_telegram() -> None:
    """Regression: starts spaced 1/28 s apart still arrived 30+ within one second at the Bot
    API after a jittery hop (one 429 in a 1,000-message broadcast); a call now holds its slot
    in the bot's window until a second after its response."""
    emulator = BotApiEmulator(free_port())
    await emulator.start()
    emulator.arrival_jitter = 0.5
    bot = make_bot(emulator.add_bot(), emulator.url)
    marks: list[str] = []

    async def report(message_id: int, state: str, error: str) -> None:
        marks.append(state)

    sender = BotSender(report, rate=28, per_chat_interval=1.0, attempts=3, backoff=0.1, name="jitter")
    sender.start()
    try:
        for i in range(300):
            chat = 70_000 + i
            sender.submit(Job(i, chat, [functools.partial(bot.send_message, chat, f"message {i}")]))
        await until(lambda: len(marks) == 300, timeout=120, what="300 delivery marks")
        assert emulator.refused_429 == 0 and sender.stats.retry_after == 0
        assert marks == ["sent"] * 300
    finally:
        await sender.stop()
        await bot.session.close()
        await emulator.close()
