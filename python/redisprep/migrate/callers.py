"""Caller context for calls held by helpers: which endpoints reach a function that is
not itself an endpoint, and with which arguments.

From every endpoint (a route-decorated function of the endpoint modules) the calls
of its body are followed into the functions of the endpoint modules (helpers,
helpers of helpers, methods, ``functools.partial`` wrappers), binding each callee's
parameters from the call site (positional, keyword, defaults, the partial's own
arguments). Every state (function, instance, bindings) is visited once per
endpoint, so recursive helpers and cycles end; the first path to each (helper,
bindings) is kept, so each distinct set of arguments is judged.
Jobs are not followed here: what an enqueued job does is the job side (:mod:`.trace`).

A reference to a helper that no followed path explains (a dispatch table, a
``getattr``) is reported as a caller that could not be followed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Optional

from .atoms import Atom, Frame, Func, Inst, freeze
from .blocks import Block, Branches
from .evidence import Chain, Step
from .index import AnyFunc, Module
from .scan import route_of
from .trace import Tracer

__all__ = ["CallerPath", "Callers", "Reference"]

_MAX_DEPTH = 30
_MAX_STATES = 20000
_ENQUEUES = {"enqueue_call", "enqueue", "enqueue_in", "enqueue_at", "enqueue_recorded"}


@dataclass(frozen=True)
class CallerPath:
    """One endpoint reaching a helper: the calls on the way, and the helper's bindings."""

    endpoint: Func
    route: str
    steps: Chain
    bindings: tuple[tuple[str, frozenset[Atom]], ...]


@dataclass(frozen=True)
class Reference:
    """A use of the helper's name that no followed path from an endpoint explains."""

    site: str
    where: str
    """The function (or ``<module>``) holding the reference."""


def _calls(block: Block) -> Iterator[ast.Call]:
    for item in block.items:
        if isinstance(item, ast.Call):
            yield item
        elif isinstance(item, Branches):
            for arm in item.arms:
                yield from _calls(arm)
        else:
            yield from _calls(item.block)


