"""A verdict per manual ``remove_timestamp(TaskEnum.X)`` call, from the job side.

- ``safe``: the job (or its chain) timestamps X at completion.
- ``covered``: it timestamps Y != X, the rules' closure of Y holds every
  controller of X, and a preflight check turns X to not-done once Y is newer.
- ``unsafe`` with a reason: ``never-timestamped``, ``not-on-every-path``,
  ``timestamps-other-task``, ``deletion``, ``job-not-found``, ``no-job`` (and
  ``task-not-static`` when the call's task cannot be read); for a call held by a
  helper, ``no-caller`` and ``caller-not-followed`` (:mod:`.helpers`).
- ``unverified``: no ``--workers`` were given, so nothing was checked.

The preflight condition is decided by the Rust evaluator itself: the active
rules' checks are evaluated on two hashes that differ only in which of X and Y
is newer, so no check grammar is interpreted here.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from .._redisprep import Rules
from .evidence import Chain, Note, Trace
from .scan import Finding
from .tasks import TaskNames

__all__ = [
    "REASONS",
    "VERDICTS",
    "CallerVerdict",
    "Coverage",
    "Verdict",
    "advise",
    "judge",
    "unverified",
]

VERDICTS = ("safe", "covered", "unsafe", "unverified")
REASONS = (
    "never-timestamped",
    "not-on-every-path",
    "timestamps-other-task",
    "deletion",
    "job-not-found",
    "no-job",
    "task-not-static",
    "no-caller",
    "caller-not-followed",
)
_DELETION = re.compile(r"delete|remove|clear|reset|purge|rmtree|wipe|drop", re.IGNORECASE)
_PREFIXES = ("build_", "run_", "fetch_", "init_", "set_")

ADVICE = {
    "never-timestamped": (
        "no job reached from this endpoint timestamps {x}: add "
        "RedisPrep.getInstance(wd).timestamp(TaskEnum.{m}) at the end of the job "
        "(or @timestamps(TaskEnum.{m})), or keep the call (# redisprep: keep)"
    ),
    "timestamps-other-task": (
        "fix the worker to timestamp {x}, or add a cascade from the stamped task to "
        "{x}'s controllers and a check that makes {x} not-done, or keep the call"
    ),
    "deletion": "the call is the feature (results are removed): keep it (# redisprep: keep)",
    "job-not-found": "add the job's module to --workers and run again, or keep the call",
    "no-job": (
        "the endpoint enqueues no job, so nothing stamps {x} later: keep the call "
        "(# redisprep: keep)"
    ),
    "task-not-static": "the task is computed at run time: migrate this call by hand",
    "not-on-every-path": (
        "make every path of the job stamp {x} (stamp it after the branch, or in the arm "
        "named), or keep the call (# redisprep: keep)"
    ),
    "no-caller": (
        "no endpoint reaches this helper: pass the module of its callers as a PATH, or "
        "keep the call (# redisprep: keep)"
    ),
    "caller-not-followed": (
        "the helper is used where no endpoint could be followed (a dispatch table, a "
        "function no route reaches): migrate it by hand, or keep the call"
    ),
}


@dataclass
class CallerVerdict:
    """The verdict of a helper-held call for one endpoint that reaches the helper."""

    endpoint: str
    route: Optional[str]
    path: str
    line: int
    """Where the endpoint is defined."""
    verdict: str
    reason: Optional[str]
    detail: str
    evidence: list[str]
    """The calls from the endpoint to the helper, the cleared call, then the job side."""

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "route": self.route,
            "path": self.path,
            "line": self.line,
            "verdict": self.verdict,
            "reason": self.reason,
            "detail": self.detail,
            "evidence": self.evidence,
        }


@dataclass
class Verdict:
    finding: Finding
    task: Optional[str]
    """The TaskEnum value the call clears (``None`` if not readable)."""
    verdict: str
    reason: Optional[str] = None
    detail: str = ""
    advice: Optional[str] = None
    jobs: list[str] = field(default_factory=list)
    chain: Chain = ()
    evidence: list[str] = field(default_factory=list)
    timestamped: list[str] = field(default_factory=list)
    maybe: list[str] = field(default_factory=list)
    job_removes: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    covered_by: Optional[dict[str, Any]] = None
    callers: Optional[list[CallerVerdict]] = None
    """For a call held by a helper (not an endpoint): one entry per calling endpoint."""
    task_enum: Optional[dict[str, Any]] = None

    @property
    def removable(self) -> bool:
        return self.verdict in ("safe", "covered")

    def to_json(self) -> dict[str, Any]:
        f = self.finding
        return {
            "path": f.path,
            "line": f.line,
            "function": f.function,
            "route": f.route,
            "call": f.call,
            "task": f.task,
            "task_value": self.task,
            "kept": f.kept,
            "fixable": f.fixable,
            "verdict": self.verdict,
            "reason": self.reason,
            "detail": self.detail,
            "advice": self.advice,
            "jobs": self.jobs,
            "evidence": self.evidence,
            "chain": [s.describe() for s in self.chain],
            "timestamped": self.timestamped,
            "maybe_timestamped": self.maybe,
            "job_removes": self.job_removes,
            "covered_by": self.covered_by,
            "unresolved": [f"{n.site}: {n.message}" for n in self.notes],
            "callers": None if self.callers is None else [c.to_json() for c in self.callers],
            "task_enum": self.task_enum,
        }


class Coverage:
    """The rules side of ``covered``: closures, cascade paths, and the check that
    turns X to not-done once Y is newer (evaluated by the Rust checks engine)."""

    def __init__(self, rules: Rules, tasks: Optional[TaskNames] = None) -> None:
        self.rules = rules
        self.tasks = tasks if tasks is not None else TaskNames.bundled()
        known = set(rules.tasks) | set(self.tasks.values)
        self._base = {f"timestamps:{t}": "1000" for t in sorted(known)}
        self._base.update({"attrs:has_sbs": "true", "attrs:sbs_required": "true"})
        self._checks: dict[tuple[str, str], Optional[str]] = {}

    def controllers(self, task: str) -> Optional[list[str]]:
        """The task's controllers, or ``None`` when the rules do not know the task."""
        return list(self.rules.controllers_for(task)) if task in self.rules.tasks else None

    def missing(self, x: str, y: str) -> list[str]:
        mine, theirs = self.controllers(x), self.controllers(y)
        if mine is None or theirs is None:
            return [f"(rules know nothing of {x if mine is None else y})"]
        return [c for c in mine if c not in theirs]

    def check(self, x: str, y: str) -> Optional[str]:
        """The first check that is true while X is newer than Y and false once Y is
        newer (evaluated once per pair: every call clearing X after a job stamping Y
        asks the same question)."""
        if (x, y) not in self._checks:
            before = dict(self._base, **{f"timestamps:{x}": "3000", f"timestamps:{y}": "2000"})
            after = dict(self._base, **{f"timestamps:{x}": "2000", f"timestamps:{y}": "3000"})
            c1 = self.rules.evaluate_checks(before)["checklist"]
            c2 = self.rules.evaluate_checks(after)["checklist"]
            self._checks[x, y] = next((c for c in c1 if c1[c] and not c2.get(c, True)), None)
        return self._checks[x, y]

    def cascade(self, y: str, x: str) -> Optional[list[str]]:
        """The shortest cascade path ``y -> ... -> x`` in the rules, if any."""
        seen = {y}
        queue: deque[list[str]] = deque([[y]])
        while queue:
            path = queue.popleft()
            if path[-1] == x:
                return path
            for nxt in self.rules.cascades_of(path[-1]) if path[-1] in self.rules.tasks else []:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append([*path, nxt])
        return None


