"""The catalogs themselves: extract, merge, check, compile, absorb."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from omni import i18n
from omni.i18n_tools.common import (
    KEY_RE,
    POT,
    PYTHON_KEYWORDS,
    REGISTER_MODULES,
    ROOT,
)
from omni.i18n_tools.extractors import METHOD_MAP, OPTIONS_MAP, extract_ts
from omni.i18n_tools.sites import convert_file, python_files, raise_sites
from omni.i18n_tools.tables import registered_tables, strip_register_calls

# --- catalogs -------------------------------------------------------------------------------


def _read_catalog(path: Path, locale: str | None) -> Any:
    from babel.messages.catalog import Catalog

    if not path.exists():
        return Catalog(locale=locale, domain=i18n.DOMAIN, project="Omni", fuzzy=False)
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        return read_po(fh, locale=locale, domain=i18n.DOMAIN)


def _write_catalog(catalog: Any, path: Path) -> None:
    from babel.messages.pofile import write_po

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    write_po(buf, catalog, width=100, omit_header=False, sort_output=True, include_lineno=False)
    text = re.sub(rb'"POT-Creation-Date: [^"]*\\n"\n', b"", buf.getvalue())
    text = re.sub(rb'"PO-Revision-Date: [^"]*\\n"\n', b"", text)
    text = re.sub(rb'"Generated-By: [^"]*\\n"\n', b"", text)
    if not path.exists() or path.read_bytes() != text:
        path.write_bytes(text)


def absorb_tables(tables: dict[str, dict[str, str]]) -> int:
    """Put code-registered keyed strings into every catalog (code wins: it is the newer text)."""
    changed = 0
    for lang in i18n.LANGUAGES:
        if lang == i18n.SOURCE_LANGUAGE:
            continue
        path = i18n.po_path(lang)
        catalog = _read_catalog(path, lang)
        for key, english in tables.get("en", {}).items():
            text = tables.get(lang, {}).get(key, "")
            old = catalog.get(english, context=key)
            if old is not None and old.string == text:
                continue
            for msg in [m for m in catalog if m.context == key]:
                catalog.delete(msg.id, context=key)
            catalog.add(english, text, context=key)
            changed += 1
        _write_catalog(catalog, path)
    i18n.reload()
    return changed


def extract(root: Path = ROOT) -> tuple[int, list[str]]:
    """Write the .pot and merge it into each .po; returns (entries, keys used but unknown)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    ru = _read_catalog(i18n.po_path("ru"), "ru")
    english_of = {m.context: m.id for m in ru if m.context and m.id}
    english_of.update(registered_tables().get("en", {}))
    pot = Catalog(project="Omni", domain=i18n.DOMAIN, fuzzy=False)
    unknown: list[str] = []
    key_locations: dict[str, list[tuple[str, int]]] = {}
    for top in ("omni", "bots", "channels", "widget/src"):
        base = root / top
        method_map = [
            (pat.split("/", 1)[1] if pat.startswith(top + "/") else pat, method)
            for pat, method in METHOD_MAP
            if pat.startswith(top + "/")
        ]
        method_map = [
            (p.removeprefix("src/"), meth) if top == "widget/src" else (p, meth) for p, meth in method_map
        ]
        prefix = top + "/"
        options = {p.removeprefix(prefix): opts for p, opts in OPTIONS_MAP.items() if p.startswith(prefix)}
        for filename, lineno, message, comments, context in extract_from_dir(
            base,
            method_map,
            options_map=options,
            keywords={**PYTHON_KEYWORDS, "t": None},
        ):
            if isinstance(message, tuple):
                message = message[0]
            if not message:
                continue
            where = (f"{top}/{filename}", lineno)
            if KEY_RE.match(message):
                if message not in english_of:
                    unknown.append(f"{where[0]}:{lineno}: {message}")
                key_locations.setdefault(message, []).append(where)
                continue
            pot.add(message, locations=[where], auto_comments=comments, context=context)
    for key, english in english_of.items():
        pot.add(english, context=key, locations=key_locations.get(key, []))
    _write_catalog(pot, POT)
    for lang in i18n.LANGUAGES:
        if lang == i18n.SOURCE_LANGUAGE:
            continue
        path = i18n.po_path(lang)
        catalog = _read_catalog(path, lang)
        catalog.update(pot, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        _write_catalog(catalog, path)
    i18n.reload()
    return len(pot), sorted(set(unknown))


def missing_translations(lang: str = "ru", locale_dir: Path = i18n.LOCALE_DIR) -> list[str]:
    """Catalog entries without a translation in ``lang`` (the widget's ``widget.*`` included)."""
    catalog = _read_catalog(i18n.po_path(lang, locale_dir), lang)
    return [
        f"{m.context + ': ' if m.context else ''}{m.id}"
        for m in catalog
        if m.id and (not m.string or m.fuzzy)
    ]


def compile_catalogs() -> list[Path]:
    from babel.messages.mofile import write_mo

    out = []
    for lang in i18n.LANGUAGES:
        path = i18n.po_path(lang)
        if path.exists():
            target = path.with_suffix(".mo")
            with target.open("wb") as fh:
                write_mo(fh, _read_catalog(path, lang))
            out.append(target)
    return out


def absorb(root: Path = ROOT) -> list[str]:
    """Everything the merger runs once after merging: see the module docstring."""
    report: list[str] = []
    tables = registered_tables()
    moved = absorb_tables(tables)
    report.append(f"registered strings moved into the catalogs: {moved}")
    touched: list[Path] = []
    for name in REGISTER_MODULES:
        path = root / (name.replace(".", "/") + ".py")
        if path.exists() and strip_register_calls(path):
            touched.append(path)
            report.append(f"removed register() tables from {path.relative_to(root)}")
    converted = 0
    for path in python_files(root):
        count = convert_file(path)
        if count:
            converted += count
            touched.append(path)
    report.append(f"f-string error messages turned into templates: {converted}")
    if touched:
        # The rewrites keep line structure only roughly; let the project's formatter settle it.
        done = subprocess.run(  # noqa: S603  # our own interpreter and file names
            [sys.executable, "-m", "ruff", "format", *map(str, touched)], check=False, capture_output=True
        )
        report.append("ruff format: " + ("done" if done.returncode == 0 else "not run (format by hand)"))
    entries, unknown = extract(root)
    report.append(f"catalog entries: {entries}")
    report.extend(f"unknown key: {u}" for u in unknown)
    return report


def unknown_keys(root: Path = ROOT) -> list[str]:
    """Keys the TypeScript uses (``t("op.x")``, the widget's ``t.x``) that no catalog defines:
    they would show as the bare key, or break the widget's build."""
    known = set(i18n.catalog(i18n.SOURCE_LANGUAGE).keyed)
    out: list[str] = []
    for pattern, method in METHOD_MAP:
        if not method.endswith(":extract_ts"):
            continue
        for path in sorted((root / pattern.split("/**")[0]).rglob("*.ts")):
            if "node_modules" in path.parts:
                continue
            with path.open("rb") as fh:
                for line, _, key, _ in extract_ts(fh, {}, [], OPTIONS_MAP.get(pattern, {})):
                    if KEY_RE.match(key) and key not in known:
                        out.append(f"{path.relative_to(root)}:{line}: unknown key: {key}")
    return out


def problems(root: Path = ROOT) -> list[str]:
    out = [f"{s.path}:{s.line}: {s.problem}: {s.text}" for s in raise_sites(root) if s.problem]
    out.extend(unknown_keys(root))
    out.extend(f"no Russian text: {m}" for m in missing_translations("ru"))
    return out
