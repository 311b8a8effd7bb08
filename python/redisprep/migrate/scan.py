"""Find the manual ``prep.remove_timestamp(TaskEnum.X)`` calls in endpoint modules.

The modules are parsed with :mod:`ast`. A call marked ``# redisprep: keep`` (on its
line, on the comment line just above it, or on the endpoint's ``def`` or decorator
lines) is reported as kept and never touched: that is how an endpoint is rolled
back or deliberately left alone.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from dataclasses import dataclass
from typing import Optional

from ..errors import RedisPrepError

__all__ = [
    "MARKER",
    "PRAGMA",
    "ROUTE_ATTRS",
    "Finding",
    "Hit",
    "MigrationError",
    "char_col",
    "clear_parse_cache",
    "matches",
    "parse",
    "route_of",
    "scan",
    "scan_source",
    "split_lines",
]

MARKER = "# Removed - automatic invalidation now"
PRAGMA = "redisprep: keep"

# Decorator attributes that make a function an endpoint: Flask blueprints/apps
# (``@bp.route``) and FastAPI routers (``@router.post``...).
ROUTE_ATTRS = {"route", "get", "post", "put", "patch", "delete", "api_route"}
_PREP_FACTORIES = {"getInstance", "tryGetInstance", "getInstanceFromRunID"}
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


class MigrationError(RedisPrepError, ValueError):
    """A file given to the migration tool cannot be read or parsed."""


@dataclass(frozen=True)
class Finding:
    """One manual ``remove_timestamp()`` call."""

    path: str
    line: int
    end_line: int
    function: str
    """The endpoint (outermost route-decorated function) holding the call, else the
    innermost enclosing function (``Class.method``), else ``<module>``."""
    route: Optional[str]
    """``"POST /runs/<runid>/..."`` when ``function`` is an endpoint."""
    call: str
    """The call on one line, as it will appear in the comment."""
    task: Optional[str]
    """The TaskEnum member name or string argument, when it can be read statically."""
    fixable: bool
    """A statement of its own (``--fix`` can remove it)."""
    kept: bool
    """Marked ``# redisprep: keep``: reported, never counted or touched."""

    def describe(self) -> str:
        where = self.function + (f" ({self.route})" if self.route else "")
        note = ""
        if self.kept:
            note = f"  [kept: # {PRAGMA}]"
        elif not self.fixable:
            note = "  [edit by hand: not a statement of its own]"
        return f"{self.path}:{self.line}: {where}: {self.call}{note}"


@dataclass
class Hit:
    finding: Finding
    call: ast.Call
    stmt: Optional[ast.stmt]
    block: Optional[list[ast.stmt]]


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split exactly where the parser counts lines."""
    return _LINE_RE.findall(text)


def char_col(line: str, byte_col: int) -> int:
    """``ast`` columns are UTF-8 byte offsets; convert to a ``str`` index."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _pragma_lines(text: str) -> set[int]:
    lines: set[int] = set()
    if PRAGMA not in text:
        return lines
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT and PRAGMA in tok.string:
                lines.add(tok.start[0])
    except (tokenize.TokenError, SyntaxError):  # pragma: no cover - parse already succeeded
        pass
    return lines


def route_of(fn: ast.AST) -> Optional[str]:
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    for d in fn.decorator_list:
        if not (isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)):
            continue
        attr = d.func.attr
        if attr not in ROUTE_ATTRS:
            continue
        rule = "?"
        if d.args and isinstance(d.args[0], ast.Constant) and isinstance(d.args[0].value, str):
            rule = d.args[0].value
        methods: list[str] = []
        for kw in d.keywords:
            if kw.arg == "methods" and isinstance(kw.value, (ast.List, ast.Tuple, ast.Set)):
                methods = [
                    str(e.value).upper() for e in kw.value.elts if isinstance(e, ast.Constant)
                ]
        if not methods:
            methods = ["GET"] if attr in ("route", "api_route") else [attr.upper()]
        return f"{'|'.join(methods)} {rule}"
    return None


