"""Text to speech: numbers, dates and money in words (:func:`spell`), audio rendered and cached
(:func:`render`), and what the configured engine makes of a text (:func:`utterance`). The core
part of TTS: it knows nothing of channels; the IVR (``channels.voice.agi.ivr``) plays what
these return (``docs/dialer.md``, Text to speech)."""

from omni.domain.speech.render import (
    ENGINES,
    TtsError,
    TtsUnavailable,
    Utterance,
    cache_key,
    render,
    utterance,
)
from omni.domain.speech.words import FORMATS, format_value, lang_of, plural_ru, spell

__all__ = [
    "ENGINES",
    "FORMATS",
    "TtsError",
    "TtsUnavailable",
    "Utterance",
    "cache_key",
    "format_value",
    "lang_of",
    "plural_ru",
    "render",
    "spell",
    "utterance",
]
