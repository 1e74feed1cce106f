"""An emulated Asterisk channel running ``AGI(agi://host:port/<script>,<args>)``.

It speaks the real FastAGI wire protocol as ``res_agi`` does: connect, send the ``agi_*``
environment and a blank line, then read one command per line and answer each with a
``200 result=...`` line (``510`` for an unknown command, ``511`` once the channel is dead).
The caller is scripted: ``keys`` is what they do at each digit read (a digit string, or
``None`` for silence until the timeout; digit reads while music plays are silence and take
nothing from the script); when the script runs out they hang up (Asterisk's ``HANGUP``
notification, then ``result=-1``). ``barge`` maps a sound file to the key pressed
while it plays.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path


def parse_args(line: str) -> list[str]:
    """Split a command line like ``res_agi.c`` ``parse_args``: blanks separate, double quotes
    group (``""`` is an empty argument), a backslash makes the next character literal."""
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                args.append("".join(cur))
                cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        escaped = False
        if cur is None:
            cur = []
        cur.append(ch)
    if cur is not None:
        args.append("".join(cur))
    return args


DEAD_SAFE = frozenset({"SET VARIABLE", "GET VARIABLE", "GET FULL"})
"""Two-word commands res_agi runs on a dead channel too (its ``dead`` flag)."""


@dataclass
class EmulatedCall:
    host: str
    port: int
    script: str = "ivr"
    args: list[str] = field(default_factory=list)
    uniqueid: str = "1700000000.1"
    linkedid: str = ""
    """The call's first channel; empty = this channel (an inbound call from the trunk)."""
    callerid: str = "+15551230001"
    calleridname: str = "Ann"
    extension: str = "100"
    keys: list[str | None] = field(default_factory=list)
    barge: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    """Channel variables: preset ones (e.g. ``OMNI_PLAYED``) and what ``SET VARIABLE`` set."""
    missing_files: set[str] = field(default_factory=set)
    """Sound files Asterisk can't find. Besides these, an absolute name whose directory exists
    on this host but holds no ``<name>.*`` fails as on Asterisk 22.10 ("File ... does not exist
    in any format": ``200 result=-1 endpos=0``); the shared directories are this host's."""
    replies_elsewhere: bool = False
    """Asterisk runs on another host whose replies directory is not shared with Omni's: the
    recording is written there, never here."""
    bridged_during: set[str] = field(default_factory=set)
    """Sound files during which an operator answers: AMI ``Bridge`` pulls the channel out of the
    dialplan, the file stops (``result=-1``), then Asterisk sends ``HANGUP`` and answers 511."""

    replies: list[bytes | None] = field(default_factory=list)
    """What the caller says at each ``RECORD FILE`` (written to ``<file>.<format>`` as
    Asterisk does on the host Omni shares the directory with); ``None`` = silence (a header-only
    WAV). Out of replies: they hang up instead."""

    commands: list[list[str]] = field(default_factory=list, init=False)
    played: list[str] = field(default_factory=list, init=False)
    """Sound files, ``tts:<app>:<text>``, ``say:<number>`` in the order the caller heard them."""
    answered: bool = field(default=False, init=False)
    hung_up: bool = field(default=False, init=False)
    """The channel is dead: the caller left or the AGI sent ``HANGUP``."""
    agi_hung_up: bool = field(default=False, init=False)
    music: bool = field(default=False, init=False)
    _hangup_pending: bool = field(default=False, init=False)

    def environment(self) -> list[str]:
        env = {
            "agi_network": "yes",
            "agi_network_script": self.script,
            "agi_request": f"agi://{self.host}:{self.port}/{self.script}",
            "agi_channel": f"PJSIP/trunk-{self.uniqueid[-8:]}",
            "agi_language": "en",
            "agi_type": "PJSIP",
            "agi_uniqueid": self.uniqueid,
            "agi_version": "20.5.0",
            "agi_callerid": self.callerid,
            "agi_calleridname": self.calleridname,
            "agi_callingpres": "0",
            "agi_callingani2": "0",
            "agi_callington": "0",
            "agi_callingtns": "0",
            "agi_dnid": self.extension,
            "agi_rdnis": "unknown",
            "agi_context": "omni-inbound",
            "agi_extension": self.extension,
            "agi_priority": "3",
            "agi_enhanced": "0.0",
            "agi_accountcode": "",
            "agi_threadid": "140001234567",
        }
        lines = [f"{k}: {v}" for k, v in env.items()]
        lines += [f"agi_arg_{i}: {a}" for i, a in enumerate(self.args, start=1)]
        return lines

    async def run(self, timeout: float = 20.0) -> None:
        """Place the call and answer commands until the AGI server closes the connection."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(("\n".join(self.environment()) + "\n\n").encode())
            await writer.drain()
            async with asyncio.timeout(timeout):
                while True:
                    raw = await reader.readline()
                    if not raw:
                        return
                    argv = parse_args(raw.decode().rstrip("\n"))
                    self.commands.append(argv)
                    if self.music and argv[:2] == ["WAIT", "FOR"]:
                        await asyncio.sleep(0.05)  # listening to the music (shortened)
                    for reply in self.answer(argv):
                        writer.write(reply.encode() + b"\n")
                    await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    def _caller_hangs_up(self) -> list[str]:
        # As Asterisk 22 does it: the interrupted command's result first, then ``HANGUP``.
        self.hung_up = True
        return ["200 result=-1", "HANGUP"]

    def answer(self, argv: list[str]) -> list[str]:
        """The lines Asterisk sends back for one command."""
        name = " ".join(argv[:2]).upper()
        rest = argv[2:]
        if self.hung_up:
            pending, self._hangup_pending = self._hangup_pending, False
            notice = ["HANGUP"] if pending else []
            # res_agi's dead-safe commands still work on a dead channel (seen on Asterisk 22.10).
            if argv[:1] in (["NOOP"], ["VERBOSE"], ["EXEC"], ["DATABASE"]) or name in DEAD_SAFE:
                return [*notice, *self._live(argv, name, rest)]
            return [*notice, "511 Command Not Permitted on a dead channel or intercept routine"]
        return self._live(argv, name, rest)

    def _live(self, argv: list[str], name: str, rest: list[str]) -> list[str]:
        if argv[:1] == ["ANSWER"]:
            self.answered = True
            return ["200 result=0"]
        if argv[:1] == ["HANGUP"]:
            self.hung_up = self.agi_hung_up = True
            # Asterisk 22.10 answers, then sends its HANGUP notification (twice, seen there).
            return ["200 result=1", "HANGUP", "HANGUP"]
        if argv[:1] == ["NOOP"]:
            return ["200 result=0"]
        if name == "CHANNEL STATUS":
            return ["200 result=6"]  # AST_STATE_UP
        if argv[:1] == ["EXEC"] and len(argv) >= 2:
            self.played.append(f"tts:{argv[1]}:{argv[2] if len(argv) > 2 else ''}")
            return ["200 result=0"]
        if name == "SET VARIABLE" and len(rest) == 2:
            self.variables[rest[0]] = rest[1]
            return ["200 result=1"]
        if name == "GET VARIABLE" and len(rest) == 1:
            if rest[0] == "CHANNEL(linkedid)":
                return [f"200 result=1 ({self.linkedid or self.uniqueid})"]
            if rest[0] in self.variables:
                return [f"200 result=1 ({self.variables[rest[0]]})"]
            return ["200 result=0"]
        if name == "STREAM FILE" and len(rest) == 2:
            file, escape = rest
            if file in self.missing_files or _absent(file):
                return ["200 result=-1 endpos=0"]
            if file in self.bridged_during:
                self.played.append(file)
                self.hung_up = self._hangup_pending = True
                return ["200 result=-1 endpos=3200"]
            self.played.append(file)
            key = self.barge.get(file, "")
            if key and key in escape:
                return [f"200 result={ord(key)} endpos=4000"]
            return ["200 result=0 endpos=16000"]
        if name == "RECORD FILE" and len(rest) >= 4:
            file, fmt = rest[0], rest[1]
            if "BEEP" in rest[4:]:
                self.played.append("beep")
            self.played.append(f"record:{file}")
            if not self.replies:
                return self._caller_hangs_up()
            voice = self.replies.pop(0)
            if not self.replies_elsewhere:
                Path(f"{file}.{fmt}").parent.mkdir(parents=True, exist_ok=True)
                Path(f"{file}.{fmt}").write_bytes(_wav(voice or b""))
            # Silence ended it (``s=``): "(timeout)", as res_agi reports it.
            return [f"200 result=0 (timeout) endpos={len(voice or b'') // 2}"]
        if name == "SAY NUMBER" and len(rest) >= 1:
            self.played.append(f"say:{rest[0]}")
            return ["200 result=0"]
        if name == "SET MUSIC" and len(rest) >= 1:
            self.music = rest[0].lower() == "on"
            return ["200 result=0"]
        if name == "WAIT FOR" and argv[2:3] == ["DIGIT"] and len(argv) == 4:
            if self.music:
                return ["200 result=0"]  # on hold while the bot is busy: the caller just listens
            if not self.keys:
                return self._caller_hangs_up()
            pressed = self.keys.pop(0)
            return [f"200 result={ord(pressed[0]) if pressed else 0}"]
        if name == "GET DATA" and len(rest) >= 1:
            self.played.append(rest[0])
            if not self.keys:
                return self._caller_hangs_up()
            digits = self.keys.pop(0)
            return [f"200 result={digits}" if digits else "200 result= (timeout)"]
        return ["510 Invalid or unknown command"]

    def sent(self, verb: str) -> list[list[str]]:
        """Commands starting with ``verb`` (e.g. ``"SET VARIABLE"``), arguments after it."""
        words = verb.split()
        return [
            argv[len(words) :] for argv in self.commands if [a.upper() for a in argv[: len(words)]] == words
        ]


def _absent(name: str) -> bool:
    """An absolute sound name in an existing directory of this host with no file of any
    format: what Asterisk refuses to play (names in directories this host lacks are Asterisk's
    own, e.g. the tests' ``/var/lib/omni/prompts``, and play)."""
    path = Path(name)
    return path.is_absolute() and path.parent.is_dir() and not any(path.parent.glob(f"{path.name}.*"))


def _wav(pcm: bytes) -> bytes:
    """A 8 kHz mono 16-bit WAV of ``pcm`` (what Asterisk's ``wav`` format writes)."""
    import struct

    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    return header + b"data" + struct.pack("<I", len(pcm)) + pcm
