"""Name resolution for the static evaluator (:mod:`.values`): frames, scopes, imports,
``from m import *``.

Every step is protected against cycles, never by a larger recursion limit:

- a module-level name is resolved once and memoised; while it is being resolved it
  is marked in progress, and a lookup that comes back to it (``a`` imports ``X`` from
  ``b``, ``b`` imports ``X`` from ``a``; a module importing itself; a package
  ``__init__`` importing a sibling that imports the package back) gets nothing;
- a chain of re-exports (``from .rap import RAP`` in ``__init__``, 50 modules deep)
  is followed in a loop, each hop visited once;
- ``from m import *`` chains carry the set of modules already searched.

What cannot be resolved is a name outside the tree, and is reported as not followed.
"""

from __future__ import annotations

import ast
from typing import Optional

from .atoms import EMPTY, Atom, Cls, Frame, Func, ModRef, PrepCls, TaskEnumRef, ext
from .index import Import, Module, Project, Scope

__all__ = ["NameResolver", "exported"]

_NameKey = tuple[int, str]


class NameResolver:
    """Frames and name lookup; :class:`.values.Evaluator` adds expressions on top."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._module_frames: dict[str, Frame] = {}
        self._class_frames: dict[Cls, Frame] = {}
        self._module_names: dict[tuple[str, str], frozenset[Atom]] = {}
        self._resolving: set[_NameKey] = set()
        self._stars: dict[tuple[str, str], frozenset[Atom]] = {}
        self._exported: dict[str, Optional[set[str]]] = {}

    def eval(self, expr: ast.expr, frame: Frame) -> frozenset[Atom]:  # pragma: no cover
        raise NotImplementedError

    def items(self, atoms: frozenset[Atom]) -> frozenset[Atom]:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------- frames

    def module_frame(self, module: Module) -> Frame:
        f = self._module_frames.get(module.name)
        if f is None:
            f = Frame(module, module.scope)
            self._module_frames[module.name] = f
        return f

    def class_frame(self, cls: Cls) -> Frame:
        """The frame of a class body (one per class, so cycle guards keyed on it hold)."""
        f = self._class_frames.get(cls)
        if f is None:
            scope = cls.module.scope_of(cls.node)
            f = Frame(cls.module, scope, cls.outer or self.module_frame(cls.module))
            self._class_frames[cls] = f
        return f

    def frame_for(self, func: Func, bindings: dict[str, frozenset[Atom]]) -> Frame:
        a = func.node.args
        params = {p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
        params.update(p.arg for p in (a.vararg, a.kwarg) if p is not None)
        return Frame(
            func.module,
            func.module.scope_of(func.node),
            func.outer or self.module_frame(func.module),
            frozenset(params),
            bindings,
            func.cls,
        )

    # ---------------------------------------------------------- name lookup

    def lookup(self, name: str, frame: Frame) -> frozenset[Atom]:
        f: Optional[Frame] = frame
        while f is not None:
            if name in f.params:
                return f.bindings.get(name, EMPTY)
            if name in f.scope:
                return self.scope_name(name, f)
            if f.outer is None:  # the module: ``from m import *`` last
                return self.star_name(name, f.module, set())
            f = f.outer
        return EMPTY

    def star_name(self, name: str, module: Module, seen: set[str]) -> frozenset[Atom]:
        """``name`` as bound by the ``from m import *`` of ``module`` (``__all__`` and the
        no-underscore rule respected), following star imports of star imports (memoised
        per module and name)."""
        if not module.scope.stars:
            return EMPTY
        key = (module.name, name)
        fresh = not seen
        if fresh and key in self._stars:
            return self._stars[key]
        found = self._star_name(name, module, seen)
        if fresh:
            self._stars[key] = found
        return found

    def _star_name(self, name: str, module: Module, seen: set[str]) -> frozenset[Atom]:
        stack = [module]
        seen.add(module.name)
        while stack:
            current = stack.pop()
            for target in reversed(current.scope.stars):
                mod = self.project.find(target)
                if mod is None or mod.name in seen:
                    continue
                seen.add(mod.name)
                if mod.name not in self._exported:
                    self._exported[mod.name] = exported(mod)
                names = self._exported[mod.name]
                if name in mod.scope and (
                    (names is None and name[:1] != "_") or name in (names or ())
                ):
                    found = self.scope_name(name, self.module_frame(mod))
                    if found:
                        return found
                stack.append(mod)
        return EMPTY

    def scope_name(self, name: str, frame: Frame) -> frozenset[Atom]:
        """Every value ``frame``'s own scope gives ``name``. Module-level names are
        memoised; a name met again while it is being resolved gives nothing."""
        module_level = frame.outer is None
        if module_level:
            cached = self._module_names.get((frame.module.name, name))
            if cached is not None:
                return cached
        key = (id(frame), name)
        if key in self._resolving:
            return EMPTY
        self._resolving.add(key)
        try:
            result = self._scope_name(name, frame)
        finally:
            self._resolving.discard(key)
        if module_level:
            self._module_names[(frame.module.name, name)] = result
        return result

    def _scope_name(self, name: str, frame: Frame) -> frozenset[Atom]:
        s = frame.scope
        out: set[Atom] = set()
        fn_frame = frame if frame.outer is not None else None
        if name in s.defs:
            out.add(Func(frame.module, s.defs[name], fn_frame))
        if name in s.classes:
            out.add(self._cls(Cls(frame.module, s.classes[name], fn_frame)))
        if name in s.imports:
            out.update(self.resolve_import(s.imports[name]))
        for expr in s.assigns.get(name, []):
            out.update(self.eval(expr, frame))
        for it in s.loops.get(name, []):
            out.update(self.items(self.eval(it, frame)))
        return frozenset(out)

    def _cls(self, c: Cls) -> Atom:
        if c.node.name == "RedisPrep":
            return PrepCls()
        if c.node.name == "TaskEnum":
            return TaskEnumRef()
        return c

    def resolve_import(self, imp: Import) -> frozenset[Atom]:
        """What ``import m`` / ``from m import x`` binds. Pure re-exports (a name the
        module only imports) are followed in a loop, each hop once."""
        seen: set[tuple[str, str]] = set()
        while True:
            attr = imp.attr
            if attr is None:
                mod = self.project.find(imp.module)
                return frozenset([ModRef(mod) if mod else ext(imp.module)])
            mod = self.project.find(imp.module) if imp.module else None
            if mod is not None and attr in mod.scope:
                if _only_imported(mod.scope, attr):
                    if (mod.name, attr) in seen:
                        return EMPTY  # a re-export cycle: nothing defines the name
                    seen.add((mod.name, attr))
                    imp = mod.scope.imports[attr]
                    continue
                return self.scope_name(attr, self.module_frame(mod))
            if mod is not None:
                starred = self.star_name(attr, mod, set())
                if starred:
                    return starred
            sub = self.project.find(f"{imp.module}.{attr}")
            if sub is not None and sub.name.endswith(attr):
                return frozenset([ModRef(sub)])
            return frozenset([ext(f"{imp.module}.{attr}")])


def _only_imported(scope: Scope, name: str) -> bool:
    return (
        name in scope.imports
        and name not in scope.defs
        and name not in scope.classes
        and name not in scope.assigns
        and name not in scope.loops
    )


def exported(mod: Module) -> Optional[set[str]]:
    """The module's ``__all__`` when it is a literal list or tuple of strings."""
    for expr in mod.scope.assigns.get("__all__", []):
        if isinstance(expr, (ast.List, ast.Tuple)):
            return {
                e.value
                for e in expr.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            }
    return None