def _evidence(finding: Finding, chain: Chain) -> list[str]:
    out = [f"{finding.path}:{finding.line}"]
    for step in chain:
        for loc in (step.site, step.target):
            if loc and loc not in out:
                out.append(loc)
    return out


def _stems(x: str, tasks: TaskNames) -> set[str]:
    names = {x, *tasks.names_of(x)}
    stems = set(names)
    for n in names:
        for p in _PREFIXES:
            if n.startswith(p) and len(n) - len(p) >= 4:
                stems.add(n[len(p) :])
    return stems


def _names_task(x: str, finding: Finding, jobs: list[str], tasks: TaskNames) -> bool:
    text = " ".join([*jobs, finding.route or "", finding.function]).lower()
    return any(s.lower() in text for s in _stems(x, tasks))


def _task(finding: Finding, tasks: TaskNames) -> Optional[str]:
    return tasks.value(finding.task) if finding.task and finding.task != "?" else None


def unverified(finding: Finding, tasks: Optional[TaskNames] = None) -> Verdict:
    return Verdict(
        finding,
        _task(finding, tasks or TaskNames.bundled()),
        "unverified",
        detail="not verified: pass --workers with the job and controller modules",
        evidence=[f"{finding.path}:{finding.line}"],
    )


def judge(
    finding: Finding, trace: Trace, coverage: Coverage, task: Optional[str] = None
) -> Verdict:
    """The verdict for one call, given what following its endpoint found (``task``: the
    value cleared, when the caller's arguments give it and the call's text does not)."""
    v = _judge(finding, trace, coverage, _task(finding, coverage.tasks) or task)
    if v.reason is not None:
        advise(v, coverage.tasks)
    return v


