"""``register(en=…, ru=…)`` tables (the old way of adding strings) → the catalogs."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from omni.i18n_tools.common import (
    REGISTER_MODULES,
    _call_name,
)

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