class Callers:
    """The endpoints reaching each helper of interest, found once for all helpers."""

    def __init__(self, tracer: Tracer, modules: Iterable[Module], helpers: list[Func]) -> None:
        """``modules``: the endpoint modules; ``helpers``: the functions holding calls."""
        self.tracer = tracer
        self.ev = tracer.ev
        self.modules = list(modules)
        self._ids = {id(m) for m in self.modules}
        self.helpers = {id(h.node) for h in helpers}
        self.paths: dict[int, list[CallerPath]] = {h: [] for h in self.helpers}
        self.endpoints: list[tuple[Func, str]] = list(self._endpoints())
        self.names = {h.node.name for h in helpers}
        self._refs: dict[int, dict[str, list[_Ref]]] = {}
        self.visited: set[int] = set()
        """``id()`` of every function some endpoint's calls reach."""
        for func, route in self.endpoints:
            try:
                self._search(func, route)
            except RecursionError:  # a safety net: the helper's other uses stay unexplained
                continue

    def _endpoints(self) -> Iterator[tuple[Func, str]]:
        for mod in self.modules:
            if "@" not in mod.text:
                continue
            for node in ast.walk(mod.tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    route = route_of(node)
                    if route is None:
                        continue
                    func = self.tracer.function_at(mod, node.lineno, node.name)
                    if func is not None and func.node is node:
                        yield func, route

    def _search(self, endpoint: Func, route: str) -> None:
        """Every state reachable from ``endpoint`` through calls, each visited once."""
        seen: set[tuple[int, object, object]] = set()
        found: set[tuple[int, object]] = set()
        stack: list[tuple[Func, object, dict[str, frozenset[Atom]], Chain]] = [
            (endpoint, None, {}, ())
        ]
        while stack and len(seen) < _MAX_STATES:
            func, inst, bindings, steps = stack.pop()
            key = (id(func.node), inst, freeze(bindings))
            if key in seen or len(steps) > _MAX_DEPTH:
                continue
            seen.add(key)
            self.visited.add(id(func.node))
            frame = self.ev.frame_for(func, bindings)
            for call in _calls(func.module.structure_of(func.node)):
                if isinstance(call.func, ast.Attribute) and call.func.attr in _ENQUEUES:
                    continue
                stack.extend(self._step(call, frame, steps, endpoint, route, found))

    def _step(
        self,
        call: ast.Call,
        frame: Frame,
        steps: Chain,
        endpoint: Func,
        route: str,
        found: set[tuple[int, object]],
    ) -> list[tuple[Func, object, dict[str, frozenset[Atom]], Chain]]:
        out: list[tuple[Func, object, dict[str, frozenset[Atom]], Chain]] = []
        callee = self.ev.callee(call, frame)
        for func, inst, partial in self.tracer.targets(callee):
            if id(func.module) not in self._ids:
                continue
            b = self.ev.bind(func, inst, call.args, call.keywords, frame, partial)
            step = Step("call", func.qualname, frame.module.where(call), func.where())
            path = (*steps, step)
            node_id = id(func.node)
            # One path per distinct binding: an endpoint calling the helper twice with
            # different arguments (``task=A``, ``task=B``) is judged for each.
            if node_id in self.helpers and (node_id, freeze(b)) not in found:
                found.add((node_id, freeze(b)))
                self.paths[node_id].append(CallerPath(endpoint, route, path, freeze(b)))
            out.append((func, inst if isinstance(inst, Inst) else None, b, path))
        return out

    def unexplained(self, helper: AnyFunc, module: Module) -> list[Reference]:
        """Uses of the helper's name that no search explains: in a function no endpoint
        reaches, in a container (a dispatch table), or at module level when no endpoint
        reaches the helper at all. Any of them may call it in a context not judged. Uses
        count in the helper's module and in modules that import it from there."""
        reached = bool(self.paths.get(id(helper)))
        out: list[Reference] = []
        for mod in self.modules:
            if helper.name not in mod.text or not self._sees(mod, module, helper.name):
                continue
            for owner, node, in_container in self._references(mod).get(helper.name, []):
                if owner is helper:
                    continue
                if owner is not None and id(owner) in self.visited and not in_container:
                    continue
                if owner is None and reached and not in_container:
                    continue
                out.append(Reference(mod.where(node), owner.name if owner else "<module>"))
        return out

    def _sees(self, mod: Module, home: Module, name: str) -> bool:
        """``mod`` is the helper's module, or imports the name or the module from it."""
        if mod is home:
            return True
        for imp in mod.scope.imports.values():
            target = self.ev.project.find(imp.module) if imp.module else None
            if target is home and imp.attr in (None, name):
                return True
            if imp.attr is not None and self.ev.project.find(f"{imp.module}.{imp.attr}") is home:
                return True
        return False

    def _references(self, mod: Module) -> dict[str, list[_Ref]]:
        refs = self._refs.get(id(mod))
        if refs is None:
            refs = self._refs[id(mod)] = {}
            for owner, node, boxed in _loads(mod.tree):
                name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
                if name in self.names:
                    refs.setdefault(name, []).append((owner, node, boxed))
        return refs


_CONTAINERS = (ast.Dict, ast.List, ast.Tuple, ast.Set)
_Ref = tuple[Optional[AnyFunc], ast.AST, bool]


def _loads(tree: ast.Module) -> Iterator[_Ref]:
    """``(enclosing function or None, node, inside a container literal)`` for each
    ``Name`` load and each ``Attribute``."""
    stack: list[tuple[Optional[AnyFunc], ast.AST, bool]] = [(None, tree, False)]
    while stack:
        owner, node, boxed = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                stack.append((child, child, False))
                continue
            inner = boxed or isinstance(node, _CONTAINERS)
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
                yield owner, child, inner
            elif isinstance(child, ast.Attribute):
                yield owner, child, inner
            stack.append((owner, child, inner))
