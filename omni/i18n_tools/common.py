"""Where the sources and the catalog are, and which calls carry translatable text."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from omni import i18n

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("omni", "bots", "channels")
POT = i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot"
ERROR_CLASSES = frozenset(
    {
        "DomainError",
        "InvalidInput",
        "NotFound",
        "PermissionDenied",
        "NotAuthenticated",
        "OtpRequired",
        "Conflict",
        "TooManyRequests",
        "InvalidBotToken",
        "TelegramUnreachable",
    }
)
"""Calls whose first argument is a catalog template (the domain error classes)."""
MARKERS = frozenset({"_", "_l", "gettext"})
MESSAGE_TAKERS = frozenset({"_ensure_unique"})
"""Helpers that raise a domain error with the ``message=`` they are given."""
KEY_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)+$")
"""What a key looks like (``adm.f.name``); ``t("…")`` arguments that match are keys, not text."""
REGISTER_MODULES = (
    "omni.web.i18n",
    "omni.web.admin",
    "omni.web.operator",
    "omni.web.supervisor",
    "omni.web.builder",
)
PYTHON_KEYWORDS = {**{name: None for name in ERROR_CLASSES}, **{name: None for name in MARKERS}}


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""
