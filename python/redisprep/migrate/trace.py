"""Follow an endpoint to the jobs it enqueues, and each job to the timestamps it
sets when it completes.

From a function, every call in its body is followed (helpers, methods of
controller instances through their base classes and mixins, services they
delegate to, constructors), with the arguments bound to the callee's parameters,
and with cycle protection. Three kinds of call are events rather than calls:

- ``X.timestamp(task)`` / ``X.remove_timestamp(task)`` on a ``RedisPrep`` (or with a
  ``TaskEnum`` member as the task);
- ``q.enqueue_call(func, ...)``, ``q.enqueue(func, ...)``, ``enqueue_in``/``enqueue_at``
  and ``redisprep.rq.enqueue_recorded(q, prep, func, ...)``: the job is followed as
  part of the chain, and ``on_success=timestamp_on_success(...)`` stamps for it;
- ``@timestamps(...)`` on a followed function stamps after it.

Where one call site may reach several functions (``job_fn = a if cond else b``),
a task counts as stamped only when every alternative stamps it; otherwise it is
reported as ``maybe``. What cannot be resolved (``getattr``, a subscripted
callable, a job or controller outside the analysed tree) is reported as a note
and never counted as proof.
"""

from __future__ import annotations

import ast
from typing import Optional

from .atoms import (
    Atom,
    Bound,
    Callback,
    Cls,
    Ext,
    Frame,
    Func,
    Inst,
    KwArgs,
    ModRef,
    Partial,
    Prep,
    Str,
    freeze,
)
from .blocks import Block, Branches
from .evidence import Chain, Gap, Note, Step, Trace
from .index import Module, Project
from .values import Evaluator

__all__ = ["Chain", "Gap", "Note", "Step", "Trace", "Tracer"]

_Bindings = dict[str, frozenset[Atom]]
_Target = tuple[Func, Optional[Inst], Optional[Partial]]
_ENQUEUE_JOB_ARG = {"enqueue_call": 0, "enqueue": 0, "enqueue_in": 1, "enqueue_at": 1}
_MAX_STACK = 60


