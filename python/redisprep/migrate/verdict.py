"""A verdict per manual ``remove_timestamp(TaskEnum.X)`` call, from the job side.

- ``safe``: the job (or its chain) timestamps X at completion.
- ``covered``: it timestamps Y != X, the rules' closure of Y holds every
  controller of X, and a preflight check turns X to not-done once Y is newer.
- ``unsafe`` with a reason: ``never-timestamped``, ``timestamps-other-task``,
  ``deletion``, ``job-not-found``, ``no-job`` (and ``task-not-static`` when the call's
  task cannot be read).
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
from ..task import TaskEnum
from .atoms import task_value
from .scan import Finding
from .trace import Chain, Note, Trace

__all__ = ["REASONS", "VERDICTS", "Coverage", "Verdict", "judge", "unverified"]

VERDICTS = ("safe", "covered", "unsafe", "unverified")
REASONS = (
    "never-timestamped",
    "timestamps-other-task",
    "deletion",
    "job-not-found",
    "no-job",
    "task-not-static",
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
        }


class Coverage:
    """The rules side of ``covered``: closures, cascade paths, and the check that
    turns X to not-done once Y is newer (evaluated by the Rust checks engine)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        known = set(rules.tasks) | {str(m) for m in TaskEnum}
        self._base = {f"timestamps:{t}": "1000" for t in sorted(known)}
        self._base.update({"attrs:has_sbs": "true", "attrs:sbs_required": "true"})
        self._checks: dict[tuple[str, str], Optional[str]] = {}

    def missing(self, x: str, y: str) -> list[str]:
        have = set(self.rules.controllers_for(y))
        return [c for c in self.rules.controllers_for(x) if c not in have]

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


def _stems(x: str) -> set[str]:
    names = {x} | {m.name for m in TaskEnum if str(m) == x}
    stems = set(names)
    for n in names:
        for p in _PREFIXES:
            if n.startswith(p) and len(n) - len(p) >= 4:
                stems.add(n[len(p) :])
    return stems


def _names_task(x: str, finding: Finding, jobs: list[str]) -> bool:
    text = " ".join([*jobs, finding.route or "", finding.function]).lower()
    return any(s.lower() in text for s in _stems(x))


def unverified(finding: Finding) -> Verdict:
    task = task_value(finding.task) if finding.task and finding.task != "?" else None
    return Verdict(
        finding,
        task,
        "unverified",
        detail="not verified: pass --workers with the job and controller modules",
        evidence=[f"{finding.path}:{finding.line}"],
    )


def judge(finding: Finding, trace: Trace, coverage: Coverage) -> Verdict:
    """The verdict for one call, given what following its endpoint found."""
    x = task_value(finding.task) if finding.task and finding.task != "?" else None
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
        v.verdict, v.chain = "safe", trace.stamps[x]
        v.jobs = [s.label for s in v.chain if s.kind == "enqueue"] or v.jobs
        v.evidence = _evidence(finding, v.chain)
        v.detail = "timestamped at completion: " + " -> ".join(s.describe() for s in v.chain)
        v.notes = []  # proven: what else was not followed does not matter
        return v
    if trace.enqueues == 0 and not trace.stamps:
        if _DELETION.search(f"{finding.function} {finding.route or ''}"):
            return _unsafe(v, "deletion", "the endpoint removes results and enqueues no job")
        return _unsafe(v, "no-job", "the endpoint enqueues no job")
    for y in sorted(trace.stamps):
        missing = coverage.missing(x, y)
        check = coverage.check(x, y)
        if missing or check is None:
            continue
        path = coverage.cascade(y, x)
        v.verdict, v.chain = "covered", trace.stamps[y]
        v.jobs = [s.label for s in v.chain if s.kind == "enqueue"] or v.jobs
        v.evidence = _evidence(finding, v.chain)
        v.covered_by = {"task": y, "check": check, "cascade": path}
        v.notes = []
        via = " -> ".join(path) if path else f"{y}'s closure"
        v.detail = (
            f"the job timestamps {y}; the cascade {via} invalidates every controller of {x}, "
            f"and check '{check}' turns {x} not-done once {y} is newer"
        )
        return v
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
    if trace.stamps:
        others = ", ".join(sorted(trace.stamps))
        first = sorted(trace.stamps)[0]
        v.chain = trace.stamps[first]
        v.evidence = _evidence(finding, v.chain)
        why = _why_not_covered(coverage, x, sorted(trace.stamps))
        bug = " (likely worker bug)" if _names_task(x, finding, trace.jobs) else ""
        return _unsafe(
            v, "timestamps-other-task", f"the job timestamps {others}, not {x}{bug}; {why}"
        )
    detail = f"no job or controller reached from the endpoint timestamps {x}"
    if x in trace.maybe:
        detail += " on every path (only some run-time alternatives do)"
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
    member = next((m.name for m in TaskEnum if str(m) == v.task), v.task or "X")
    v.advice = ADVICE[reason].format(x=v.task or "the task", m=member)
    return v
