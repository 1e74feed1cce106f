"""Russian and English strings for the server-rendered pages and the live modules, by key.

The strings live in the gettext catalogs (``omni/locale``, see ``omni.i18n`` and docs/i18n.md)
as keyed entries (``msgctxt`` = key). :func:`register` is the older way of adding strings in
code; it still works (code tables win over the catalog, being newer), and
``python -m omni.i18n_tools absorb`` moves such tables into the catalogs. A missing key shows
the key itself (visible in review, never a crash).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from omni.i18n import LANGUAGES, enum_label, enum_labels, enum_options, keyed, keyed_items, pick_language

__all__ = [
    "LANGUAGES",
    "enum_label",
    "enum_labels",
    "enum_options",
    "messages",
    "pick_language",
    "register",
    "translator",
]

_MESSAGES: dict[str, dict[str, str]] = {"en": {}, "ru": {}}
"""Strings still registered in code (not yet absorbed into the catalogs)."""


def register(en: Mapping[str, str], ru: Mapping[str, str]) -> None:
    """Add a module's strings; both languages must carry the same keys."""
    missing = set(en) ^ set(ru)
    if missing:
        raise ValueError(f"strings without a translation: {sorted(missing)}")
    _MESSAGES["en"].update(en)
    _MESSAGES["ru"].update(ru)


def registered() -> dict[str, dict[str, str]]:
    """The tables registered in code, per language (what ``absorb`` moves to the catalogs)."""
    return {lang: dict(table) for lang, table in _MESSAGES.items()}


def text_of(lang: str, key: str) -> str | None:
    table = _MESSAGES.get(lang, _MESSAGES["en"])
    return table.get(key) or keyed(lang, key) or _MESSAGES["en"].get(key)


def translator(lang: str) -> Callable[..., str]:
    def t(key: str, **values: object) -> str:
        text = text_of(lang, key) or key
        return text.format(**values) if values else text

    return t


def messages(lang: str, prefix: str = "") -> dict[str, str]:
    """Strings handed to a live module (JSON in the page), optionally only one prefix.

    Enum labels (``enum.channel.widget``…) and the ``common.`` strings of the shared code
    always come along: every module shows some.
    """
    out = {**keyed_items(lang, "enum."), **keyed_items(lang, "common.")} if prefix else {}
    out.update(keyed_items(lang, prefix))
    table = _MESSAGES.get(lang, _MESSAGES["en"])
    out.update({k: v for k, v in table.items() if k.startswith(prefix)})
    return out
