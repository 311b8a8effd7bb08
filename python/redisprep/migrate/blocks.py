"""The calls of a function body, in order, grouped by the branches they run in.

Only the structure the proof needs is kept:

- an ``if``/``elif`` chain **with** a final ``else`` runs exactly one arm
  (:class:`Branches`): a task is stamped after it only if every arm stamps it, like
  a job chosen at run time (``job_fn = a if cond else b``);
- ``except`` handlers run only when something failed (:class:`Maybe`): what they
  stamp is never proof;
- everything else is taken as it reads: the body of an ``if`` without ``else`` (the
  ``if prep is not None:`` guard), loop bodies (``for task in tasks: prep.timestamp(task)``),
  ``with`` and ``try`` bodies, ``finally``.

Nested functions, classes and lambdas are not part of the body: they run when called.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

__all__ = ["Block", "Branches", "Maybe", "structure"]


@dataclass
class Branches:
    arms: list[Block]
    lines: list[int] = field(default_factory=list)
    """Where each arm starts (its ``if``/``elif`` line, or the first line of the ``else``)."""


@dataclass
class Maybe:
    block: Block
    line: int = 0
    """The ``except`` handler's (or the ``match``'s) line."""
    kind: str = "except"


@dataclass
class Block:
    items: list[Union[ast.Call, Branches, Maybe]] = field(default_factory=list)


def _calls(node: ast.AST) -> Iterator[ast.Call]:
    """Calls in an expression (or a simple statement), in source order, not descending
    into lambdas, nested functions or classes."""
    found: list[ast.Call] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(n, ast.Call):
            found.append(n)
        stack.extend(ast.iter_child_nodes(n))
    found.sort(key=lambda c: (c.lineno, c.col_offset))
    return iter(found)


def _if_chain(stmt: ast.If, block: Block) -> None:
    arms: list[Block] = []
    lines: list[int] = []
    cur: ast.stmt = stmt
    while isinstance(cur, ast.If):
        block.items.extend(_calls(cur.test))
        arms.append(structure(cur.body))
        lines.append(cur.lineno)
        if len(cur.orelse) == 1 and isinstance(cur.orelse[0], ast.If):
            cur = cur.orelse[0]
            continue
        if not cur.orelse:  # no else: the guard is taken as it reads
            for arm in arms:
                block.items.extend(arm.items)
            return
        arms.append(structure(cur.orelse))
        lines.append(cur.orelse[0].lineno)
        break
    block.items.append(Branches(arms, lines))


def structure(stmts: list[ast.stmt]) -> Block:
    block = Block()
    for stmt in stmts:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for d in stmt.decorator_list:  # decorators run where the def is
                block.items.extend(_calls(d))
        elif isinstance(stmt, ast.If):
            _if_chain(stmt, block)
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            body: list[ast.stmt] = getattr(stmt, "body", [])
            handlers: list[ast.ExceptHandler] = getattr(stmt, "handlers", [])
            block.items.extend(structure(body).items)
            block.items.extend(structure(getattr(stmt, "orelse", [])).items)
            for h in handlers:
                block.items.append(Maybe(structure(h.body), h.lineno))
            block.items.extend(structure(getattr(stmt, "finalbody", [])).items)
        elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
            block.items.extend(_calls(stmt.test if isinstance(stmt, ast.While) else stmt.iter))
            block.items.extend(structure(stmt.body).items)
            block.items.extend(structure(stmt.orelse).items)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                block.items.extend(_calls(item.context_expr))
            block.items.extend(structure(stmt.body).items)
        elif hasattr(ast, "Match") and isinstance(stmt, ast.Match):
            block.items.extend(_calls(stmt.subject))
            arms = [structure(case.body) for case in stmt.cases]
            lines = [case.pattern.lineno for case in stmt.cases]
            if arms:  # no case may match: never proof
                block.items.append(Maybe(Block([Branches(arms, lines)]), stmt.lineno, "match"))
        else:
            block.items.extend(_calls(stmt))
    return block
