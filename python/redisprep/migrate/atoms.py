"""The values the migration's static evaluator works with (:mod:`.values`).

A value is a set of atoms: a function in its defining context, a class, an instance
(with the arguments its ``__init__`` received), a method bound to an instance, a
module, a ``RedisPrep`` (class or instance), the ``TaskEnum`` class and its members,
a string, a sequence, the ``**kwargs`` a function received, an RQ callback made by
``timestamp_on_success``, a static ``functools.partial``, or a name outside the
analysed tree.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Optional, Union

from .index import AnyFunc, Module, Scope

__all__ = [
    "EMPTY",
    "FACTORIES",
    "Atom",
    "Bindings",
    "Bound",
    "Callback",
    "Cls",
    "Ext",
    "Factory",
    "Frame",
    "Func",
    "Inst",
    "KwArgs",
    "ModRef",
    "Partial",
    "Prep",
    "PrepCls",
    "Seq",
    "Str",
    "Task",
    "TaskEnumRef",
    "ext",
    "freeze",
]

FACTORIES = {"getInstance", "tryGetInstance", "getInstanceFromRunID"}


@dataclass(eq=False)
class Frame:
    """One scope being evaluated: a module body, or a function called in a context."""

    module: Module
    scope: Scope
    outer: Optional[Frame] = None
    params: frozenset[str] = frozenset()
    bindings: dict[str, frozenset[Atom]] = field(default_factory=dict)
    cls: Optional[Cls] = None
    """The class defining the function (for ``super()``)."""


@dataclass(frozen=True)
class Func:
    module: Module
    node: AnyFunc
    outer: Optional[Frame]
    cls: Optional[Cls] = None

    @property
    def qualname(self) -> str:
        return f"{self.cls.node.name}.{self.node.name}" if self.cls else self.node.name

    def where(self) -> str:
        return self.module.where(self.node)


@dataclass(frozen=True)
class Cls:
    module: Module
    node: ast.ClassDef
    outer: Optional[Frame]


Bindings = tuple[tuple[str, frozenset["Atom"]], ...]


@dataclass(frozen=True)
class Inst:
    cls: Cls
    init: Bindings = ()


@dataclass(frozen=True)
class Bound:
    func: Func
    inst: Inst


@dataclass(frozen=True)
class ModRef:
    module: Module


@dataclass(frozen=True)
class Ext:
    """A name outside the analysed tree (``rq.Queue``, ``wepppy.nodb.core.Ron``...)."""

    name: str


@dataclass(frozen=True)
class Factory:
    """``Cls.getInstance`` (and friends): calling it gives an instance."""

    cls: Union[Cls, PrepCls, Ext]


@dataclass(frozen=True)
class PrepCls:
    pass


@dataclass(frozen=True)
class Prep:
    pass


@dataclass(frozen=True)
class TaskEnumRef:
    pass


@dataclass(frozen=True)
class Task:
    value: str


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Seq:
    items: frozenset[Atom]


@dataclass(frozen=True)
class KwArgs:
    """A ``**kwargs`` parameter: the keyword arguments it received."""

    items: tuple[tuple[str, frozenset[Atom]], ...]

    def get(self, name: str) -> frozenset[Atom]:
        return frozenset().union(*(v for k, v in self.items if k == name))


@dataclass(frozen=True)
class Callback:
    """``timestamp_on_success(tasks...)`` (redisprep.rq): stamps after the job succeeds."""

    tasks: frozenset[str]
    site: str
    """``path:line`` of the ``timestamp_on_success(...)`` call."""


@dataclass(frozen=True)
class Partial:
    """``functools.partial(func, *args, **kwargs)``: calling it calls ``func`` with these
    arguments first (and keywords the call does not override)."""

    target: frozenset[Atom]
    args: tuple[frozenset[Atom], ...]
    kwargs: tuple[tuple[str, frozenset[Atom]], ...]


Atom = Union[
    Func,
    Cls,
    Inst,
    Bound,
    ModRef,
    Ext,
    Factory,
    PrepCls,
    Prep,
    TaskEnumRef,
    Task,
    Str,
    Seq,
    KwArgs,
    Callback,
    Partial,
]
EMPTY: frozenset[Atom] = frozenset()


def ext(name: str) -> Atom:
    """A name outside the tree; ``RedisPrep`` and ``TaskEnum`` are known by their name."""
    last = name.rpartition(".")[2]
    if last == "RedisPrep":
        return PrepCls()
    if last == "TaskEnum":
        return TaskEnumRef()
    return Ext(name)


def freeze(bindings: dict[str, frozenset[Atom]]) -> Bindings:
    return tuple(sorted(bindings.items(), key=lambda kv: kv[0]))
