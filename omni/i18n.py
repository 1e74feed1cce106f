"""Message catalogs: every user-facing string in Russian and English, read from gettext ``.po`` files.

Why ``.po``: it is the format translators and their tools (Poedit, Weblate, Lokalize) use, and
Babel extracts it from Python, Jinja2 and TypeScript (``docs/i18n.md``). The catalogs live in
``omni/locale/<lang>/LC_MESSAGES/messages.po``; they are parsed at first use (a few hundred
entries, milliseconds), so a clean checkout runs without a compile step and nothing generated
is committed.

Two kinds of entries share one catalog:

* **plain** — ``msgid`` is the English text (a domain error template such as
  ``"{field} must be at most {max_len} characters"``); English needs no catalog.
* **keyed** — ``msgctxt`` is a stable key used by pages and the TypeScript modules
  (``"adm.f.name"``), ``msgid`` the English text, ``msgstr`` the translation. Keys keep templates
  and ``t("…")`` calls short and let English wording change without touching code.

This module is transport-neutral (the domain may import it); transports decide the language.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omni.domain.errors import DomainError

LANGUAGES = ("en", "ru")
SOURCE_LANGUAGE = "en"
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANG_COOKIE = "omni_lang"
"""The language picked on the login page or in the header (wins over the user's setting)."""


def _l(text: str) -> str:
    """Marks a string for extraction where it is defined, translated later where it is shown."""
    return text


@dataclass
class Catalog:
    plain: dict[str, str] = field(default_factory=dict)
    """English text → translation (only non-empty translations)."""
    keyed: dict[str, str] = field(default_factory=dict)
    """Key (``msgctxt``) → text in this language (English: the ``msgid``)."""


def po_path(lang: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read(path: Path) -> Any:
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        return read_po(fh, locale=path.parent.parent.name, domain=DOMAIN)


@functools.cache
def catalog(lang: str) -> Catalog:
    """The parsed catalog of one language; English is built from the msgids of the others."""
    out = Catalog()
    if lang == SOURCE_LANGUAGE:
        for other in LANGUAGES:
            path = po_path(other)
            if other != SOURCE_LANGUAGE and path.exists():
                for msg in _read(path):
                    if msg.id and msg.context:
                        out.keyed.setdefault(msg.context, str(msg.id))
    path = po_path(lang)
    if path.exists():
        for msg in _read(path):
            if not msg.id or not msg.string or msg.fuzzy:
                continue
            if msg.context:
                out.keyed[msg.context] = str(msg.string)
            else:
                out.plain[str(msg.id)] = str(msg.string)
    return out


def reload() -> None:
    """Forget parsed catalogs (after ``omni.i18n_tools`` rewrote them)."""
    catalog.cache_clear()


def normalize(lang: str | None) -> str:
    return lang if lang is not None and lang in LANGUAGES else SOURCE_LANGUAGE


def pick_language(preferred: str | None, accept_language: str = "") -> str:
    """The user's own choice first, then the browser's ``Accept-Language``, then English."""
    if preferred in LANGUAGES:
        return str(preferred)
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return SOURCE_LANGUAGE


def render(template: str, params: Mapping[str, object]) -> str:
    """``str.format`` that never raises: a template with stray braces is shown as written."""
    try:
        return template.format_map(dict(params))
    except (KeyError, IndexError, ValueError, AttributeError):
        return template


def gettext(lang: str, text: str, /, **params: object) -> str:
    """The translation of an English text (itself when there is none), with ``{name}`` filled in."""
    translated = catalog(normalize(lang)).plain.get(text, text) if lang != SOURCE_LANGUAGE else text
    return render(translated, params) if params else translated


def keyed(lang: str, key: str) -> str | None:
    """The text of a key in ``lang`` (English when untranslated); ``None`` for an unknown key."""
    lang = normalize(lang)
    return catalog(lang).keyed.get(key) or catalog(SOURCE_LANGUAGE).keyed.get(key)


def keyed_items(lang: str, prefix: str = "") -> dict[str, str]:
    """Every key starting with ``prefix`` → its text in ``lang``."""
    lang = normalize(lang)
    out = {k: v for k, v in catalog(SOURCE_LANGUAGE).keyed.items() if k.startswith(prefix)}
    out.update({k: v for k, v in catalog(lang).keyed.items() if k.startswith(prefix)})
    return out


def localize(exc: DomainError, lang: str, field_label: str | None = None) -> str:
    """A domain error's message in ``lang``: its template translated, then its params filled in.

    ``field_label``: how the page names the field (a form shows "Название", not ``name``).
    """
    params: dict[str, object] = {"field": field_label or exc.field, **exc.params}
    for name, value in params.items():
        if isinstance(value, Label):
            params[name] = value.show(lang)
        elif callable(getattr(value, "localized", None)):  # a refusal quoting another one
            params[name] = value.localized(lang)  # type: ignore[attr-defined]  # checked just above
    return gettext(lang, exc.template, **params)


@dataclass(frozen=True)
class Label:
    """An enum value in a message (``conv.status``) shown by its label in the reader's language."""

    group: str
    value: str

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def show(self, lang: str) -> str:
        return enum_label(lang, self.group, self.value)


def enum_label(lang: str, group: str, value: object) -> str:
    """``enum_label("ru", "strategy", "longest_idle")`` → "Дольше всех свободен"; unknown → value."""
    text = str(value.value if hasattr(value, "value") else value)
    return keyed(lang, f"enum.{group}.{text}") or text


def enum_options(lang: str, group: str, values: Any) -> list[tuple[str, str]]:
    """``(value, label)`` pairs for a ``<select>``."""
    out = []
    for v in values:
        text = str(v.value if hasattr(v, "value") else v)
        out.append((text, enum_label(lang, group, text)))
    return out


def enum_labels(lang: str) -> dict[str, dict[str, str]]:
    """Every enum label by group, for the live modules: ``{"status": {"queued": "В очереди"}}``."""
    out: dict[str, dict[str, str]] = {}
    for key, text in keyed_items(lang, "enum.").items():
        _, group, value = key.split(".", 2)
        out.setdefault(group, {})[value] = text
    return out


def error_body(exc: DomainError, lang: str) -> dict[str, Any]:
    """The wire shape of a refusal (REST body, Socket.IO ack): ``detail`` in the caller's language.

    ``errors`` lists every field's problem when validation found several (forms show them all).
    """
    body: dict[str, Any] = {"error": exc.code, "detail": localize(exc, lang)}
    if exc.field:
        body["field"] = exc.field
    if exc.errors:
        body["errors"] = [{"field": e.field, "detail": localize(e, lang)} for e in exc.errors]
    return body


def translate_func(lang: str) -> Callable[[str], str]:
    """``_`` for Jinja2 templates: plain English text → ``lang``."""

    def _(text: str, /, **params: object) -> str:
        return gettext(lang, text, **params)

    return _
