"""What an expression may evaluate to, read statically: a small abstract evaluator.

Values are sets of atoms (a function, a class, an instance of a class, a module,
a ``RedisPrep``, a ``TaskEnum`` member, a string, a sequence of atoms, or a name
outside the analysed tree). The evaluation is flow-insensitive: a name is every
value any assignment in its scope gives it, so ``job_fn = a if cond else b`` is
``{a, b}``. Method lookups follow base classes and mixins (depth-first, left to
right); ``self`` is the concrete instance, so an inherited method's ``self.x()``
resolves on the subclass. Anything else (a call's result from outside the tree,
``getattr``) evaluates to nothing, and the caller reports it as not followed.
Names are resolved by :mod:`.names`; ``TaskEnum.x`` by the application's task list
(:mod:`.tasks`). Each recursive step (expressions, MRO, instance attributes, call
results) is guarded by an in-progress marker or a memo.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
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
    Partial,
    Prep,
    PrepCls,
    Seq,
    Str,
    Task,
    TaskEnumRef,
    ext,
    freeze,
)
from .index import Project
from .names import NameResolver
from .tasks import TaskNames, find_task_enum

__all__ = ["Evaluator"]

_MAX_DEPTH = 40
_Kw = tuple[str, frozenset[Atom]]


class Evaluator(NameResolver):
    """Evaluates expressions of the analysed tree to sets of atoms."""

    def __init__(self, project: Project, tasks: Optional[TaskNames] = None) -> None:
        super().__init__(project)
        self.task_names = tasks if tasks is not None else find_task_enum(project)
        self._mro: dict[Cls, list[Cls]] = {}
        self._active: set[tuple[int, int]] = set()
        self._returns: dict[tuple[Func, Optional[Inst], Bindings], frozenset[Atom]] = {}
        self._inst_attrs: dict[tuple[Inst, str], frozenset[Atom]] = {}
        self.depth = 0

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
            return frozenset([Task(self.task_names.value(name))])
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
            frame = self.class_frame(c)
            if name in frame.scope:
                return self.scope_name(name, frame)
        return EMPTY

    def _instance_attr(self, inst: Inst, name: str) -> frozenset[Atom]:
        """``self.name`` as any method of the class assigns it (memoised; an attribute
        met again while it is being resolved gives nothing)."""
        key = (inst, name)
        cached = self._inst_attrs.get(key)
        if cached is not None:
            return cached
        self._inst_attrs[key] = EMPTY  # in progress
        result = self._instance_attr_values(inst, name)
        self._inst_attrs[key] = result
        return result

    def _instance_attr_values(self, inst: Inst, name: str) -> frozenset[Atom]:
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
        partial: Optional[Partial] = None,
    ) -> dict[str, frozenset[Atom]]:
        """Parameter -> values for a call of ``func`` (``self`` bound to ``inst``; a
        ``functools.partial``'s own arguments first)."""
        values: list[frozenset[Atom]] = list(partial.args) if partial else []
        spread: Optional[frozenset[Atom]] = None
        for arg in args:
            if isinstance(arg, ast.Starred):
                spread = self.items(self.eval(arg.value, frame))
                break
            values.append(self.eval(arg, frame))
        kws: list[_Kw] = list(partial.kwargs) if partial else []
        for kw in keywords:
            if kw.arg is not None:
                kws.append((kw.arg, self.eval(kw.value, frame)))
            else:  # **mapping passed through
                for atom in self.eval(kw.value, frame):
                    if isinstance(atom, KwArgs):
                        kws.extend(atom.items)
        return self.bind_values(func, inst, values, spread, kws)

    def bind_values(
        self,
        func: Func,
        inst: Optional[Inst],
        values: Sequence[frozenset[Atom]],
        spread: Optional[frozenset[Atom]],
        kws: Sequence[_Kw],
    ) -> dict[str, frozenset[Atom]]:
        """Parameter -> values, from evaluated positional and keyword arguments (a later
        keyword overrides an earlier one, as a call overrides its partial's)."""
        a = func.node.args
        positional = [p.arg for p in [*a.posonlyargs, *a.args]]
        bindings: dict[str, frozenset[Atom]] = {}
        if inst is not None and positional and not _is_static(func):
            bindings[positional[0]] = frozenset([inst])
            positional = positional[1:]
        extra: set[Atom] = set()
        for i, value in enumerate(values):
            if i < len(positional):
                bindings[positional[i]] = value
            else:
                extra.update(value)
        if spread is not None:
            for p in positional[len(values) :]:
                bindings[p] = bindings.get(p, EMPTY) | spread
            extra.update(spread)
        if a.vararg is not None:
            bindings[a.vararg.arg] = frozenset([Seq(frozenset(extra))])
        names = set(positional) | {p.arg for p in a.kwonlyargs}
        rest: dict[str, frozenset[Atom]] = {}
        for name, value in kws:
            if name in names:
                bindings[name] = value
            else:
                rest[name] = value
        if a.kwarg is not None:
            bindings[a.kwarg.arg] = frozenset([KwArgs(tuple(rest.items()))])
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
            elif isinstance(atom, Ext) and name.endswith("partial") and call.args:
                out.add(self.partial(call, frame))
            elif isinstance(atom, Partial):
                for target in atom.target:
                    out.update(self._returns_of(target, call, frame, atom))
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
            elif isinstance(atom, (Func, Bound)):
                out.update(self._returns_of(atom, call, frame, None))
        return frozenset(out)

    def _returns_of(
        self, atom: Atom, call: ast.Call, frame: Frame, partial: Optional[Partial]
    ) -> frozenset[Atom]:
        if isinstance(atom, Func):
            b = self.bind(atom, None, call.args, call.keywords, frame, partial)
            return self.returns(atom, None, b)
        if isinstance(atom, Bound):
            b = self.bind(atom.func, atom.inst, call.args, call.keywords, frame, partial)
            return self.returns(atom.func, atom.inst, b)
        return EMPTY

    def partial(self, call: ast.Call, frame: Frame) -> Partial:
        """``functools.partial(func, *args, **kwargs)`` with its arguments evaluated
        (a nested partial's arguments come first)."""
        target = self.eval(call.args[0], frame)
        args = tuple(self.eval(a, frame) for a in call.args[1:] if not isinstance(a, ast.Starred))
        kwargs = tuple((k.arg, self.eval(k.value, frame)) for k in call.keywords if k.arg)
        inner = [a for a in target if isinstance(a, Partial)]
        if len(inner) == 1 and len(target) == 1:
            p = inner[0]
            return Partial(p.target, p.args + args, p.kwargs + kwargs)
        return Partial(target, args, kwargs)

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
                return frozenset(
                    Task(self.task_names.value(k.value)) for k in key if isinstance(k, Str)
                )
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
            elif isinstance(a, Str) and self.task_names.is_task(a.value):
                out.add(self.task_names.value(a.value))
        return out


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
