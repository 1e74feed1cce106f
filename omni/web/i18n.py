"""Russian and English strings for the server-rendered pages and the live modules.

Each page module registers its own strings with :func:`register`, so modules never edit one
shared dictionary; a missing key shows the key itself (visible in review, never a crash).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

LANGUAGES = ("en", "ru")
_MESSAGES: dict[str, dict[str, str]] = {"en": {}, "ru": {}}


def register(en: Mapping[str, str], ru: Mapping[str, str]) -> None:
    """Add a module's strings; both languages must carry the same keys."""
    missing = set(en) ^ set(ru)
    if missing:
        raise ValueError(f"strings without a translation: {sorted(missing)}")
    _MESSAGES["en"].update(en)
    _MESSAGES["ru"].update(ru)


def pick_language(preferred: str | None, accept_language: str = "") -> str:
    """The user's own choice first, then the browser's ``Accept-Language``, then English."""
    if preferred in LANGUAGES:
        return str(preferred)
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def translator(lang: str) -> Callable[..., str]:
    table = _MESSAGES.get(lang, _MESSAGES["en"])

    def t(key: str, **values: object) -> str:
        text = table.get(key) or _MESSAGES["en"].get(key) or key
        return text.format(**values) if values else text

    return t


def messages(lang: str, prefix: str = "") -> dict[str, str]:
    """Strings handed to a live module (JSON in the page), optionally only one prefix."""
    table = _MESSAGES.get(lang, _MESSAGES["en"])
    return {k: v for k, v in table.items() if k.startswith(prefix)}


register(
    en={
        "app.name": "Omni",
        "nav.operator": "Workspace",
        "nav.supervisor": "Monitoring",
        "nav.admin": "Administration",
        "nav.logout": "Log out",
        "nav.language": "Language",
        "login.title": "Sign in",
        "login.username": "Username",
        "login.password": "Password",
        "login.submit": "Sign in",
        "login.failed": "Wrong username or password.",
        "login.required": "Enter your username and password.",
        "login.throttled": "Too many failed attempts. Wait a minute and try again.",
        "error.forbidden": "You do not have access to this page.",
        "error.csrf": "The form has expired. Reload the page and try again.",
        "form.save": "Save",
        "form.saved": "Saved.",
        "form.cancel": "Cancel",
        "form.delete": "Delete",
        "form.create": "Create",
        "form.errors": "Please correct the highlighted fields.",
    },
    ru={
        "app.name": "Omni",
        "nav.operator": "Рабочее место",
        "nav.supervisor": "Мониторинг",
        "nav.admin": "Администрирование",
        "nav.logout": "Выйти",
        "nav.language": "Язык",
        "login.title": "Вход",
        "login.username": "Логин",
        "login.password": "Пароль",
        "login.submit": "Войти",
        "login.failed": "Неверный логин или пароль.",
        "login.required": "Введите логин и пароль.",
        "login.throttled": "Слишком много неудачных попыток. Подождите минуту и попробуйте снова.",
        "error.forbidden": "У вас нет доступа к этой странице.",
        "error.csrf": "Форма устарела. Обновите страницу и попробуйте снова.",
        "form.save": "Сохранить",
        "form.saved": "Сохранено.",
        "form.cancel": "Отмена",
        "form.delete": "Удалить",
        "form.create": "Создать",
        "form.errors": "Исправьте отмеченные поля.",
    },
)
