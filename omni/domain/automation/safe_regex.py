"""A customer-supplied text against an admin's pattern, with a hard time limit.

Python's ``re`` can backtrack for ages on a pattern like ``(a+)+$``; a thread can't be stopped,
so the match runs in a one-process pool that is killed (and made again) when it overruns.
Patterns are compiled once at save time in the caller's process, so a syntax error is a form
error, not a failed run.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from omni.regex_worker import search as search_in_worker

log = logging.getLogger(__name__)

MAX_PATTERN = 200
MAX_TEXT = 4000
TIMEOUT_SECONDS = 0.5

_pool: ProcessPoolExecutor | None = None


class RegexTimeout(Exception):
    """The pattern took longer than the limit on this text (treated as no match, logged)."""


async def _get_pool() -> ProcessPoolExecutor:
    """The pool with its worker started: the time limit is for the match, not the start-up."""
    global _pool
    if _pool is None:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        await asyncio.get_running_loop().run_in_executor(pool, search_in_worker, "", "")
        _pool = pool
    return _pool


def _kill_pool() -> None:
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return
    processes: dict[Any, Any] = getattr(pool, "_processes", None) or {}
    for proc in list(processes.values()):
        proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


async def search(pattern: str, text: str, *, limit_seconds: float = TIMEOUT_SECONDS) -> bool:
    """``re.search`` (case-insensitive) on the first ``MAX_TEXT`` characters, or ``RegexTimeout``."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(await _get_pool(), search_in_worker, pattern, text[:MAX_TEXT])
    try:
        return await asyncio.wait_for(future, limit_seconds)
    except TimeoutError:
        _kill_pool()
        raise RegexTimeout(pattern) from None


def shutdown() -> None:
    _kill_pool()
