"""The FastAGI wire protocol: one AGI session's command/result exchange and the server loop.

panoramisk parses the AGI result lines (``parse_agi_result``); the server loop is ours because
panoramisk's ``Application.handler`` spins forever on a connection closed before the
environment's blank line, has no way to stop running sessions and leaves a ``HANGUP``
notification in the buffer where the next command's result should be.

Nothing here knows the IVR: ``FastAgiServer`` answers each connection with the route its
``agi_network_script`` names (``routes``), which ``channels.voice.agi.ivr.AgiServer`` fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from panoramisk.utils import parse_agi_result

__all__ = ["AgiChannel", "AgiError", "AgiHangup", "FastAgiServer", "Route", "app_arg", "quote"]

log = logging.getLogger(__name__)


class AgiError(Exception):
    """Asterisk refused a command (``510``/``520``) or the session broke the protocol."""


class AgiHangup(Exception):
    """The caller hung up or the channel left the AGI (e.g. an AMI redirect): stop quietly."""


def quote(arg: str) -> str:
    """One AGI argument: double-quoted, ``\\`` and ``"`` escaped, line breaks flattened."""
    flat = re.sub(r"[\r\n\t]+", " ", arg)
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def app_arg(text: str) -> str:
    """A dialplan application's single argument: commas, quotes, brackets escaped, so a TTS
    sentence with a comma reaches e.g. ``Festival`` whole (``ast_app_separate_args``)."""
    return re.sub(r'([\\,"()\[\]])', r"\\\1", text)


class AgiChannel:
    """One FastAGI connection: the ``agi_*`` environment and a command/result exchange."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: dict[str, str],
        *,
        command_timeout: float = 300.0,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.env = env
        self.command_timeout = command_timeout
        self.hung_up = False
        """Asterisk sent its ``HANGUP`` notification (the caller is gone)."""

    @property
    def script(self) -> str:
        """The route: ``ivr`` for ``agi://host:4573/ivr``."""
        raw = self.env.get("agi_network_script") or self.env.get("agi_request", "").split("/", 3)[-1]
        return raw.split("?", 1)[0].strip("/")

    def arg(self, n: int) -> str:
        return self.env.get(f"agi_arg_{n}", "").strip()

    async def command(self, *parts: str) -> dict[str, Any]:
        """Send one command; its parsed ``200`` result, or ``AgiHangup`` / ``AgiError``."""
        if self.hung_up:
            raise AgiHangup("the caller hung up")
        line = " ".join(parts)
        try:
            self.writer.write(line.encode() + b"\n")
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise AgiHangup(f"connection lost: {exc}") from exc
        while True:
            raw = await self._readline()
            if raw == "HANGUP":
                self.hung_up = True  # the command's own result line still follows
                continue
            result: dict[str, Any] = parse_agi_result(raw)
            if result.get("error") == "AGIAppError":
                # "200 result=-1 ...": the application failed (a missing sound file) or the
                # channel is gone; panoramisk drops the code, the HANGUP flag tells them apart.
                result = {"status_code": 200, "result": ("-1", ""), "msg": raw}
            code = result.get("status_code")
            if code == 100:  # "100 result=0 Trying..."
                continue
            break
        if code == 511:  # "Command Not Permitted on a dead channel or intercept routine"
            self.hung_up = True
            raise AgiHangup(raw)
        if code == 520:
            usage = [raw]
            while not usage[-1].startswith("520 End"):
                usage.append(await self._readline())
            raise AgiError(f"{line}: {' '.join(usage)}")
        if code != 200:
            raise AgiError(f"{line}: {raw}")
        if self.hung_up or result.get("error") == "AGIResultHangup":
            self.hung_up = True
            raise AgiHangup(f"{line}: {raw}")
        return result

    async def _readline(self) -> str:
        try:
            raw = await asyncio.wait_for(self.reader.readline(), self.command_timeout)
        except (TimeoutError, ConnectionError) as exc:
            raise AgiHangup(f"no answer from Asterisk: {exc!r}") from exc
        if not raw:
            raise AgiHangup("connection closed by Asterisk")
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    @staticmethod
    def value(result: dict[str, Any]) -> str:
        """``result=`` of a parsed result (``""`` on a timeout)."""
        found = result.get("result", ("", ""))
        return str(found[0])

    # the commands the IVR uses --------------------------------------------------------

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, quote(value))

    async def get_variable(self, name: str) -> str | None:
        result = await self.command("GET VARIABLE", name)
        if self.value(result) != "1":
            return None
        return str(result["result"][1])

    async def stream_file(self, name: str, escape: str = "") -> str:
        """Play a sound file; the key that interrupted it, or ``""``."""
        result = await self.command("STREAM FILE", quote(name), quote(escape))
        code = self.value(result)
        if code == "-1":
            if await self._left_dialplan():
                # Answered (AMI Bridge pulled the channel out of the dialplan) or hung up mid-file:
                # nothing is wrong with the file, and this session is over.
                log.debug("sound file %r interrupted on %s: the channel left the dialplan",
                          name, self.env.get("agi_channel"))  # fmt: skip
                raise AgiHangup(f"{name} interrupted: the channel left the dialplan")
            log.warning(
                "sound file %r could not be played on %s: Asterisk found no file by that name in a"
                " format it reads, or could not read it (a relative name is looked up in its sounds"
                " directory; prompts, rendered speech and replies must be at the same path on the"
                " Asterisk host: a shared volume)",
                name,
                self.env.get("agi_channel"),
            )
            return ""
        return chr(int(code)) if code.isdigit() and int(code) > 0 else ""

    async def _left_dialplan(self) -> bool:
        """After ``result=-1``: is the channel still ours? Asterisk sends ``HANGUP`` (then 511
        to every command) once the channel was hung up or bridged away; a live channel answers
        ``CHANNEL STATUS`` (so the file itself is what failed)."""
        if self.hung_up:
            return True
        try:
            await self.command("CHANNEL STATUS")
        except AgiHangup:
            return True
        except AgiError:
            return False
        return self.hung_up

    async def exec(self, app: str, args: str) -> None:
        await self.command("EXEC", app, quote(args))

    async def wait_for_digit(self, timeout_ms: int) -> str:
        code = self.value(await self.command("WAIT FOR DIGIT", str(timeout_ms)))
        if code == "-1":
            # The caller hung up while we waited (``result=-1``, then ``HANGUP``): no input to
            # feed, or the scenario would count a no-input and re-prompt a dead call.
            raise AgiHangup("WAIT FOR DIGIT: the channel hung up")
        return chr(int(code)) if code.isdigit() and int(code) > 0 else ""

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str:
        result = await self.command("GET DATA", quote(sound), str(timeout_ms), str(max_digits))
        return self.value(result) if self.value(result) not in ("-1",) else ""

    async def say_number(self, number: int) -> None:
        await self.command("SAY NUMBER", str(number), quote(""))

    async def music(self, on: bool, moh_class: str = "") -> None:
        await self.command("SET MUSIC", "on" if on else "off", *([quote(moh_class)] if moh_class else []))

    async def hangup(self) -> None:
        await self.command("HANGUP")

    async def record_file(
        self, path: str, *, fmt: str = "wav", escape: str = "#", timeout_ms: int, beep: bool, silence: int
    ) -> str:
        """``RECORD FILE``: Asterisk records the caller into ``<path>.<fmt>`` until ``timeout_ms``,
        ``silence`` seconds of silence (0 = no silence end) or a key of ``escape``; the key
        pressed, or ``""``. A hang-up during it raises ``AgiHangup`` (what was said is kept)."""
        parts = ["RECORD FILE", quote(path), fmt, quote(escape), str(timeout_ms)]
        if beep:
            parts.append("BEEP")
        if silence > 0:
            parts.append(f"s={silence}")
        code = self.value(await self.command(*parts))
        if code == "-1":
            raise AgiHangup(f"RECORD FILE {path}: the channel hung up")
        return chr(int(code)) if code.isdigit() and int(code) > 0 else ""


