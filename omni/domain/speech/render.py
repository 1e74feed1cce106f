"""Rendered speech: a text becomes an 8 kHz WAV file Asterisk plays, made once per text.

Engine ``espeak`` runs espeak-ng (a Debian package with a Russian voice) and sox, and keeps the
file in the cache directory; the row in ``tts_cache`` is keyed by the sha256 of
``engine|voice|lang|spelled text``, so the same words are synthesised once and every later call
is a lookup (the row's ``last_used_at`` is what eviction goes by). Engine ``app`` makes no files:
the dialplan application speaks the spelled text (:func:`utterance` says which to do).

Concurrency: renders of one text in this process wait for each other (the second finds the
file); across processes each writes its own temporary file and renames it over the final name
(atomic: a reader sees a whole file or none), and the row is inserted with
on-conflict-do-nothing, so two nodes rendering one text at once leave one file and one row.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import shutil
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from omni.db import models as m
from omni.domain.speech.words import lang_of, spell
from omni.settings import Settings

__all__ = ["ENGINES", "TtsError", "TtsUnavailable", "Utterance", "cache_key", "render", "utterance"]

log = logging.getLogger(__name__)

ENGINES = ("espeak", "app")


class TtsError(RuntimeError):
    """A text could not be turned into speech; the message names why (a setting, a missing
    program, a failed run). ``text`` is the spelled text, for a caller that falls back to a
    dialplan application or a written transcript."""

    def __init__(self, message: str, text: str = "") -> None:
        super().__init__(message)
        self.text = text


class TtsUnavailable(TtsError):
    """espeak-ng or sox is not installed (or not runnable) on this host."""


@dataclass(frozen=True)
class Utterance:
    """How to say a text on a call: play ``sound`` (``STREAM FILE``/``Playback``), or run the
    dialplan application ``app`` with ``text`` as its argument."""

    sound: str = ""
    app: str = ""
    text: str = ""


_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _voice(settings: Settings, lang: str) -> str:
    speech = settings.speech
    return f"{speech.voice_ru if lang == 'ru' else speech.voice_en}/{speech.rate}"


def cache_key(engine: str, voice: str, lang: str, spelled: str) -> str:
    """The ``tts_cache`` key: sha256 hex of ``engine|voice|lang|spelled text`` (voice = the
    espeak-ng voice and rate, so changing either renders anew)."""
    return hashlib.sha256(f"{engine}|{voice}|{lang}|{spelled}".encode()).hexdigest()


def _spelled(settings: Settings, text: str, lang: str) -> str:
    said = " ".join(text.split())
    return spell(said, lang) if settings.speech.spell else said


async def utterance(session: AsyncSession, settings: Settings, text: str, lang: str) -> Utterance | None:
    """What the configured engine makes of ``text``: a rendered file (``espeak``), the
    application with the spelled text (``app``, or the older ``OMNI_VOICE_TTS_APP`` when no
    engine is set), or ``None`` when text to speech is off. Raises :class:`TtsError` when
    rendering fails; its ``text`` and :attr:`Settings.tts_app` are the fallback."""
    engine = settings.speech.engine
    if engine == "espeak":
        return Utterance(sound=await render(session, settings, text, lang))
    if engine == "app":
        if not settings.tts_app:
            raise TtsError("OMNI_TTS_ENGINE is app but OMNI_TTS_APP names no dialplan application")
        return Utterance(app=settings.tts_app, text=_spelled(settings, text, lang_of(lang)))
    if engine:
        raise TtsError(f"unknown OMNI_TTS_ENGINE {engine!r}: use espeak, app or leave it empty")
    if settings.voice.tts_app:
        return Utterance(app=settings.voice.tts_app, text=text)
    return None


async def render(
    session: AsyncSession, settings: Settings, text: str, lang: str, *, now: datetime | None = None
) -> str:
    """The ``sound`` path (no extension) ``Playback()``/``STREAM FILE`` takes for ``text`` said
    in ``lang``, rendered by espeak-ng once and cached; the row is added to ``session`` (the
    caller commits). Raises :class:`TtsError` (:class:`TtsUnavailable` when a program is
    missing) with a message naming the problem."""
    engine = settings.speech.engine
    if engine != "espeak":
        raise TtsError(
            f"OMNI_TTS_ENGINE is {engine!r}: only engine espeak renders files"
            + (" (engine app speaks through the dialplan application)" if engine == "app" else "")
        )
    lang = lang_of(lang)
    spelled = _spelled(settings, text, lang)
    if not spelled:
        raise TtsError("there is no text to say")
    now = now or datetime.now(UTC)
    voice = _voice(settings, lang)
    key = cache_key(engine, voice, lang, spelled)
    folder = settings.tts_cache_dir.resolve() / key[:2]
    sound = str(folder / key)
    wav = Path(sound + ".wav")
    row = await session.get(m.TtsCache, key)
    if row is not None and await asyncio.to_thread(wav.is_file):
        row.last_used_at, row.sound = now, sound
        return sound
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    async with lock:
        if not await asyncio.to_thread(wav.is_file):
            await _synthesise(settings, spelled, lang, folder, wav)
        size = (await asyncio.to_thread(wav.stat)).st_size
    if row is not None:
        row.sound, row.size, row.last_used_at = sound, size, now
    else:
        values = {"key": key, "lang": lang, "text": spelled, "sound": sound, "size": size,
                  "created_at": now, "last_used_at": now}  # fmt: skip
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await session.execute(
            insert(m.TtsCache).values(**values).on_conflict_do_nothing(index_elements=["key"])
        )
    await _trim(session, settings, keep=key)
    return sound


async def _run(settings: Settings, *args: str, stdin: bytes = b"") -> None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise TtsUnavailable(f"{args[0]} could not be started: {exc}") from exc
    try:
        _, err = await asyncio.wait_for(proc.communicate(stdin), settings.speech.command_timeout_seconds)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise TtsError(
            f"{args[0]} ran over {settings.speech.command_timeout_seconds}s and was stopped"
        ) from None
    if proc.returncode != 0:
        raise TtsError(f"{args[0]} failed ({proc.returncode}): {err.decode(errors='replace').strip()[:300]}")


async def _synthesise(settings: Settings, spelled: str, lang: str, folder: Path, wav: Path) -> None:
    """espeak-ng → WAV → sox → 8 kHz mono 16-bit WAV, written under a temporary name and
    renamed over ``wav``."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    missing = [name for name, path in (("espeak-ng", espeak), ("sox", sox)) if path is None]
    if missing or espeak is None or sox is None:
        message = (f"text to speech: {' and '.join(missing)} not found on PATH "
                   f"(Debian: apt-get install {' '.join(missing)})")  # fmt: skip
        log.error("%s; the text is not rendered", message)
        raise TtsUnavailable(message, spelled)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    raw = folder / f".{wav.stem}.{token}.raw.wav"
    tmp = folder / f".{wav.stem}.{token}.tmp.wav"
    voice = settings.speech.voice_ru if lang == "ru" else settings.speech.voice_en
    try:
        await _run(settings, espeak, "-v", voice, "-s", str(settings.speech.rate), "-b", "1",
                   "-w", str(raw), "--stdin", stdin=spelled.encode())  # fmt: skip
        await _run(
            settings, sox, str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(tmp)
        )
        await asyncio.to_thread(os.replace, tmp, wav)
    except TtsError as exc:
        exc.text = spelled
        log.error("text to speech failed: %s", exc)
        raise
    finally:
        for leftover in (raw, tmp):
            await asyncio.to_thread(leftover.unlink, missing_ok=True)
    log.info("rendered %s with espeak-ng (%s, %s characters)", wav.name, voice, len(spelled))


async def _trim(session: AsyncSession, settings: Settings, *, keep: str) -> None:
    """Past ``cache_max_bytes``: remove the least recently used files and their rows."""
    await session.flush()
    limit = settings.speech.cache_max_bytes
    total = int(await session.scalar(select(func.coalesce(func.sum(m.TtsCache.size), 0))) or 0)
    if total <= limit:
        return
    rows = await session.scalars(
        select(m.TtsCache).where(m.TtsCache.key != keep).order_by(m.TtsCache.last_used_at, m.TtsCache.key)
    )
    gone: list[str] = []
    for row in rows:
        if total <= limit:
            break
        await asyncio.to_thread(Path(row.sound + ".wav").unlink, missing_ok=True)
        total -= row.size
        gone.append(row.key)
    # A bulk delete: a row another node's trim removed meanwhile is simply not there any more
    # (an ORM delete would count it as a stale row and fail the render).
    await session.execute(delete(m.TtsCache).where(m.TtsCache.key.in_(gone)))
    removed = len(gone)
    log.info("text to speech cache over %s bytes: removed the %s least recently used files", limit, removed)
