"""Read an ``Enum`` class's members statically (``ast``; nothing is imported)."""

from __future__ import annotations

import ast
from typing import Optional

__all__ = ["enum_members"]


def _value(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Tuple) and node.elts:  # ``name = ("value", "label", ...)``
        return _value(node.elts[0])
    return None


def enum_members(cls: ast.ClassDef) -> list[tuple[str, str]]:
    """``(member name, task value)`` for each ``name = 'value'`` (or tuple whose first
    item is the value) in the class body, in order. Private and dunder names, methods
    and non-string values are not members."""
    out: list[tuple[str, str]] = []
    for stmt in cls.body:
        target: Optional[ast.expr] = None
        value: Optional[ast.expr] = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        if not isinstance(target, ast.Name) or value is None or target.id.startswith("_"):
            continue
        v = _value(value)
        if v is not None:
            out.append((target.id, v))
    return out