def _judge(finding: Finding, trace: Trace, coverage: Coverage, x: Optional[str]) -> Verdict:
    v = Verdict(
        finding,
        x,
        "unsafe",
        jobs=list(trace.jobs),
        timestamped=sorted(trace.stamps),
        maybe=sorted(trace.maybe),
        job_removes=sorted(trace.job_removes),
        notes=list(trace.notes) + list(trace.missing_jobs),
        evidence=[f"{finding.path}:{finding.line}"],
    )
    v.evidence += [w for w in trace.job_defs.values() if w not in v.evidence]
    if x is None:
        return _unsafe(v, "task-not-static", "the task cleared is not a TaskEnum member or string")
    if x in trace.stamps:
        return _proven(v, "safe", trace.stamps[x], "timestamped at completion: ")
    if trace.enqueues == 0 and not trace.stamps:
        if _DELETION.search(f"{finding.function} {finding.route or ''}"):
            return _unsafe(v, "deletion", "the endpoint removes results and enqueues no job")
        return _unsafe(v, "no-job", "the endpoint enqueues no job")
    if _covered(v, x, trace, coverage):
        return v
    return _not_proven(v, x, trace, coverage)


def _proven(v: Verdict, verdict: str, chain: Chain, detail: str) -> Verdict:
    v.verdict, v.chain = verdict, chain
    v.jobs = [s.label for s in chain if s.kind == "enqueue"] or v.jobs
    v.evidence = _evidence(v.finding, chain)
    v.notes = []  # proven: what else was not followed does not matter
    if verdict == "safe":
        v.detail = detail + " -> ".join(s.describe() for s in chain)
    return v


def _covered(v: Verdict, x: str, trace: Trace, coverage: Coverage) -> bool:
    for y in sorted(trace.stamps):
        missing = coverage.missing(x, y)
        check = coverage.check(x, y)
        if missing or check is None:
            continue
        path = coverage.cascade(y, x)
        _proven(v, "covered", trace.stamps[y], "")
        v.covered_by = {"task": y, "check": check, "cascade": path}
        via = " -> ".join(path) if path else f"{y}'s closure"
        v.detail = (
            f"the job timestamps {y}; the cascade {via} invalidates every controller of {x}, "
            f"and check '{check}' turns {x} not-done once {y} is newer"
        )
        return True
    return False


def _not_proven(v: Verdict, x: str, trace: Trace, coverage: Coverage) -> Verdict:
    finding = v.finding
    if trace.missing_jobs:
        what = "; ".join(f"{n.site}: {n.message}" for n in trace.missing_jobs)
        return _unsafe(v, "job-not-found", f"a job could not be resolved ({what})")
    if x in trace.job_removes or (
        not trace.stamps and _DELETION.search(" ".join([finding.function, *trace.jobs]))
    ):
        if x in trace.job_removes:
            v.chain = trace.job_removes[x]
            v.evidence = _evidence(finding, v.chain)
        return _unsafe(v, "deletion", f"the job removes {x}'s timestamp itself and never sets it")
    if x in trace.maybe:
        v.chain = trace.maybe[x]
        v.evidence = _evidence(finding, v.chain)
        gap = trace.gaps.get(x)
        where = gap.describe(x) if gap else "a path that does not stamp it"
        if gap is not None and gap.site not in v.evidence:
            v.evidence.append(gap.site)
        return _unsafe(v, "not-on-every-path", f"{x} is stamped on some paths only: {where}")
    if trace.stamps:
        others = ", ".join(sorted(trace.stamps))
        first = sorted(trace.stamps)[0]
        v.chain = trace.stamps[first]
        v.evidence = _evidence(finding, v.chain)
        why = _why_not_covered(coverage, x, sorted(trace.stamps))
        bug = " (likely worker bug)" if _names_task(x, finding, trace.jobs, coverage.tasks) else ""
        return _unsafe(
            v, "timestamps-other-task", f"the job timestamps {others}, not {x}{bug}; {why}"
        )
    detail = f"no job or controller reached from the endpoint timestamps {x}"
    if v.notes:
        detail += f"; {len(v.notes)} call(s) could not be followed statically (see unresolved)"
    return _unsafe(v, "never-timestamped", detail)


def _why_not_covered(coverage: Coverage, x: str, ys: list[str]) -> str:
    parts = []
    for y in ys:
        missing = coverage.missing(x, y)
        if missing:
            parts.append(f"{y}'s closure misses {', '.join(missing)}")
        elif coverage.check(x, y) is None:
            parts.append(f"no preflight check turns {x} not-done when {y} is newer")
    return "; ".join(parts) or "not covered"


def _unsafe(v: Verdict, reason: str, detail: str) -> Verdict:
    v.verdict, v.reason, v.detail = "unsafe", reason, detail
    return v


def advise(v: Verdict, tasks: TaskNames) -> None:
    """The advice for an unsafe verdict, naming the task as the application does."""
    if v.reason is not None:
        member = tasks.member(v.task) if v.task else "X"
        v.advice = ADVICE[v.reason].format(x=v.task or "the task", m=member)
