"""What an expression may evaluate to, read statically: a small abstract evaluator.

Values are sets of atoms (a function, a class, an instance of a class, a module,
a ``RedisPrep``, a ``TaskEnum`` member, a string, a sequence of atoms, or a name
outside the analysed tree). The evaluation is flow-insensitive: a name is every
value any assignment in its scope gives it, so ``job_fn = a if cond else b`` is
``{a, b}``. Method lookups follow base classes and mixins (depth-first, left to
right); ``self`` is the concrete instance, so an inherited method's ``self.x()``
resolves on the subclass. Anything else (a call's result from outside the tree,
``getattr``) evaluates to nothing, and the caller reports it as not followed.
"""

from __future__ import annotations

import ast
from typing import Optional

from .atoms import (
    EMPTY,
    FACTORIES,
    Atom,
    Bindings,
    Bound,
    Callback,
    Cls,
    Ext,
    Factory,
    Frame,
    Func,
    Inst,
    KwArgs,
    ModRef,
    Prep,
    PrepCls,
    Seq,
    Str,
    Task,
    TaskEnumRef,
    ext,
    freeze,
    is_task_name,
    task_value,
)
from .index import Import, Module, Project

__all__ = ["Evaluator"]

_MAX_DEPTH = 40


class Evaluator:
    """Evaluates expressions of the analysed tree to sets of atoms."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._module_frames: dict[str, Frame] = {}
        self._mro: dict[Cls, list[Cls]] = {}
        self._active: set[tuple[int, int]] = set()
        self._returns: dict[tuple[Func, Optional[Inst], Bindings], frozenset[Atom]] = {}
        self.depth = 0

    # ------------------------------------------------------------- frames

    def module_frame(self, module: Module) -> Frame:
        f = self._module_frames.get(module.name)
        if f is None:
            f = Frame(module, module.scope)
            self._module_frames[module.name] = f
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
        no-underscore rule respected), following star imports of star imports."""
        seen.add(module.name)
        for target in module.scope.stars:
            mod = self.project.find(target)
            if mod is None or mod.name in seen:
                continue
            exported = _exported(mod)
            if name in mod.scope and (
                name in exported if exported is not None else name[:1] != "_"
            ):
                return self.scope_name(name, self.module_frame(mod))
            found = self.star_name(name, mod, seen)
            if found:
                return found
        return EMPTY

    def scope_name(self, name: str, frame: Frame) -> frozenset[Atom]:
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
        if imp.attr is None:
            mod = self.project.find(imp.module)
            return frozenset([ModRef(mod) if mod else ext(imp.module)])
        mod = self.project.find(imp.module) if imp.module else None
        if mod is not None and imp.attr in mod.scope:
            return self.scope_name(imp.attr, self.module_frame(mod))
        if mod is not None:
            starred = self.star_name(imp.attr, mod, set())
            if starred:
                return starred
        sub = self.project.find(f"{imp.module}.{imp.attr}")
        if sub is not None and sub.name.endswith(imp.attr):
            return frozenset([ModRef(sub)])
        return frozenset([ext(f"{imp.module}.{imp.attr}")])

    # ---------------------------------------------------------- attributes

    def mro(self, cls: Cls) -> list[Cls]:
        cached = self._mro.get(cls)
        if cached is not None:
            return cached
        self._mro[cls] = [cls]  # cycle guard
        order = [cls]
        frame = cls.outer or self.module_frame(cls.module)
        for base in cls.node.bases:
            for atom in self.eval(base, frame):
                if isinstance(atom, Cls):
                    order.extend(c for c in self.mro(atom) if c not in order)
        self._mro[cls] = order
        return order

    def method(self, cls: Cls, name: str, after: Optional[Cls] = None) -> Optional[Func]:
        chain = self.mro(cls)
        if after is not None and after in chain:
            chain = chain[chain.index(after) + 1 :]
        for c in chain:
            node = next(
                (
                    n
                    for n in c.node.body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
                ),
                None,
            )
            if node is not None:
                return Func(c.module, node, c.outer, c)
        return None

    def attr(self, atom: Atom, name: str) -> frozenset[Atom]:
        if isinstance(atom, ModRef):
            if name in atom.module.scope:
                return self.scope_name(name, self.module_frame(atom.module))
            sub = self.project.find(f"{atom.module.name}.{name}")
            if sub is not None:
                return frozenset([ModRef(sub)])
            return self.star_name(name, atom.module, set())
        if isinstance(atom, TaskEnumRef):
            return frozenset([Task(task_value(name))])
        if isinstance(atom, (PrepCls, Ext)) and name in FACTORIES:
            return frozenset([Factory(atom)])
        if isinstance(atom, Ext):
            return frozenset([ext(f"{atom.name}.{name}")])
        if isinstance(atom, Task) and name in ("value", "name"):
            return frozenset([atom])
        if isinstance(atom, Cls):
            if name in FACTORIES:
                return frozenset([Factory(atom)])
            m = self.method(atom, name)
            return frozenset([m]) if m else self._class_attr(atom, name)
        if isinstance(atom, Inst):
            m = self.method(atom.cls, name)
            if m is not None:
                if any(_decorator_name(d) == "property" for d in m.node.decorator_list):
                    return self.returns(m, atom, {})
                return frozenset([Bound(m, atom)])
            return self._instance_attr(atom, name)
        return EMPTY

    def _class_attr(self, cls: Cls, name: str) -> frozenset[Atom]:
        for c in self.mro(cls):
            scope = c.module.scope_of(c.node)
            if name in scope:
                return self.scope_name(
                    name, Frame(c.module, scope, c.outer or self.module_frame(c.module))
                )
        return EMPTY

    def _instance_attr(self, inst: Inst, name: str) -> frozenset[Atom]:
        out: set[Atom] = set(self._class_attr(inst.cls, name))
        for c in self.mro(inst.cls):
            for node in c.node.body:
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                values = [
                    n.value
                    for n in ast.walk(node)
                    if isinstance(n, ast.Assign) and any(_is_self_attr(t, name) for t in n.targets)
                ]
                if not values:
                    continue
                func = Func(c.module, node, c.outer, c)
                bindings = dict(inst.init) if node.name == "__init__" else {}
                self._bind_self(func, inst, bindings)
                frame = self.frame_for(func, bindings)
                for v in values:
                    out.update(self.eval(v, frame))
        return frozenset(out)

    def _bind_self(self, func: Func, inst: Inst, bindings: dict[str, frozenset[Atom]]) -> None:
        a = func.node.args
        first = [*a.posonlyargs, *a.args]
        if first and not any(
            _decorator_name(d) == "staticmethod" for d in func.node.decorator_list
        ):
            bindings[first[0].arg] = frozenset([inst])

    # -------------------------------------------------------------- calls

    def bind(
        self,
        func: Func,
        inst: Optional[Inst],
        args: list[ast.expr],
        keywords: list[ast.keyword],
        frame: Frame,
    ) -> dict[str, frozenset[Atom]]:
        """Parameter -> values for a call of ``func`` (``self`` bound to ``inst``)."""
        a = func.node.args
        positional = [p.arg for p in [*a.posonlyargs, *a.args]]
        bindings: dict[str, frozenset[Atom]] = {}
        if inst is not None and positional and not _is_static(func):
            bindings[positional[0]] = frozenset([inst])
            positional = positional[1:]
        extra: set[Atom] = set()
        for i, arg in enumerate(args):
            if isinstance(arg, ast.Starred):
                spread = self.items(self.eval(arg.value, frame))
                for p in positional[i:]:
                    bindings[p] = bindings.get(p, EMPTY) | spread
                extra.update(spread)
                break
            value = self.eval(arg, frame)
            if i < len(positional):
                bindings[positional[i]] = value
            else:
                extra.update(value)
        if a.vararg is not None:
            bindings[a.vararg.arg] = frozenset([Seq(frozenset(extra))])
        names = set(positional) | {p.arg for p in a.kwonlyargs}
        rest: list[tuple[str, frozenset[Atom]]] = []
        for kw in keywords:
            if kw.arg is not None and kw.arg in names:
                bindings[kw.arg] = self.eval(kw.value, frame)
            elif kw.arg is not None:
                rest.append((kw.arg, self.eval(kw.value, frame)))
            else:  # **mapping passed through
                for atom in self.eval(kw.value, frame):
                    if isinstance(atom, KwArgs):
                        rest.extend(atom.items)
        if a.kwarg is not None:
            bindings[a.kwarg.arg] = frozenset([KwArgs(tuple(rest))])
        defaults_frame = func.outer or self.module_frame(func.module)
        for param, d in zip(reversed([*a.posonlyargs, *a.args]), reversed(a.defaults)):
            if param.arg not in bindings:
                bindings[param.arg] = self.eval(d, defaults_frame)
        for param, kd in zip(a.kwonlyargs, a.kw_defaults):
            if param.arg not in bindings and kd is not None:
                bindings[param.arg] = self.eval(kd, defaults_frame)
        return bindings

    def returns(
        self, func: Func, inst: Optional[Inst], bindings: dict[str, frozenset[Atom]]
    ) -> frozenset[Atom]:
        key = (func, inst, freeze(bindings))
        if key in self._returns:
            return self._returns[key]
        if self.depth > _MAX_DEPTH:
            return EMPTY
        self._returns[key] = EMPTY  # recursion guard
        self.depth += 1
        try:
            frame = self.frame_for(func, bindings)
            out: set[Atom] = set()
            for r in frame.scope.returns:
                out.update(self.eval(r, frame))
        finally:
            self.depth -= 1
        result = frozenset(out)
        self._returns[key] = result
        return result

    def call_value(self, call: ast.Call, frame: Frame) -> frozenset[Atom]:
        out: set[Atom] = set()
        for atom in self.callee(call, frame):
            name = (
                atom.name
                if isinstance(atom, Ext)
                else getattr(getattr(atom, "node", None), "name", "")
            )
            if name.endswith("timestamp_on_success"):
                args = frozenset().union(*(self.eval(a, frame) for a in call.args))
                out.add(Callback(frozenset(self.tasks(args)), frame.module.where(call)))
            elif name.endswith("Callback") and call.args:  # rq.Callback(func)
                out.update(self.eval(call.args[0], frame))
            elif isinstance(atom, Factory):
                target = atom.cls
                out.add(
                    Prep()
                    if isinstance(target, PrepCls)
                    else Inst(target)
                    if isinstance(target, Cls)
                    else Ext(f"{target.name}()")
                )
            elif isinstance(atom, PrepCls):
                out.add(Prep())
            elif isinstance(atom, Cls):
                init = self.method(atom, "__init__")
                bindings: Bindings = ()
                if init is not None and init.module.name in self.project.modules:
                    bindings = freeze(self.bind(init, None, call.args, call.keywords, frame))
                    bindings = tuple(kv for kv in bindings if kv[0] != _first_param(init))
                out.add(Inst(atom, bindings))
            elif isinstance(atom, Func):
                out.update(
                    self.returns(atom, None, self.bind(atom, None, call.args, call.keywords, frame))
                )
            elif isinstance(atom, Bound):
                b = self.bind(atom.func, atom.inst, call.args, call.keywords, frame)
                out.update(self.returns(atom.func, atom.inst, b))
        return frozenset(out)

    def callee(self, call: ast.Call, frame: Frame) -> frozenset[Atom]:
        f = call.func
        if (  # super().method
            isinstance(f, ast.Attribute)
            and isinstance(f.value, ast.Call)
            and isinstance(f.value.func, ast.Name)
            and f.value.func.id == "super"
            and frame.cls is not None
        ):
            selves = [
                a for a in self.lookup(_first_param_of_frame(frame), frame) if isinstance(a, Inst)
            ]
            out: set[Atom] = set()
            for inst in selves:
                m = self.method(inst.cls, f.attr, after=frame.cls)
                if m is not None:
                    out.add(Bound(m, inst))
            return frozenset(out)
        return self.eval(f, frame)

    # ---------------------------------------------------------- expressions

    def items(self, atoms: frozenset[Atom]) -> frozenset[Atom]:
        out: set[Atom] = set()
        for a in atoms:
            out.update(a.items if isinstance(a, Seq) else [a])
        return frozenset(out)

    def eval(self, expr: ast.expr, frame: Frame) -> frozenset[Atom]:
        key = (id(expr), id(frame))
        if key in self._active or self.depth > _MAX_DEPTH:
            return EMPTY
        self._active.add(key)
        self.depth += 1
        try:
            return self._eval(expr, frame)
        finally:
            self.depth -= 1
            self._active.discard(key)

    def _eval(self, e: ast.expr, frame: Frame) -> frozenset[Atom]:
        if isinstance(e, ast.Name):
            return self.lookup(e.id, frame)
        if isinstance(e, ast.Attribute):
            out: set[Atom] = set()
            for atom in self.eval(e.value, frame):
                out.update(self.attr(atom, e.attr))
            return frozenset(out)
        if isinstance(e, ast.Call):
            return self.call_value(e, frame)
        if isinstance(e, ast.IfExp):
            return self.eval(e.body, frame) | self.eval(e.orelse, frame)
        if isinstance(e, ast.BoolOp):
            return frozenset().union(*(self.eval(v, frame) for v in e.values))
        if isinstance(e, ast.Constant) and isinstance(e.value, str):
            return frozenset([Str(e.value)])
        if isinstance(e, (ast.Tuple, ast.List, ast.Set)):
            items: set[Atom] = set()
            for elt in e.elts:
                if isinstance(elt, ast.Starred):
                    items.update(self.items(self.eval(elt.value, frame)))
                else:
                    items.update(self.eval(elt, frame))
            return frozenset([Seq(frozenset(items))])
        if isinstance(e, ast.Dict):
            return frozenset([Seq(frozenset().union(*(self.eval(v, frame) for v in e.values)))])
        if isinstance(e, ast.Subscript):
            base = self.eval(e.value, frame)
            key = self.eval(e.slice, frame)
            if any(isinstance(a, TaskEnumRef) for a in base):
                return frozenset(Task(task_value(k.value)) for k in key if isinstance(k, Str))
            return self.items(base)
        if isinstance(e, (ast.Await, ast.Starred, ast.NamedExpr)):
            return self.eval(e.value, frame)
        return EMPTY

    def tasks(self, atoms: frozenset[Atom]) -> set[str]:
        """The task values among ``atoms`` (members, and strings naming a task)."""
        out: set[str] = set()
        for a in self.items(atoms):
            if isinstance(a, Task):
                out.add(a.value)
            elif isinstance(a, Str) and is_task_name(a.value):
                out.add(task_value(a.value))
        return out


def _exported(mod: Module) -> Optional[set[str]]:
    """The module's ``__all__`` when it is a literal list or tuple of strings."""
    for expr in mod.scope.assigns.get("__all__", []):
        if isinstance(expr, (ast.List, ast.Tuple)):
            return {
                e.value
                for e in expr.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            }
    return None


def _first_param(func: Func) -> Optional[str]:
    a = func.node.args
    first = [*a.posonlyargs, *a.args]
    return first[0].arg if first else None


def _first_param_of_frame(frame: Frame) -> str:
    for name, atoms in frame.bindings.items():
        if any(isinstance(a, Inst) for a in atoms):
            return name
    return "self"


def _is_self_attr(target: ast.expr, name: str) -> bool:
    return (
        isinstance(target, ast.Attribute)
        and target.attr == name
        and isinstance(target.value, ast.Name)
        and target.value.id in ("self", "cls")
    )


def _is_static(func: Func) -> bool:
    return any(_decorator_name(d) == "staticmethod" for d in func.node.decorator_list)


def _decorator_name(d: ast.expr) -> str:
    if isinstance(d, ast.Call):
        d = d.func
    if isinstance(d, ast.Attribute):
        return d.attr
    return d.id if isinstance(d, ast.Name) else ""
