"""The task list the migration reads names against: the application's own ``TaskEnum``.

wepppy owns its task list (``class TaskEnum`` in ``wepppy/nodb/redis_prep.py``, next
to the ``RedisPrep`` its code imports) and adds members over time. The analysed tree
is searched for that class and its members are read statically
(:func:`redisprep._enum_ast.enum_members`); ``TaskEnum.x`` then resolves to the
value the application gives ``x``. When the tree holds no such class, the copy
bundled with redisprep is used, and the output says so.
"""

from __future__ import annotations

import ast
from typing import Any, Optional

from .._enum_ast import enum_members
from ..errors import ConfigError
from ..task import TaskEnum
from .index import Project

__all__ = ["TaskNames", "find_task_enum"]


class TaskNames:
    """Member name -> task value, and back."""

    def __init__(self, members: list[tuple[str, str]], source: Optional[str]) -> None:
        self.members = dict(members)
        self.values = {v for _, v in members}
        self.source = source
        """``path:line`` of the application's class, or ``None`` for the bundled copy."""

    @classmethod
    def bundled(cls) -> TaskNames:
        return cls([(m.name, str(m)) for m in TaskEnum], None)

    def value(self, name: str) -> str:
        """The task value of a member name (``fetch_rap_ts`` -> ``build_rap_ts``)."""
        return self.members.get(name, name)

    def is_task(self, text: str) -> bool:
        """A member name or value."""
        return text in self.values or text in self.members

    def names_of(self, value: str) -> list[str]:
        return [n for n, v in self.members.items() if v == value]

    def member(self, value: str) -> str:
        return next(iter(self.names_of(value)), value)

    def describe(self) -> str:
        if self.source is None:
            return (
                "task names: no application TaskEnum found in the analysed tree; "
                "using redisprep's bundled copy"
            )
        return f"task names: the application's TaskEnum at {self.source}"

    def to_json(self) -> dict[str, Any]:
        return {"source": "application" if self.source else "bundled", "where": self.source}


def _binds_prep(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "RedisPrep" for a in node.names):
            return True
        if isinstance(node, ast.ClassDef) and node.name == "RedisPrep":
            return True
    return False


def find_task_enum(project: Project) -> TaskNames:
    """The application's ``TaskEnum`` (a module-level class of that name, preferring
    one defined next to ``RedisPrep``), else the bundled copy."""
    found: list[tuple[int, str, str, ast.ClassDef]] = []
    for mod in project.modules.values():
        if "class TaskEnum" not in mod.text:
            continue
        for node in mod.tree.body:
            if isinstance(node, ast.ClassDef) and node.name == "TaskEnum":
                rank = 0 if _binds_prep(mod.tree) else 1
                found.append((rank, mod.name, mod.where(node), node))
    for _, _, where, node in sorted(found, key=lambda f: f[:2]):
        try:
            members = enum_members(node)
        except ConfigError:  # a member whose value is not a literal: not readable statically
            continue
        if members:
            return TaskNames(members, where)
    return TaskNames.bundled()
