"""The FastAGI side of the voice channel: the IVR (``ivr``) over the AGI wire protocol (``wire``).

``ivr.AgiServer`` runs the inbox's bot scenario on a call and announces the place in line to
a held caller (``docs/voice.md``); ``wire`` is one AGI session's command/result exchange and
the listener. Every public name stays importable from here (``channels.voice.agi``), and the
log of both keeps the ``channels.voice.agi`` logger as its parent.
"""

from __future__ import annotations

from channels.voice.agi.ivr import (
    ANY_KEY,
    ASK_MAX_DIGITS,
    MAX_ROUNDS,
    POLL_SECONDS,
    SILENCE,
    TIMER_GRACE_SECONDS,
    AgiServer,
    AnnounceSounds,
    caller_identity,
    prompt_path,
)
from channels.voice.agi.wire import AgiChannel, AgiError, AgiHangup, FastAgiServer, Route, app_arg, quote

__all__ = [
    "ANY_KEY",
    "ASK_MAX_DIGITS",
    "MAX_ROUNDS",
    "POLL_SECONDS",
    "SILENCE",
    "TIMER_GRACE_SECONDS",
    "AgiChannel",
    "AgiError",
    "AgiHangup",
    "AgiServer",
    "AnnounceSounds",
    "FastAgiServer",
    "Route",
    "app_arg",
    "caller_identity",
    "prompt_path",
    "quote",
]
