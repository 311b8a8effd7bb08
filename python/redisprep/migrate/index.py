"""A static index of the modules the migration analyses (nothing is imported).

Each module is parsed once with :mod:`ast` and named the way Python would import
it (the dotted path up to the first folder without an ``__init__.py``). A
:class:`Scope` lists the names one block binds (module body or function body, not
descending into nested functions or classes): assignments, ``for`` targets,
imports, function and class definitions. Imports are resolved against the index
by exact dotted name, else by the longest dotted suffix (so ``wepppy.rq.project_rq``
finds ``rq/project_rq.py`` when only ``wepppy/rq`` was given).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Optional, Union

from .blocks import Block, structure
from .scan import MigrationError, parse

__all__ = ["AnyFunc", "Import", "Module", "Project", "Scope", "module_name"]

AnyFunc = Union[ast.FunctionDef, ast.AsyncFunctionDef]


@dataclass(frozen=True)
class Import:
    """``import module`` (``attr`` None) or ``from module import attr``."""

    module: str
    attr: Optional[str]


@dataclass
class Scope:
    """The names one block binds, each with the expressions that may give its value."""

    assigns: dict[str, list[ast.expr]] = field(default_factory=dict)
    loops: dict[str, list[ast.expr]] = field(default_factory=dict)
    imports: dict[str, Import] = field(default_factory=dict)
    defs: dict[str, AnyFunc] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    stars: list[str] = field(default_factory=list)
    """Modules imported with ``from m import *``, in order."""
    returns: list[ast.expr] = field(default_factory=list)
    bound: set[str] = field(default_factory=set)

    def __contains__(self, name: str) -> bool:
        return name in self.bound


class _Collector(ast.NodeVisitor):
    def __init__(self, scope: Scope, package: str) -> None:
        self.s = scope
        self.package = package

    def _bind(self, target: ast.expr, value: Optional[ast.expr]) -> None:
        if isinstance(target, ast.Name):
            self.s.bound.add(target.id)
            if value is not None:
                self.s.assigns.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values: list[Optional[ast.expr]] = [None] * len(target.elts)
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                values = list(value.elts)
            for t, v in zip(target.elts, values):
                self._bind(t.value if isinstance(t, ast.Starred) else t, v)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._def(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._def(node)

    def _def(self, node: AnyFunc) -> None:
        self.s.defs[node.name] = node
        self.s.bound.add(node.name)
        for d in node.decorator_list:
            self.visit(d)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.s.classes[node.name] = node
        self.s.bound.add(node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._bind(t, node.value)
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._bind(node.target, node.value)
        if node.value is not None:
            self.visit(node.value)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._bind(node.target, node.value)
        self.visit(node.value)

    def _loop(self, node: Union[ast.For, ast.AsyncFor]) -> None:
        if isinstance(node.target, ast.Name):
            self.s.bound.add(node.target.id)
            self.s.loops.setdefault(node.target.id, []).append(node.iter)
        else:
            self._bind(node.target, None)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self._loop(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self._loop(node)

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self._bind(node.optional_vars, None)
        self.visit(node.context_expr)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.asname:
                self.s.imports[a.asname] = Import(a.name, None)
                self.s.bound.add(a.asname)
            else:
                top = a.name.split(".", 1)[0]
                self.s.imports[top] = Import(top, None)
                self.s.bound.add(top)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".") if self.package else []
            parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
            base = ".".join([*parts, *([base] if base else [])])
        for a in node.names:
            if a.name == "*":
                self.s.stars.append(base)
                continue
            name = a.asname or a.name
            self.s.imports[name] = Import(base, a.name)
            self.s.bound.add(name)

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None:
            self.s.returns.append(node.value)
            self.visit(node.value)


def _collect(body: Iterable[ast.AST], package: str) -> Scope:
    scope = Scope()
    c = _Collector(scope, package)
    for stmt in body:
        c.visit(stmt)
    return scope


@dataclass(eq=False)
class Module:
    """One module of the index, parsed on first use."""

    name: str
    path: str
    text: str
    is_package: bool
    _tree: Optional[ast.Module] = None
    error: Optional[str] = None
    """Why the module could not be parsed (it is then analysed as empty)."""
    _scope: Optional[Scope] = None
    _fn_scopes: dict[int, Scope] = field(default_factory=dict)
    _structures: dict[int, Block] = field(default_factory=dict)

    @property
    def tree(self) -> ast.Module:
        if self._tree is None:
            try:
                self._tree = parse(self.text, self.path)
            except (MigrationError, ValueError, RecursionError, MemoryError) as e:
                self.error = str(e) if isinstance(e, MigrationError) else f"{self.path}: {e!r}"
                self._tree = ast.Module(body=[], type_ignores=[])
        return self._tree

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]

    @property
    def scope(self) -> Scope:
        if self._scope is None:
            self._scope = _collect(self.tree.body, self.package)
        return self._scope

    def scope_of(self, node: Union[AnyFunc, ast.ClassDef]) -> Scope:
        """The scope of a function body (or a class body), computed once."""
        s = self._fn_scopes.get(id(node))
        if s is None:
            s = _collect(node.body, self.package)
            self._fn_scopes[id(node)] = s
        return s

    def structure_of(self, node: AnyFunc) -> Block:
        """A function body's calls grouped by branch (:mod:`.blocks`), computed once."""
        b = self._structures.get(id(node))
        if b is None:
            b = self._structures[id(node)] = structure(node.body)
        return b

    def where(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', 0)}"


def module_name(path: str) -> tuple[str, bool]:
    """``(dotted name, is a package)`` for a ``.py`` file, the way it would be imported."""
    folder, filename = os.path.split(os.path.abspath(path))
    stem = filename[:-3] if filename.endswith(".py") else filename
    is_package = stem == "__init__"
    parts = [] if is_package else [stem]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, pkg = os.path.split(folder)
        parts.insert(0, pkg)
        if not pkg:
            break
    if not parts:
        parts = [os.path.basename(folder) or "__init__"]
    return ".".join(parts), is_package


class Project:
    """Every module under the given files and folders, each parsed once, when first
    reached (an endpoint's chain seldom reaches every module)."""

    def __init__(self, sources: Iterable[tuple[str, str]]) -> None:
        """``sources``: ``(path, text)`` pairs."""
        self.modules: dict[str, Module] = {}
        self.by_path: dict[str, Module] = {}
        self._by_last: dict[str, list[Module]] = {}
        self._found: dict[str, Optional[Module]] = {}
        for path, text in sources:
            name, is_package = module_name(path)
            mod = Module(name, path, text, is_package)
            self.by_path[os.path.realpath(path)] = mod
            if name in self.modules:  # two roots hold the same dotted name: keep both findable
                name = f"{name}@{len(self.modules)}"
            self.modules[name] = mod
            self._by_last.setdefault(mod.name.rpartition(".")[2], []).append(mod)
        self.top_packages = {m.name.split(".", 1)[0] for m in self.modules.values()}

    def module_at(self, path: str) -> Optional[Module]:
        return self.by_path.get(os.path.realpath(path))

    def find(self, dotted: str) -> Optional[Module]:
        """The module named ``dotted``: exact, else the longest dotted-suffix match."""
        if dotted in self._found:
            return self._found[dotted]
        found = self._find(dotted)
        self._found[dotted] = found
        return found

    def _find(self, dotted: str) -> Optional[Module]:
        exact = self.modules.get(dotted)
        if exact is not None:
            return exact
        want = dotted.split(".")
        best: Optional[Module] = None
        best_len = 0
        for mod in self._by_last.get(want[-1], []):
            have = mod.name.split(".")
            n = 0
            while n < min(len(have), len(want)) and have[-1 - n] == want[-1 - n]:
                n += 1
            # One name must be a whole dotted suffix of the other (``rq.jobs`` for
            # ``wepppy.rq.jobs``): a package never stands in for its own missing
            # submodule (``pkg.rap`` for an absent ``pkg.rap.rap``).
            if n in (len(have), len(want)) and n > best_len:
                best, best_len = mod, n
        return best

    @property
    def problems(self) -> list[str]:
        """The modules that could not be parsed (each analysed as empty)."""
        return [m.error for m in self.modules.values() if m.error]
