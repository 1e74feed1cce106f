"""Raise sites of domain errors: find the ones a catalog can't translate, and rewrite them."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from omni import i18n
from omni.i18n_tools.common import (
    ERROR_CLASSES,
    MARKERS,
    MESSAGE_TAKERS,
    ROOT,
    SOURCE_DIRS,
    _call_name,
)

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