class _Names:
    """What the module calls ``TaskEnum`` and ``RedisPrep`` (aliases included),
    and which names hold a ``RedisPrep`` instance."""

    def __init__(self, tree: ast.Module) -> None:
        self.task_enum = {"TaskEnum"}
        self.redis_prep = {"RedisPrep"}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for a in node.names:
                    if a.name == "TaskEnum":
                        self.task_enum.add(a.asname or a.name)
                    elif a.name == "RedisPrep":
                        self.redis_prep.add(a.asname or a.name)
        self.preps: set[str] = set()
        for node in ast.walk(tree):
            value: Optional[ast.expr] = None
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                value, targets = node.value, list(node.targets)
            elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)):
                value, targets = node.value, [node.target]
            if isinstance(node, ast.AnnAssign) and self._is_cls(node.annotation):
                targets, value = [node.target], None
                self.preps.update(t.id for t in targets if isinstance(t, ast.Name))
            if value is not None and self.is_prep(value):
                self.preps.update(t.id for t in targets if isinstance(t, ast.Name))
            if isinstance(node, ast.arg) and node.annotation and self._is_cls(node.annotation):
                self.preps.add(node.arg)

    def _is(self, node: ast.expr, names: set[str], attr: str) -> bool:
        if isinstance(node, ast.Name):
            return node.id in names
        return isinstance(node, ast.Attribute) and node.attr == attr

    def _is_cls(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value in self.redis_prep
        if isinstance(node, ast.Subscript):  # Optional[RedisPrep]
            return self._is_cls(node.slice)
        return self._is(node, self.redis_prep, "RedisPrep")

    def is_task(self, node: ast.expr) -> Optional[str]:
        """The member name if ``node`` is ``TaskEnum.x`` / ``TE.x`` / ``mod.TaskEnum.x``."""
        if isinstance(node, ast.Attribute) and self._is(node.value, self.task_enum, "TaskEnum"):
            return node.attr
        if isinstance(node, (ast.Subscript, ast.Call)):  # TaskEnum["x"], TaskEnum("x")
            base = node.value if isinstance(node, ast.Subscript) else node.func
            arg: Optional[ast.expr] = None
            if isinstance(node, ast.Subscript):
                arg = node.slice
            elif node.args:
                arg = node.args[0]
            if self._is(base, self.task_enum, "TaskEnum"):
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    return arg.value
                return "?"
        return None

    def is_prep(self, node: ast.expr) -> bool:
        """``node`` evaluates to a ``RedisPrep`` (as far as a static reading can tell)."""
        if isinstance(node, ast.Name):
            return node.id in self.preps
        if isinstance(node, ast.Call):
            f = node.func
            if self._is_cls(f):
                return True
            return (
                isinstance(f, ast.Attribute) and f.attr in _PREP_FACTORIES and self._is_cls(f.value)
            )
        return False


def _owner(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> tuple[str, Optional[str]]:
    chain: list[ast.AST] = []
    cur: Optional[ast.AST] = parents.get(node)
    while cur is not None:
        if isinstance(cur, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            chain.append(cur)
        cur = parents.get(cur)
    for fn in reversed(chain):  # outermost endpoint wins
        route = route_of(fn)
        if route is not None:
            assert isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            return fn.name, route
    funcs = [f for f in chain if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not funcs:
        return "<module>", None
    inner = funcs[0]
    parent = parents.get(inner)
    if isinstance(parent, ast.ClassDef):
        return f"{parent.name}.{inner.name}", None
    return inner.name, None


def _block_of(stmt: ast.stmt, parent: ast.AST) -> Optional[list[ast.stmt]]:
    for _, value in ast.iter_fields(parent):
        if isinstance(value, list) and any(v is stmt for v in value):
            return value
    return None


def parse(text: str, path: str) -> ast.Module:
    """The module's tree; parsed once per (text, path) in a run (scanning, the job-side
    index and the editor all read the same endpoint modules). Trees are never mutated."""
    return _parse(text, path)


def clear_parse_cache() -> None:
    """Drop the parsed trees (a long-lived process calling the API should)."""
    _parse.cache_clear()


@functools.lru_cache(maxsize=4096)
def _parse(text: str, path: str) -> ast.Module:
    try:
        return ast.parse(text, filename=path)
    except SyntaxError as e:
        raise MigrationError(f"{path}:{e.lineno}: cannot parse: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes, absurd nesting
        raise MigrationError(f"{path}: cannot parse: {e}") from None


def scan(text: str, path: str) -> tuple[list[Hit], set[str]]:
    """Every manual call, plus the names of every function in the module."""
    tree = parse(text, path)
    lines = split_lines(text)
    names = _Names(tree)
    pragmas = _pragma_lines(text)
    parents: dict[ast.AST, ast.AST] = {}
    functions: set[str] = set()
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.add(node.name)
            if isinstance(parents.get(node), ast.ClassDef):
                cls = parents[node]
                assert isinstance(cls, ast.ClassDef)
                functions.add(f"{cls.name}.{node.name}")
    hits: list[Hit] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "remove_timestamp"
        ):
            continue
        arg = node.args[0] if node.args else None
        task = names.is_task(arg) if arg is not None else None
        if task is None and not names.is_prep(node.func.value):
            continue  # some other object's remove_timestamp(): not ours
        if task is None and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            task = arg.value
        parent = parents[node]
        stmt = parent if isinstance(parent, ast.Expr) and parent.value is node else None
        block = _block_of(stmt, parents[stmt]) if stmt is not None else None
        function, route = _owner(node, parents)
        line, end = node.lineno, node.end_lineno or node.lineno
        span = set(range(line, end + 1))
        first = stmt.lineno if stmt is not None else line
        if first >= 2 and lines[first - 2].strip().startswith("#"):
            span.add(first - 1)
        fn = _enclosing_endpoint_def(node, parents, function)
        if fn is not None:
            span.add(fn.lineno)  # the ``def`` line and the decorator lines
            span.update(d.lineno for d in fn.decorator_list)
        if line == end:
            seg = lines[line - 1]
            text_call = seg[
                char_col(seg, node.col_offset) : char_col(seg, node.end_col_offset or 0)
            ]
        else:
            text_call = ast.unparse(node)
        finding = Finding(
            path=path,
            line=line,
            end_line=end,
            function=function,
            route=route,
            call=text_call,
            task=task,
            fixable=stmt is not None and block is not None,
            kept=bool(span & pragmas),
        )
        hits.append(Hit(finding, node, stmt, block))
    hits.sort(key=lambda h: (h.finding.line, h.call.col_offset))
    return hits, functions


def _enclosing_endpoint_def(
    node: ast.AST, parents: dict[ast.AST, ast.AST], function: str
) -> Optional[ast.FunctionDef | ast.AsyncFunctionDef]:
    cur: Optional[ast.AST] = parents.get(node)
    found: Optional[ast.FunctionDef | ast.AsyncFunctionDef] = None
    while cur is not None:
        if isinstance(cur, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
            cur.name == function or function.endswith("." + cur.name)
        ):
            found = cur
        cur = parents.get(cur)
    return found


def matches(finding: Finding, names: set[str]) -> bool:
    """``--only`` names: ``func``, ``Class.method`` or just ``method``."""
    return finding.function in names or finding.function.rsplit(".", 1)[-1] in names


def scan_source(text: str, path: str = "<string>") -> list[Finding]:
    """Every manual ``remove_timestamp()`` call in ``text`` (kept ones included)."""
    return [h.finding for h in scan(text, path)[0]]
