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
import ast
import importlib
import io
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from omni import i18n

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("omni", "bots", "channels")
POT = i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot"
ERROR_CLASSES = frozenset(
    {
        "DomainError",
        "InvalidInput",
        "NotFound",
        "PermissionDenied",
        "NotAuthenticated",
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


# --- extractors (Babel's interface) ---------------------------------------------------------


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


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


# --- raise sites ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    path: str
    line: int
    problem: str  # "f-string" | "untranslated" | "" (fine)
    text: str


def python_files(root: Path = ROOT) -> list[Path]:
    out: list[Path] = []
    for top in SOURCE_DIRS:
        out.extend(p for p in sorted((root / top).rglob("*.py")) if "node_modules" not in p.parts)
    return out


def _is_super_init(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "__init__"
        and isinstance(func.value, ast.Call)
        and _call_name(func.value.func) == "super"
    )


def error_calls(tree: ast.AST) -> Iterator[ast.Call]:
    """Constructions of domain errors, ``super().__init__(…)`` in their subclasses included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node.func) in ERROR_CLASSES and node.args:
            yield node
        elif isinstance(node, ast.ClassDef) and {_call_name(b) for b in node.bases} & ERROR_CLASSES:
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and _is_super_init(inner) and inner.args:
                    yield inner


def raise_sites(root: Path = ROOT) -> list[Site]:
    """Every error construction over omni/, bots/, channels/ with what is wrong with it."""
    plain = i18n.catalog("ru").plain
    sites: list[Site] = []
    for path in python_files(root):
        rel = str(path.relative_to(root))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in error_calls(tree):
            first = call.args[0]
            if isinstance(first, ast.JoinedStr):
                sites.append(Site(rel, call.lineno, "f-string", ast.unparse(first)))
            elif isinstance(first, ast.Constant) and isinstance(first.value, str):
                problem = "" if plain.get(first.value) else "untranslated"
                sites.append(Site(rel, call.lineno, problem, first.value))
            elif isinstance(first, ast.BinOp | ast.Call) and not (
                isinstance(first, ast.Call) and _call_name(first.func) in MARKERS | {"t"}
            ):
                sites.append(Site(rel, call.lineno, "computed", ast.unparse(first)))
        for node in ast.walk(tree):
            # A message handed on to be raised elsewhere (``_ensure_unique(message=…)``, ``_l(…)``).
            if not isinstance(node, ast.Call):
                continue
            takes_message = _call_name(node.func) in MESSAGE_TAKERS
            texts = [k.value for k in node.keywords if k.arg == "message" and takes_message]
            if _call_name(node.func) in MARKERS and node.args:
                texts.append(node.args[0])
            for text in texts:
                if isinstance(text, ast.JoinedStr):
                    sites.append(Site(rel, node.lineno, "f-string", ast.unparse(text)))
                elif isinstance(text, ast.Constant) and not plain.get(str(text.value)):
                    sites.append(Site(rel, node.lineno, "untranslated", str(text.value)))
    return sites


_RESERVED = {"field": "field_name", "errors": "error_list", "message": "text", "self": "obj"}


def _param_name(expr: ast.expr) -> str:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if isinstance(expr, ast.Subscript):
        key = expr.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.isidentifier():
            return key.value
        return _param_name(expr.value)
    if isinstance(expr, ast.Call):
        if isinstance(expr.func, ast.Attribute) and expr.func.attr == "join" and expr.args:
            return _param_name(expr.args[0])
        return _call_name(expr.func) or "value"
    if isinstance(expr, ast.GeneratorExp | ast.ListComp):
        return _param_name(expr.generators[0].iter)
    return "value"


def _template(
    fstring: ast.JoinedStr, source: str, field_src: str | None
) -> tuple[str, list[tuple[str, str]]] | None:
    """An f-string as a ``str.format`` template and its ``name=expression`` params."""
    parts: list[str] = []
    params: dict[str, str] = {}
    for value in fstring.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value).replace("{", "{{").replace("}", "}}"))
            continue
        if not isinstance(value, ast.FormattedValue):
            return None
        expr_src = ast.get_source_segment(source, value.value) or ast.unparse(value.value)
        if field_src is not None and expr_src == field_src:
            name = "field"
        else:
            base = _param_name(value.value)
            base = _RESERVED.get(base, base)
            base = base.lower() if base.isupper() else base
            if not base.isidentifier() or base.startswith("_"):
                base = "value" if not base.strip("_") else base.strip("_")
            name, n = base, 2
            while name in params and params[name] != expr_src:
                name, n = f"{base}{n}", n + 1
            params[name] = expr_src
        conv = {-1: "", 115: "!s", 114: "!r", 97: "!a"}[value.conversion]
        spec = ""
        if value.format_spec is not None:
            if not isinstance(value.format_spec, ast.JoinedStr) or not all(
                isinstance(v, ast.Constant) for v in value.format_spec.values
            ):
                return None
            spec = ":" + "".join(str(v.value) for v in value.format_spec.values)  # type: ignore[attr-defined]  # all Constant, checked above
        parts.append("{" + name + conv + spec + "}")
    return "".join(parts), list(params.items())


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _wrapped(template: str, indent: int, multiline: bool) -> str:
    """The template as one literal, or as implicitly joined lines when the original was split."""
    if not multiline and len(template) < 80:
        return _literal(template)
    chunks: list[str] = []
    current = ""
    for word in re.split(r"(?<= )", template):
        if current and len(current) + len(word) > 72:
            chunks.append(current)
            current = ""
        current += word
    chunks.append(current)
    if len(chunks) == 1:
        return _literal(template)
    return ("\n" + " " * indent).join(_literal(c) for c in chunks)


def convert_file(path: Path) -> int:
    """Rewrite f-string error messages of one file into templates + params; returns how many."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode("utf-8")))
    edits: list[tuple[int, int, str]] = []
    for call in error_calls(tree):
        first = call.args[0]
        if not isinstance(first, ast.JoinedStr):
            continue
        field_kw = next((k for k in call.keywords if k.arg == "field"), None)
        field_src = ast.get_source_segment(source, field_kw.value) if field_kw is not None else None
        built = _template(first, source, field_src)
        if built is None:
            continue
        template, params = built
        if field_kw is not None and isinstance(field_kw.value, ast.JoinedStr):
            field_built = _template(field_kw.value, source, None)
            if field_built is not None and field_built[0] in template:
                template = template.replace(field_built[0], "{field}")
                params = [(n, e) for n, e in params if "{" + n in template]
        taken = {k.arg for k in call.keywords}
        if any(name in taken for name, _ in params):
            continue
        text = _wrapped(template, first.col_offset, first.lineno != first.end_lineno)
        text += "".join(f", {name}={expr}" for name, expr in params)
        assert first.end_lineno is not None and first.end_col_offset is not None
        start = offsets[first.lineno - 1] + first.col_offset
        end = offsets[first.end_lineno - 1] + first.end_col_offset
        edits.append((start, end, text))
    if not edits:
        return 0
    data = source.encode("utf-8")
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text.encode("utf-8") + data[end:]
    path.write_text(data.decode("utf-8"), encoding="utf-8")
    return len(edits)


# --- registered tables → catalog ------------------------------------------------------------


def registered_tables() -> dict[str, dict[str, str]]:
    """Import every page module so their ``register()`` calls run; their tables by language."""
    for name in REGISTER_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    from omni.web.i18n import registered

    return registered()


def _register_statements(tree: ast.Module) -> list[ast.stmt]:
    """Module-level ``register(...)`` calls and the ``_STRINGS`` tables only they use."""
    out: list[ast.stmt] = []
    used_names: set[str] = set()
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Call)
            and _call_name(stmt.value.func) == "register"
        ):
            out.append(stmt)
            used_names |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    other_uses: set[str] = set()
    for stmt in tree.body:
        if stmt in out:
            continue
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = list(stmt.targets)
        elif isinstance(stmt, ast.AnnAssign):
            targets = [stmt.target]
        names = {t.id for t in targets if isinstance(t, ast.Name)}
        if names and names <= used_names:
            out.append(stmt)
        else:
            other_uses |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    return [s for s in out if not (isinstance(s, ast.Assign | ast.AnnAssign) and _assigned(s) & other_uses)]


def _assigned(stmt: ast.stmt) -> set[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]  # type: ignore[attr-defined]  # Assign | AnnAssign
    return {t.id for t in targets if isinstance(t, ast.Name)}


def strip_register_calls(path: Path) -> bool:
    """Delete the ``register(...)`` tables of a module (their strings are in the catalog now)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    stmts = _register_statements(tree)
    if not stmts:
        return False
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()
    for stmt in stmts:
        assert stmt.end_lineno is not None
        drop |= set(range(stmt.lineno - 1, stmt.end_lineno))
    kept = [line for i, line in enumerate(lines) if i not in drop]
    text = re.sub(r"\n{4,}", "\n\n\n", "".join(kept)).rstrip("\n") + "\n"
    if not any(
        _call_name(n.func) == "register" for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Call)
    ):
        text = re.sub(r"^(from omni\.web\.i18n import .*)\bregister, |, register\b", r"\1", text, flags=re.M)
        text = re.sub(r"^from omni\.web\.i18n import register\n", "", text, flags=re.M)
    path.write_text(text, encoding="utf-8")
    return True


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


if __name__ == "__main__":
    sys.exit(main())
