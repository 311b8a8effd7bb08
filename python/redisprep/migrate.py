"""``python -m redisprep migrate``: find (and remove) the manual
``prep.remove_timestamp(TaskEnum.X)`` calls in wepppy's RQ endpoints.

The modules are parsed with :mod:`ast`; edits are made on the original text by
the line/column spans the parser reports, so every byte outside a removed call
is kept (indentation, quotes, comments, line endings, encoding). A removed call
leaves one comment line, as the wepppy task document asks::

    # prep.remove_timestamp(TaskEnum.build_climate)  # Removed - automatic invalidation now

and becomes ``pass`` (plus that comment) where it was the only statement of its
block, so the module stays valid. A call marked ``# redisprep: keep`` (on its
line, on the comment line just above it, or on the endpoint's ``def`` or
decorator lines) is reported as kept and never touched: that is how an endpoint
is rolled back or deliberately left alone.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import os
import re
import sys
import tempfile
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

from .errors import RedisPrepError

__all__ = [
    "MARKER",
    "PRAGMA",
    "Finding",
    "MigrationError",
    "fix_source",
    "main",
    "scan_source",
]

MARKER = "# Removed - automatic invalidation now"
PRAGMA = "redisprep: keep"

# Decorator attributes that make a function an endpoint: Flask blueprints/apps
# (``@bp.route``) and FastAPI routers (``@router.post``...).
_ROUTE_ATTRS = {"route", "get", "post", "put", "patch", "delete", "api_route"}
_PREP_FACTORIES = {"getInstance", "tryGetInstance", "getInstanceFromRunID"}
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_SKIP_DIRS = {"__pycache__", "node_modules", "venv", "site-packages"}


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
class _Hit:
    finding: Finding
    call: ast.Call
    stmt: Optional[ast.stmt]
    block: Optional[list[ast.stmt]]


def _split_lines(text: str) -> list[str]:
    """Lines with their endings, split exactly where the parser counts lines."""
    return _LINE_RE.findall(text)


def _char_col(line: str, byte_col: int) -> int:
    """``ast`` columns are UTF-8 byte offsets; convert to a ``str`` index."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _pragma_lines(text: str) -> set[int]:
    lines: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT and PRAGMA in tok.string:
                lines.add(tok.start[0])
    except (tokenize.TokenError, SyntaxError):  # pragma: no cover - parse already succeeded
        pass
    return lines


def _route_of(fn: ast.AST) -> Optional[str]:
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    for d in fn.decorator_list:
        if not (isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)):
            continue
        attr = d.func.attr
        if attr not in _ROUTE_ATTRS:
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
        route = _route_of(fn)
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


def _parse(text: str, path: str) -> ast.Module:
    try:
        return ast.parse(text, filename=path)
    except SyntaxError as e:
        raise MigrationError(f"{path}:{e.lineno}: cannot parse: {e.msg}") from None


def _scan(text: str, path: str) -> tuple[list[_Hit], set[str]]:
    """Every manual call, plus the names of every function in the module."""
    tree = _parse(text, path)
    lines = _split_lines(text)
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
    hits: list[_Hit] = []
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
                _char_col(seg, node.col_offset) : _char_col(seg, node.end_col_offset or 0)
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
        hits.append(_Hit(finding, node, stmt, block))
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


def _matches(finding: Finding, names: set[str]) -> bool:
    """``--only`` names: ``func``, ``Class.method`` or just ``method``."""
    return finding.function in names or finding.function.rsplit(".", 1)[-1] in names


def scan_source(text: str, path: str = "<string>") -> list[Finding]:
    """Every manual ``remove_timestamp()`` call in ``text`` (kept ones included)."""
    return [h.finding for h in _scan(text, path)[0]]


def fix_source(
    text: str, path: str = "<string>", only: Optional[Iterable[str]] = None
) -> tuple[str, list[Finding]]:
    """Remove the fixable, not-kept calls (of the ``only`` functions, if given).

    Returns the new text and the findings that were removed. Text outside the
    removed statements is returned unchanged, byte for byte.
    """
    wanted = None if only is None else set(only)
    hits, _ = _scan(text, path)
    chosen = [
        h
        for h in hits
        if h.finding.fixable
        and not h.finding.kept
        and (wanted is None or _matches(h.finding, wanted))
    ]
    if not chosen:
        return text, []
    lines = _split_lines(text)
    removed_ids = {id(h.stmt) for h in chosen}
    needs_pass: set[int] = set()
    seen_blocks: set[int] = set()
    for h in chosen:
        assert h.block is not None
        if id(h.block) in seen_blocks:
            continue
        seen_blocks.add(id(h.block))
        if all(id(s) in removed_ids for s in h.block):
            needs_pass.add(id(h.stmt))  # the first removed statement of an emptied block
    # Edit bottom-up so earlier line numbers stay valid.
    for h in sorted(chosen, key=lambda h: (h.finding.line, h.call.col_offset), reverse=True):
        stmt = h.stmt
        assert stmt is not None
        first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
        head, tail = lines[first - 1], lines[last - 1]
        col = _char_col(head, stmt.col_offset)
        end_col = _char_col(tail, stmt.end_col_offset or 0)
        prefix = head[:col]
        rest = tail[end_col:]
        body = rest.rstrip("\r\n")
        newline = rest[len(body) :]
        after = body.lstrip()
        if after.startswith(";"):
            after = after[1:].lstrip()
        if prefix.strip() == "" and (after == "" or after.startswith("#")):
            keep = "pass  " if id(stmt) in needs_pass else ""
            new = f"{prefix}{keep}# {h.finding.call}  {MARKER}{newline}"
        else:  # shares its line with other code (``if x: call``, ``a; call``)
            new = f"{prefix}pass{body}"
            if body.strip() == "":
                new = f"{prefix}pass  # {h.finding.call}  {MARKER}"
            new += newline
        lines[first - 1 : last] = [new]
    return "".join(lines), [h.finding for h in chosen]