class Tracer:
    """Follows functions of one :class:`Project`; results are memoised per context."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.ev = Evaluator(project)
        self._memo: dict[tuple[Func, Optional[Inst], object], Trace] = {}
        self._stack: set[tuple[Func, Optional[Inst], object]] = set()

    def function_at(self, module: Module, line: int, name: str) -> Optional[Func]:
        """The function called ``name`` (``Class.method`` allowed) enclosing ``line``,
        with its enclosing functions as outer frames."""
        want = name.rsplit(".", 1)[-1]
        outer: Optional[Frame] = None
        cls: Optional[Cls] = None
        body: list[ast.stmt] = module.tree.body
        found: Optional[Func] = None
        while True:
            node = next(
                (
                    n
                    for n in body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and n.lineno <= line <= (n.end_lineno or n.lineno)
                ),
                None,
            )
            if node is None:
                return found
            if isinstance(node, ast.ClassDef):
                cls = Cls(module, node, outer)
                body = node.body
                continue
            func = Func(module, node, outer, cls)
            if node.name == want:
                found = func
                if not name.count(".") or cls is not None:
                    return found
            outer = self.ev.frame_for(func, {})
            cls = None
            body = node.body

    def follow(
        self, func: Func, inst: Optional[Inst], bindings: dict[str, frozenset[Atom]]
    ) -> Trace:
        key = (func, inst, freeze(bindings))
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        if key in self._stack or len(self._stack) > _MAX_STACK:
            return Trace()
        self._stack.add(key)
        try:
            trace = self._walk(func, bindings)
        finally:
            self._stack.discard(key)
        self._memo[key] = trace
        return trace

    def _walk(self, func: Func, bindings: dict[str, frozenset[Atom]]) -> Trace:
        """One function's trace (``self`` is in ``bindings`` when it is a method call)."""
        trace = Trace()
        outer = func.outer or self.ev.module_frame(func.module)
        for d in func.node.decorator_list:
            if isinstance(d, ast.Call) and _name(d.func) == "timestamps":
                atoms = frozenset().union(*(self.ev.eval(a, outer) for a in d.args))
                for task in sorted(self.ev.tasks(atoms)):
                    step = Step("decorator", f"@timestamps({task})", func.module.where(d))
                    trace.add("timestamp", task, (step,))
        frame = self.ev.frame_for(func, bindings)
        self._run(func.module.structure_of(func.node), frame, trace)
        return trace

    def _run(self, block: Block, frame: Frame, trace: Trace) -> None:
        for item in block.items:
            if isinstance(item, ast.Call):
                self._call(item, frame, trace)
            elif isinstance(item, Branches):
                where = [Gap(f"{frame.module.path}:{line}", "branch") for line in item.lines]
                trace.merge([(self._sub(arm, frame), None) for arm in item.arms], where)
            else:  # Maybe: what it stamps is never proof
                gap = Gap(f"{frame.module.path}:{item.line}", item.kind)
                trace.merge([(self._sub(item.block, frame), None), (Trace(), None)], [gap, gap])

    def _sub(self, block: Block, frame: Frame) -> Trace:
        sub = Trace()
        self._run(block, frame, sub)
        return sub

    # --------------------------------------------------------------- calls

    def _call(self, call: ast.Call, frame: Frame, trace: Trace) -> None:
        f = call.func
        site = frame.module.where(call)
        if isinstance(f, ast.Attribute) and f.attr in ("timestamp", "remove_timestamp"):
            if self._stamp(call, f, frame, trace, site):
                return
        if isinstance(f, ast.Attribute) and f.attr in _ENQUEUE_JOB_ARG:
            self._enqueue(call, _ENQUEUE_JOB_ARG[f.attr], frame, trace, site)
            return
        callee = self.ev.callee(call, frame)
        if any(isinstance(a, Ext) and a.name.endswith("enqueue_recorded") for a in callee):
            self._enqueue(call, 2, frame, trace, site)
            return
        children: list[tuple[Trace, Step]] = []
        for func, inst, partial in self.targets(callee):
            if func.node.name == "enqueue_recorded":
                self._enqueue(call, 2, frame, trace, site)
                return
            b = self.ev.bind(func, inst, call.args, call.keywords, frame, partial)
            step = Step("call", func.qualname, site, func.where())
            children.append((self.follow(func, inst, b), step))
        if children:
            trace.merge(children, [Gap(site, "alternative")] * len(children))
        elif _is_dynamic(f, frame):
            trace.notes.append(Note(site, f"{ast.unparse(f)}(...): dynamic dispatch, not followed"))
        else:
            for a in callee:
                if isinstance(a, Ext) and self._worth_noting(a.name):
                    note = Note(site, f"{a.name}: outside the analysed tree, not followed")
                    if note not in trace.notes:
                        trace.notes.append(note)

    def _worth_noting(self, name: str) -> bool:
        """A call into the analysed project's own packages that could not be followed
        (exception classes are not worth a note)."""
        last = name.rpartition(".")[2]
        if last.endswith(("Error", "Exception", "Warning")):
            return False
        return name.split(".", 1)[0] in self.project.top_packages

    def targets(self, callee: frozenset[Atom], partial: Optional[Partial] = None) -> list[_Target]:
        """The functions a call may run: functions, bound methods, constructors, and
        what a ``functools.partial`` wraps."""
        out: list[_Target] = []
        for a in sorted(callee, key=_order):
            if isinstance(a, Func):
                out.append((a, None, partial))
            elif isinstance(a, Bound):
                out.append((a.func, a.inst, partial))
            elif isinstance(a, Cls):
                init = self.ev.method(a, "__init__")
                if init is not None:
                    out.append((init, Inst(a), partial))
            elif isinstance(a, Partial) and partial is None:
                out.extend(self.targets(a.target, a))
        return out

    def _stamp(
        self, call: ast.Call, f: ast.Attribute, frame: Frame, trace: Trace, site: str
    ) -> bool:
        recv = self.ev.eval(f.value, frame)
        if any(isinstance(a, Inst) and self.ev.method(a.cls, f.attr) for a in recv):
            return False  # the controller's own timestamp(): follow it as a call
        arg = (
            call.args[0]
            if call.args
            else next((k.value for k in call.keywords if k.arg in ("key", "task")), None)
        )
        atoms = self.ev.eval(arg, frame) if arg is not None else frozenset()
        tasks = self.ev.tasks(atoms)
        is_prep = any(isinstance(a, Prep) for a in recv)
        if not is_prep and not tasks:
            return False
        if not tasks:
            shown = ast.unparse(arg) if arg is not None else ""
            trace.notes.append(
                Note(site, f"{f.attr}({shown}): task not known statically, not counted")
            )
        for task in sorted(tasks):
            trace.add(f.attr, task, (Step(f.attr, f"{f.attr}({task})", site),))
        return True

    def _enqueue(self, call: ast.Call, index: int, frame: Frame, trace: Trace, site: str) -> None:
        trace.enqueues += 1
        expr = next((k.value for k in call.keywords if k.arg in ("func", "f")), None)
        if expr is None and len(call.args) > index:
            expr = call.args[index]
        if expr is None or isinstance(expr, ast.Starred):
            trace.missing_jobs.append(Note(site, "enqueue without a job function argument"))
            return
        job_args = _job_args(call, index)
        children: list[tuple[Trace, Step]] = []
        missing: list[str] = []
        for a in sorted(self.ev.eval(expr, frame), key=_order):
            func, inst = self._job_def(a)
            if func is None:
                if isinstance(a, Ext):
                    missing.append(f"{a.name} is not in the analysed tree (--workers)")
                elif isinstance(a, Str):
                    missing.append(f"job {a.value!r}: no such function in the analysed tree")
                continue
            b = self.ev.bind(func, inst, job_args, [], frame)
            if func.qualname not in trace.jobs:
                trace.jobs.append(func.qualname)
                trace.job_defs.setdefault(func.qualname, func.where())
            children.append(
                (self.follow(func, inst, b), Step("enqueue", func.qualname, site, func.where()))
            )
        self._on_success(call, frame, children, site)
        if children:
            trace.merge(children, [Gap(site, "alternative")] * len(children))
        elif missing:
            for m in missing:
                trace.missing_jobs.append(Note(site, m))
        else:
            trace.missing_jobs.append(
                Note(
                    site, f"job {ast.unparse(expr)}: chosen at run time, not resolvable statically"
                )
            )

    def _on_success(
        self, call: ast.Call, frame: Frame, children: list[tuple[Trace, Step]], site: str
    ) -> None:
        """``on_success=`` at the enqueue (directly or through a helper's ``**kwargs``):
        ``timestamp_on_success(...)`` stamps after each successful job; a function of
        the tree is followed as part of the job."""
        atoms: set[Atom] = set()
        for kw in call.keywords:
            if kw.arg == "on_success":
                atoms.update(self.ev.eval(kw.value, frame))
            elif kw.arg is None:
                for a in self.ev.eval(kw.value, frame):
                    if isinstance(a, KwArgs):
                        atoms.update(a.get("on_success"))
        if not atoms:
            return
        stamps = sorted({(t, a.site) for a in atoms if isinstance(a, Callback) for t in a.tasks})
        callbacks = [
            (self.follow(func, inst, {}), Step("on_success", func.qualname, site, func.where()))
            for func, inst, _ in self.targets(frozenset(atoms))
        ]
        for i, (original, step) in enumerate(children):  # runs after each successful job
            child = original.copy()
            children[i] = (child, step)
            for task, where in stamps:
                cb_step = Step("on_success", f"on_success=timestamp_on_success({task})", where)
                child.stamps.setdefault(task, (cb_step,))
            child.merge(callbacks)

    def _job_def(self, atom: Atom) -> tuple[Optional[Func], Optional[Inst]]:
        if isinstance(atom, Func):
            return atom, None
        if isinstance(atom, Bound):
            return atom.func, atom.inst
        if isinstance(atom, Str) and "." in atom.value:  # RQ also takes "pkg.module.func"
            mod_name, _, fn = atom.value.rpartition(".")
            mod = self.project.find(mod_name)
            if mod is not None:
                for a in self.ev.attr(ModRef(mod), fn):
                    if isinstance(a, Func):
                        return a, None
        return None, None


