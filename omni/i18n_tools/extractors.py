"""Babel extractors for Omni's Python (domain error templates, markers) and TypeScript."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import IO, Any

from omni.i18n_tools.common import (
    MARKERS,
    _call_name,
)
from omni.i18n_tools.sites import error_calls

# --- extractors (Babel's interface) ---------------------------------------------------------


def extract_python(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor: first string argument of error classes, ``_``, ``_l`` and ``gettext``."""
    tree = ast.parse(fileobj.read())
    calls = list(error_calls(tree))
    calls += [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args and _call_name(n.func) in MARKERS
    ]
    for node in calls:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value:
            yield node.lineno, "_", first.value, []  # "_": a keyword Babel knows


_TS_CALL = re.compile(r"""\b(?:t|_)\(\s*(?P<q>["'`])(?P<text>(?:\\.|(?!(?P=q)).)*)(?P=q)""", re.S)


def _table_keys(options: Any) -> list[tuple[str, str]]:
    """``table_keys = t:widget.`` (babel.cfg option): ``t.<name>`` means key ``widget.<name>``."""
    spec = str((options or {}).get("table_keys", ""))
    return [tuple(item.split(":", 1)) for item in spec.split() if ":" in item]  # type: ignore[misc]


def extract_ts(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor for TypeScript: string literals passed to ``t(…)`` / ``_(…)``, and the
    property reads of a table named by the ``table_keys`` option (the widget's ``t.open``)."""
    source = fileobj.read().decode("utf-8")
    for table, prefix in _table_keys(options):
        # The widget reads its texts as properties of a generated table (``t.open``) rather
        # than through ``t("…")``: each property is the key ``<prefix><name>``.
        for match in re.finditer(rf"(?<![\w$.]){re.escape(table)}\.([A-Za-z_]\w*)", source):
            yield source.count("\n", 0, match.start()) + 1, "t", prefix + match.group(1), []
    for match in _TS_CALL.finditer(source):
        text = match.group("text")
        if "${" in text:
            continue  # a computed key (`op.state.${s}`): the catalog lists those keys itself
        lineno = source.count("\n", 0, match.start()) + 1
        yield lineno, "t", text.encode().decode("unicode_escape"), []


METHOD_MAP = [
    ("omni/**.py", "omni.i18n_tools:extract_python"),
    ("bots/**.py", "omni.i18n_tools:extract_python"),
    ("channels/**.py", "omni.i18n_tools:extract_python"),
    ("omni/templates/**.html", "jinja2.ext:babel_extract"),
    ("omni/web/ui/src/**.ts", "omni.i18n_tools:extract_ts"),
    ("widget/src/**.ts", "omni.i18n_tools:extract_ts"),
]
"""Also in babel.cfg (for ``pybabel extract -F babel.cfg``); keep the two in step."""
OPTIONS_MAP = {
    "omni/templates/**.html": {"extensions": "jinja2.ext.do", "silent": "false"},
    "widget/src/**.ts": {"table_keys": "t:widget."},
}
"""Extractor options by METHOD_MAP pattern (the option lines of babel.cfg)."""