def _read(path: str) -> tuple[str, str]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        encoding = tokenize.detect_encoding(io.BytesIO(raw).readline)[0]
        return raw.decode(encoding), encoding
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError) as e:
        raise MigrationError(f"{path}: cannot read: {e}") from None


def _write(path: str, text: str, encoding: str) -> None:
    data = text.encode(encoding)
    folder = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=".redisprep-migrate-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def iter_python_files(paths: Sequence[str]) -> Iterator[str]:
    """The given files, and every ``*.py`` under the given folders (hidden and
    virtualenv folders skipped), in a stable order."""
    seen: set[str] = set()

    def once(path: str) -> bool:
        real = os.path.realpath(path)
        if real in seen:
            return False
        seen.add(real)
        return True

    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
                for name in sorted(files):
                    if name.endswith(".py") and once(os.path.join(root, name)):
                        yield os.path.join(root, name)
        elif os.path.exists(p):
            if once(p):
                yield p
        else:
            raise MigrationError(f"{p}: no such file or folder")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="redisprep migrate",
        description=(
            "List the manual prep.remove_timestamp(TaskEnum.X) calls in Flask/FastAPI "
            "endpoint modules, and remove them (--fix). Exit status: 0 done/clean, "
            "1 unmigrated calls remain (--check), 2 bad input."
        ),
    )
    ap.add_argument("paths", nargs="+", metavar="PATH", help="modules or folders to scan")
    ap.add_argument(
        "--check", action="store_true", help="exit 1 when unmigrated calls remain (for CI)"
    )
    ap.add_argument("--fix", action="store_true", help="remove the calls, leaving a comment")
    ap.add_argument("--diff", action="store_true", help="print what --fix would change; no write")
    ap.add_argument(
        "--only",
        nargs="+",
        action="extend",
        default=None,
        metavar="ENDPOINT",
        help="only these endpoint functions (names as in the listing)",
    )
    args = ap.parse_args(argv)
    only: Optional[set[str]] = set(args.only) if args.only else None
    try:
        files = list(iter_python_files(args.paths))
        scanned: list[tuple[str, str, str, list[Finding], set[str]]] = []
        all_functions: set[str] = set()
        for path in files:
            text, encoding = _read(path)
            hits, functions = _scan(text, path)
            all_functions |= functions
            scanned.append((path, text, encoding, [h.finding for h in hits], functions))
    except MigrationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if only is not None:
        unknown = sorted(only - all_functions)
        if unknown:
            print(
                f"error: no function named {', '.join(unknown)} in the given paths",
                file=sys.stderr,
            )
            return 2

    def selected(f: Finding) -> bool:
        return only is None or _matches(f, only)

    remaining: list[Finding] = []
    fixed_total = 0
    for path, text, encoding, findings, _ in scanned:
        if args.fix or args.diff:
            new, fixed = fix_source(text, path, only)
            if args.diff and fixed:
                for d in difflib.unified_diff(
                    _split_lines(text), _split_lines(new), path, f"{path} (migrated)"
                ):
                    sys.stdout.write(d if d.endswith(("\n", "\r")) else d + "\n")
            if args.fix and fixed:
                try:
                    _write(path, new, encoding)
                except OSError as e:
                    print(f"error: {path}: cannot write: {e}", file=sys.stderr)
                    return 2
                for f in fixed:
                    print(f"fixed {f.describe()}")
                fixed_total += len(fixed)
                findings = scan_source(new, path)
        for f in findings:
            if not selected(f):
                continue
            if not args.diff:
                print(f.describe())
            if not f.kept:
                remaining.append(f)
    endpoints = {(f.path, f.function) for f in remaining}
    summary = f"{len(remaining)} unmigrated call(s) in {len(endpoints)} function(s)"
    if only is not None:
        summary += f" (of {', '.join(sorted(only))})"
    if args.fix:
        summary = f"removed {fixed_total} call(s); " + summary
    print(summary, file=sys.stderr)
    if remaining and not args.fix and not args.diff:
        print("run with --fix to remove them (or --diff to preview)", file=sys.stderr)
    if args.check and remaining:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
