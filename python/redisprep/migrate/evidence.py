"""What following a function found (:mod:`.trace`): the evidence chain of each stamp
and clear, the tasks stamped on some paths only and where a path misses them, the
jobs, and what could not be followed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["Chain", "Gap", "Note", "Step", "Trace"]


@dataclass(frozen=True)
class Step:
    """One link of an evidence chain."""

    kind: str
    """``enqueue``, ``call``, ``on_success``, ``decorator``, ``timestamp``, ``remove_timestamp``."""
    label: str
    site: str
    """``path:line`` of the call (or decorator) that makes this step."""
    target: Optional[str] = None
    """``path:line`` of the definition the step enters, if any."""

    def describe(self) -> str:
        if self.kind in ("timestamp", "remove_timestamp", "on_success", "decorator"):
            return f"{self.label} at {self.site}"
        verb = "enqueue " if self.kind == "enqueue" else ""
        return f"{verb}{self.label} ({self.target or self.site})"


Chain = tuple[Step, ...]


@dataclass(frozen=True)
class Note:
    site: str
    message: str


@dataclass(frozen=True)
class Gap:
    """Where a task is not stamped on one path: an arm of an ``if``/``elif``/``else``
    (``branch``), a function chosen at run time (``alternative``), an ``except``
    handler that alone stamps it (``except``), a ``match`` no case of which may run
    (``match``)."""

    site: str
    kind: str

    def describe(self, task: str) -> str:
        return {
            "branch": f"the branch at {self.site} does not stamp {task}",
            "alternative": f"a job or function chosen at run time at {self.site} "
            f"does not stamp {task}",
            "except": f"{task} is stamped only in the except handler at {self.site}",
            "match": f"no case of the match at {self.site} may run",
        }.get(self.kind, self.site)


@dataclass
class Trace:
    """What following one function found."""

    stamps: dict[str, Chain] = field(default_factory=dict)
    maybe: dict[str, Chain] = field(default_factory=dict)
    gaps: dict[str, Gap] = field(default_factory=dict)
    """For a ``maybe`` task: the first place found where a path does not stamp it."""
    removes: dict[str, Chain] = field(default_factory=dict)
    job_removes: dict[str, Chain] = field(default_factory=dict)
    """Removes made inside an enqueued job (not by the endpoint itself)."""
    notes: list[Note] = field(default_factory=list)
    missing_jobs: list[Note] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    job_defs: dict[str, str] = field(default_factory=dict)
    enqueues: int = 0

    def copy(self) -> Trace:
        return Trace(
            dict(self.stamps),
            dict(self.maybe),
            dict(self.gaps),
            dict(self.removes),
            dict(self.job_removes),
            list(self.notes),
            list(self.missing_jobs),
            list(self.jobs),
            dict(self.job_defs),
            self.enqueues,
        )

    def add(self, kind: str, task: str, chain: Chain) -> None:
        target = self.removes if kind == "remove_timestamp" else self.stamps
        if task not in target or len(chain) < len(target[task]):
            target[task] = chain
        if kind == "remove_timestamp" and any(s.kind == "enqueue" for s in chain):
            if task not in self.job_removes or len(chain) < len(self.job_removes[task]):
                self.job_removes[task] = chain
        if kind != "remove_timestamp":
            self.maybe.pop(task, None)
            self.gaps.pop(task, None)

    def _extend(self, child: Trace, prefix: Chain) -> None:
        for task, chain in child.removes.items():
            self.add("remove_timestamp", task, prefix + chain)
        for task, chain in child.job_removes.items():
            self.add("remove_timestamp", task, prefix + chain)
        for note in child.notes:
            if note not in self.notes:
                self.notes.append(note)
        for note in child.missing_jobs:
            if note not in self.missing_jobs:
                self.missing_jobs.append(note)
        for job in child.jobs:
            if job not in self.jobs:
                self.jobs.append(job)
        for job, where in child.job_defs.items():
            self.job_defs.setdefault(job, where)
        self.enqueues += child.enqueues

    def merge(
        self,
        children: Sequence[tuple[Trace, Optional[Step]]],
        where: Optional[Sequence[Optional[Gap]]] = None,
    ) -> None:
        """Children reached from one call site, or the arms of one branch: a task is
        stamped if every one stamps it, else it is only ``maybe`` (``where`` says, per
        child, what a path through it is, to name the one that misses it)."""
        if not children:
            return
        definite = set.intersection(*(set(c.stamps) for c, _ in children))
        for child, step in children:
            prefix: Chain = (step,) if step is not None else ()
            self._extend(child, prefix)
            for task, chain in child.stamps.items():
                if task in definite:
                    self.add("timestamp", task, prefix + chain)
                elif task not in self.stamps:
                    self.maybe.setdefault(task, prefix + chain)
                    self._gap(task, children, where)
            for task, chain in child.maybe.items():
                if task not in self.stamps:
                    self.maybe.setdefault(task, prefix + chain)
                    if task in child.gaps:
                        self.gaps.setdefault(task, child.gaps[task])

    def _gap(
        self,
        task: str,
        children: Sequence[tuple[Trace, Optional[Step]]],
        where: Optional[Sequence[Optional[Gap]]],
    ) -> None:
        if task in self.gaps or where is None:
            return
        for (child, _), gap in zip(children, where):
            if task not in child.stamps and gap is not None:
                self.gaps[task] = child.gaps.get(task, gap)
                return