Route = Callable[[AgiChannel], Awaitable[None]]


class FastAgiServer:
    """A FastAGI listener: one task per connection, running the route its script names."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.routes: dict[str, Route] = {}
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[Any]] = set()

    # lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        if self.port == 0:
            self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("FastAGI listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end the running sessions (their calls continue in the dialplan
        with ``OMNI_RESULT`` unset, which the sample dialplan treats as an error)."""
        if self._server is not None:
            self._server.close()
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            env = await self._environment(reader)
            if env is None:
                return
            channel = AgiChannel(reader, writer, env)
            route = self.routes.get(channel.script)
            if route is None:
                log.error(
                    "FastAGI request for unknown route %r from %s", channel.script, env.get("agi_channel")
                )
                with contextlib.suppress(AgiHangup, AgiError):
                    await channel.set_variable("OMNI_RESULT", "error")
                return
            try:
                await route(channel)
            except AgiHangup as exc:
                log.info("%s: %s ended by the channel (%s)", env.get("agi_channel"), channel.script, exc)
            except Exception:
                log.exception("FastAGI %s failed on %s", channel.script, env.get("agi_channel"))
                with contextlib.suppress(AgiHangup, AgiError):
                    await channel.set_variable("OMNI_RESULT", "error")
        finally:
            if task is not None:
                self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _environment(reader: asyncio.StreamReader) -> dict[str, str] | None:
        """``agi_name: value`` lines up to the blank line; ``None`` if the peer gave up."""
        env: dict[str, str] = {}
        try:
            async with asyncio.timeout(10):
                for _ in range(200):
                    raw = await reader.readline()
                    if not raw:
                        return None
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if not line:
                        return env
                    name, sep, value = line.partition(":")
                    if sep:
                        env[name.strip()] = value.strip()
        except (TimeoutError, ConnectionError):
            return None
        log.warning("FastAGI environment longer than 200 lines; dropped")
        return None