def _job_args(call: ast.Call, index: int) -> list[ast.expr]:
    """The job's positional arguments as written at the enqueue call."""
    if index == 0 and isinstance(call.func, ast.Attribute) and call.func.attr == "enqueue_call":
        args = next((k.value for k in call.keywords if k.arg == "args"), None)
        if args is None and len(call.args) > 1:
            args = call.args[1]
        return list(args.elts) if isinstance(args, (ast.Tuple, ast.List)) else []
    return [a for a in call.args[index + 1 :] if not isinstance(a, ast.Starred)]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _is_dynamic(f: ast.expr, frame: Frame) -> bool:
    if isinstance(f, ast.Subscript):
        return True
    if isinstance(f, ast.Call) and _name(f.func) == "getattr":
        return True
    if isinstance(f, ast.Name):
        for expr in frame.scope.assigns.get(f.id, []):
            if isinstance(expr, ast.Subscript) or (
                isinstance(expr, ast.Call) and _name(expr.func) == "getattr"
            ):
                return True
    return False


def _order(a: Atom) -> tuple[str, int]:
    if isinstance(a, Func):
        return (a.module.path, a.node.lineno)
    if isinstance(a, Bound):
        return (a.func.module.path, a.func.node.lineno)
    if isinstance(a, Cls):
        return (a.module.path, a.node.lineno)
    return (type(a).__name__, 0)
