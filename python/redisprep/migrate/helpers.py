"""Calls held by helpers: a ``remove_timestamp`` in a function that is not an endpoint
is judged once per endpoint that reaches it (:mod:`.callers`), with that endpoint's
jobs, and the verdicts are combined:

- ``safe`` (or ``covered``) only if every caller is safe (or covered);
- else ``unsafe``, with the reason of the first failing caller, naming each failing
  caller and its reason;
- ``unsafe`` ``no-caller`` when no endpoint reaches the helper, and
  ``caller-not-followed`` when a use of the helper could not be followed (a dispatch
  table, a function no endpoint reaches).
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from typing import Optional

from .atoms import Func
from .callers import CallerPath, Callers, Reference
from .evidence import Trace
from .scan import Finding
from .trace import Tracer
from .verdict import CallerVerdict, Coverage, Verdict, advise, judge

__all__ = ["judge_helper"]

_OK = ("safe", "covered")


def _task_from_caller(
    helper: Func, finding: Finding, path: CallerPath, tracer: Tracer
) -> Optional[str]:
    """The task a ``remove_timestamp(task)`` clears when ``task`` is a helper parameter
    bound by this caller (one task only)."""
    for node in ast.walk(helper.node):
        if (
            isinstance(node, ast.Call)
            and node.lineno == finding.line
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "remove_timestamp"
            and node.args
        ):
            frame = tracer.ev.frame_for(helper, dict(path.bindings))
            tasks = tracer.ev.tasks(tracer.ev.eval(node.args[0], frame))
            return next(iter(tasks)) if len(tasks) == 1 else None
    return None


def _per_caller(
    finding: Finding,
    helper: Func,
    path: CallerPath,
    follow: Callable[[Func], Trace],
    tracer: Tracer,
    coverage: Coverage,
) -> tuple[CallerVerdict, Verdict]:
    e = path.endpoint
    as_endpoint = dataclasses.replace(finding, function=e.qualname, route=path.route)
    task = None
    if not finding.task or finding.task == "?":
        task = _task_from_caller(helper, finding, path, tracer)
    v = judge(as_endpoint, follow(e), coverage, task)
    if task is not None:
        v.detail = f"(task {task}, bound by this call) {v.detail}"
    evidence = [f"{e.module.path}:{e.node.lineno}"]
    for step in path.steps:
        for loc in (step.site, step.target):
            if loc and loc not in evidence:
                evidence.append(loc)
    evidence += [loc for loc in v.evidence if loc not in evidence]
    cv = CallerVerdict(
        e.qualname,
        path.route,
        e.module.path,
        e.node.lineno,
        v.verdict,
        v.reason,
        v.detail,
        evidence,
    )
    return cv, v


def _unfollowed(ref: Reference) -> CallerVerdict:
    path, _, line = ref.site.rpartition(":")
    detail = f"{ref.where} uses the helper at {ref.site}; no endpoint could be followed to that use"
    return CallerVerdict(
        f"{ref.where} (not followed)",
        None,
        path,
        int(line),
        "unsafe",
        "caller-not-followed",
        detail,
        [ref.site],
    )


def judge_helper(
    finding: Finding,
    helper: Func,
    callers: Callers,
    follow: Callable[[Func], Trace],
    tracer: Tracer,
    coverage: Coverage,
) -> Verdict:
    """The combined verdict of a helper-held call, with one entry per caller."""
    judged = [
        _per_caller(finding, helper, p, follow, tracer, coverage)
        for p in callers.paths.get(id(helper.node), [])
    ]
    entries = [cv for cv, _ in judged] + [
        _unfollowed(r) for r in callers.unexplained(helper.node, helper.module)
    ]
    site = f"{finding.path}:{finding.line}"
    failing = [c for c in entries if c.verdict not in _OK]
    base = next((v for cv, v in judged if cv.verdict not in _OK), judged[0][1] if judged else None)
    if base is None:
        v = Verdict(finding, coverage.tasks.value(finding.task) if finding.task else None, "unsafe")
        base = v
    v = dataclasses.replace(base, finding=finding, callers=entries, covered_by=base.covered_by)
    v.evidence = [site]
    for c in entries:
        v.evidence += [loc for loc in c.evidence if loc not in v.evidence]
    v.jobs = list(dict.fromkeys(j for _, cv in judged for j in cv.jobs))
    if not entries:
        v.verdict, v.reason, v.chain = "unsafe", "no-caller", ()
        v.detail = f"no endpoint reaches {helper.qualname}: nothing shows what follows the clear"
    elif failing:
        v.verdict, v.reason = "unsafe", failing[0].reason
        named = "; ".join(f"{c.endpoint} ({c.reason}: {c.detail})" for c in failing)
        v.detail = f"shared by {len(entries)} caller(s), unsafe for {len(failing)}: {named}"
    else:
        v.verdict = "safe" if all(c.verdict == "safe" for c in entries) else "covered"
        v.reason, v.advice = None, None
        cov = next((cv.covered_by for _, cv in judged if cv.covered_by), None)
        v.covered_by = cov if v.verdict == "covered" else None
        names = ", ".join(f"{c.endpoint} ({c.verdict})" for c in entries)
        v.detail = f"every endpoint reaching {helper.qualname} proves it: {names}"
        v.notes = []
    if v.reason is not None:
        advise(v, coverage.tasks)
    return v
