"""An application's task enum read without running the application: from its
source with :mod:`ast` (``path/to/file.py:TaskEnum``), or imported
(``package.module:TaskEnum``), and compared with a rules file's tasks.

Used by ``python -m redisprep rules check --task-enum SPEC`` and
``preflight --task-enum SPEC``.
"""

from __future__ import annotations

import ast
import importlib
import os
from enum import Enum
from typing import TYPE_CHECKING, Optional, Union

from .errors import ConfigError

if TYPE_CHECKING:
    from ._redisprep import Rules

__all__ = ["compare", "enum_members", "enum_values", "load_members", "unknown_tasks"]

Members = list[tuple[str, str]]


def _const_text(node: ast.expr) -> Union[str, None]:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)):
        if isinstance(node.value, bool):
            return None
        return str(node.value)
    return None


def _member_value(cls: ast.ClassDef, name: str, node: ast.expr) -> str:
    """A member's task value: a str (or int) literal, or the first item of a tuple
    (``('v', 'Label', 'emoji')``)."""
    text = _const_text(node)
    if text is None and isinstance(node, ast.Tuple) and node.elts:
        text = _const_text(node.elts[0])
    if text is None:
        raise ConfigError(
            f"{cls.name}.{name} (line {node.lineno}): the value is not a literal; "
            "read it by import instead (module:Enum)"
        )
    return text


def enum_members(cls: ast.ClassDef) -> Members:
    """``(member name, task value)`` for each member assigned in the class body, in
    order. Methods, nested classes and ``_sunder_``/``__dunder__`` names are not members."""
    out: Members = []
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if not isinstance(target, ast.Name) or target.id.startswith("_"):
            continue
        out.append((target.id, _member_value(cls, target.id, value)))
    return out


def _from_file(path: str, name: str) -> Members:
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: not valid Python: {e.msg}") from None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            members = enum_members(node)
            if not members:
                raise ConfigError(f"{path}: class {name} has no members")
            return members
    raise ConfigError(f"{path}: no top-level class {name}")


def _from_import(module: str, name: str) -> Members:
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"cannot import {module}: {e}") from None
    cls = getattr(mod, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Enum)):
        raise ConfigError(f"{module}.{name} is not an Enum class")
    return [(m.name, str(m)) for m in cls]


def load_members(spec: str) -> Members:
    """The members of the enum ``spec`` names: ``path/to/file.py:Class`` is read
    statically (nothing is imported or run), ``package.module:Class`` is imported.
    A bad spec, a missing file/module/class or a non-literal value raises ``ConfigError``."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise ConfigError(
            f"--task-enum {spec!r}: expected path/to/file.py:Class or package.module:Class"
        )
    if where.endswith(".py") or os.sep in where or "/" in where:
        return _from_file(where, name)
    if not all(part.isidentifier() for part in where.split(".")):
        raise ConfigError(f"--task-enum {spec!r}: {where!r} is neither a .py file nor a module")
    return _from_import(where, name)


def enum_values(spec: Optional[str]) -> list[str]:
    """The task values of the enum ``spec`` names, else of the task list in force."""
    if spec:
        return [value for _, value in load_members(spec)]
    from .task import task_enum

    return [str(m) for m in task_enum()]


def compare(values: list[str], rules_tasks: list[str]) -> tuple[list[str], list[str]]:
    """``(members with no rules entry, rules tasks that are not members)``, each in order."""
    members, tasks = set(values), set(rules_tasks)
    return [v for v in values if v not in tasks], [t for t in rules_tasks if t not in members]


def unknown_tasks(rules: Rules, values: list[str]) -> dict[str, list[str]]:
    """``{check: [task, ...]}``: the tasks each check reads that are neither in
    ``values`` nor marked legacy in the rules (checks reading none are left out)."""
    known = set(values) | set(rules.legacy_tasks)
    unknown = {c: [t for t in tasks if t not in known] for c, tasks in rules.check_tasks()}
    return {c: tasks for c, tasks in unknown.items() if tasks}
