"""Catalog maintenance: extract, update, check and absorb (``python -m omni.i18n_tools …``).

* ``extract``  — scan Python (domain error templates, ``_``/``_l``/``gettext``), Jinja2 templates
  and TypeScript (``t("…")``/``_("…")``, the widget's ``t.name`` as ``widget.name``) with Babel,
  write ``omni/locale/messages.pot`` and merge it into every ``<lang>/LC_MESSAGES/messages.po``
  (translations kept, new entries empty).
* ``absorb``   — what the merger runs after merging branches that still add strings the old way:
  moves ``register(en=…, ru=…)`` tables into the catalogs (and deletes them from the code),
  rewrites ``raise InvalidInput(f"…")`` into template + params, then ``extract``. Idempotent.
* ``check``    — lists raise sites that can't be translated, keys used in TypeScript that no
  catalog defines and entries without a Russian text (the same checks as ``tests/test_i18n.py``);
  exit status 1 when there are any.
* ``compile``  — ``.mo`` files for external gettext tools (Omni itself reads the ``.po``).

See docs/i18n.md for the workflow.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

from omni.i18n_tools.catalogs import (
    _read_catalog,
    _write_catalog,
    absorb,
    absorb_tables,
    compile_catalogs,
    extract,
    missing_translations,
    problems,
    unknown_keys,
)
from omni.i18n_tools.common import ERROR_CLASSES, MARKERS, MESSAGE_TAKERS, POT, ROOT, SOURCE_DIRS
from omni.i18n_tools.extractors import METHOD_MAP, OPTIONS_MAP, extract_python, extract_ts
from omni.i18n_tools.sites import Site, convert_file, python_files, raise_sites
from omni.i18n_tools.tables import registered_tables, strip_register_calls

__all__ = [
    "ERROR_CLASSES",
    "MARKERS",
    "MESSAGE_TAKERS",
    "METHOD_MAP",
    "OPTIONS_MAP",
    "POT",
    "ROOT",
    "SOURCE_DIRS",
    "Site",
    "_read_catalog",
    "_write_catalog",
    "absorb",
    "absorb_tables",
    "compile_catalogs",
    "convert_file",
    "extract",
    "extract_python",
    "extract_ts",
    "main",
    "missing_translations",
    "problems",
    "python_files",
    "raise_sites",
    "registered_tables",
    "strip_register_calls",
    "unknown_keys",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omni.i18n_tools", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("extract", "absorb", "check", "compile", "convert"))
    parser.add_argument("paths", nargs="*", help="convert: files to rewrite (default: all)")
    args = parser.parse_args(argv)
    lines: Iterable[str]
    if args.command == "extract":
        entries, unknown = extract()
        lines = [f"catalog entries: {entries}", *(f"unknown key: {u}" for u in unknown)]
    elif args.command == "absorb":
        lines = absorb()
        lines = [*lines, *problems()]
    elif args.command == "convert":
        files = [Path(p) for p in args.paths] or python_files()
        lines = [f"converted: {sum(convert_file(p) for p in files)}"]
    elif args.command == "compile":
        lines = [f"wrote {p}" for p in compile_catalogs()]
    else:
        found = problems()
        for line in found:
            print(line)
        return 1 if found else 0
    for line in lines:
        print(line)
    return 0
