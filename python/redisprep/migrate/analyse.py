"""Run the job-side analysis: a verdict per call, and the worker-side report."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from .._redisprep import Rules
from .atoms import Func
from .callers import Callers
from .evidence import Note, Trace
from .helpers import judge_helper
from .index import Module, Project
from .scan import Finding
from .tasks import TaskNames, find_task_enum
from .trace import Tracer
from .verdict import Coverage, Verdict, judge

__all__ = ["WorkerReport", "analyse", "worker_report", "worker_stamps"]


def analyse(
    project: Project,
    findings: Sequence[Finding],
    rules: Rules,
    endpoint_paths: Optional[Sequence[str]] = None,
) -> list[Verdict]:
    """A verdict for each finding (its endpoint followed once, however many calls it
    has). A call in a function that is not an endpoint is judged per calling endpoint
    (:mod:`.helpers`); the endpoints are searched in ``endpoint_paths`` (default: every
    module of the project)."""
    tracer = Tracer(project)
    coverage = Coverage(rules, tracer.ev.task_names)
    traces: dict[Func, Trace] = {}

    def follow(func: Func) -> Trace:
        trace = traces.get(func)
        if trace is None:
            trace = traces[func] = _follow(tracer, func)
        return trace

    held = {f: _helper(tracer, project, f) for f in findings if _held(f)}
    callers: Optional[Callers] = None
    if any(held.values()):
        callers = Callers(
            tracer,
            _modules(project, endpoint_paths),
            [h for h in held.values() if h is not None],
        )
    out: list[Verdict] = []
    for f in findings:
        helper = held.get(f)
        try:
            if helper is not None and callers is not None:
                v = judge_helper(f, helper, callers, follow, tracer, coverage)
            else:
                mod = project.module_at(f.path)
                func = tracer.function_at(mod, f.line, f.function) if mod is not None else None
                v = judge(f, follow(func) if func is not None else Trace(), coverage)
        except RecursionError:  # a safety net only: every step is cycle-guarded
            v = judge(f, _too_deep(f"{f.path}:{f.line}"), coverage)
        v.task_enum = tracer.ev.task_names.to_json()
        out.append(v)
    return out


def _too_deep(site: str) -> Trace:
    trace = Trace()
    trace.missing_jobs.append(Note(site, "the chain is too deep to follow, not followed"))
    trace.enqueues = 1
    return trace


def _follow(tracer: Tracer, func: Func) -> Trace:
    try:
        return tracer.follow(func, None, {})
    except RecursionError:  # a safety net only: every step is cycle-guarded
        return _too_deep(func.where())


def _held(f: Finding) -> bool:
    return f.route is None and f.function != "<module>"


def _helper(tracer: Tracer, project: Project, f: Finding) -> Optional[Func]:
    mod = project.module_at(f.path)
    return tracer.function_at(mod, f.line, f.function) if mod is not None else None


def _modules(project: Project, paths: Optional[Sequence[str]]) -> list[Module]:
    if paths is None:
        return list(project.modules.values())
    return [m for m in (project.module_at(p) for p in paths) if m is not None]


def _task_enum_names(mod: Module) -> set[str]:
    names = {"TaskEnum"}
    for name, imp in mod.scope.imports.items():
        if imp.attr == "TaskEnum":
            names.add(name)
    return names


def _task_of(node: ast.expr, names: set[str], tasks: TaskNames) -> Optional[str]:
    if isinstance(node, ast.Attribute):
        base = node.value
        if (isinstance(base, ast.Name) and base.id in names) or (
            isinstance(base, ast.Attribute) and base.attr == "TaskEnum"
        ):
            return tasks.value(node.attr)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and tasks.is_task(node.value):
        return tasks.value(node.value)  # legacy RedisPrep.timestamp() also takes the value
    return None


def worker_stamps(project: Project) -> dict[str, list[str]]:
    """Every task a module of the tree timestamps, read syntactically:
    ``.timestamp(TaskEnum.X)``, ``@timestamps(TaskEnum.X)``,
    ``timestamp_on_success(TaskEnum.X)``. Task value -> ``path:line`` sites."""
    out: dict[str, list[str]] = {}
    tasks = find_task_enum(project)
    for mod in project.modules.values():
        names = _task_enum_names(mod)
        for node in ast.walk(mod.tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            fname = (
                f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            )
            if fname == "timestamp":
                args = node.args[:1]
            elif fname in ("timestamps", "timestamp_on_success"):
                args = list(node.args)
            else:
                continue
            for a in args:
                task = _task_of(a, names, tasks)
                if task is not None:
                    out.setdefault(task, []).append(mod.where(node))
    return out


@dataclass
class WorkerReport:
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    """Jobs whose timestamped tasks differ from the tasks their endpoint clears."""
    never_stamped: dict[str, list[str]] = field(default_factory=dict)
    """Tasks endpoints clear that no worker timestamps: task -> clearing call sites."""
    not_in_rules: dict[str, list[str]] = field(default_factory=dict)
    """Tasks workers timestamp that the rules file has no entry for: task -> sites."""

    def to_json(self) -> dict[str, Any]:
        return {
            "mismatched_jobs": self.mismatched,
            "cleared_never_timestamped": self.never_stamped,
            "timestamped_not_in_rules": self.not_in_rules,
        }


def worker_report(project: Project, verdicts: Sequence[Verdict], rules: Rules) -> WorkerReport:
    report = WorkerReport()
    stamps = worker_stamps(project)
    for v in verdicts:  # what following the jobs found (``self._stamp(TaskEnum.X)``...)
        for task in v.timestamped:
            stamps.setdefault(task, [])
    by_endpoint: dict[tuple[str, str], list[Verdict]] = {}
    for v in verdicts:
        by_endpoint.setdefault((v.finding.path, v.finding.function), []).append(v)
    for (path, function), vs in by_endpoint.items():
        cleared = sorted({v.task for v in vs if v.task})
        stamped = sorted(set().union(*(v.timestamped for v in vs)))
        jobs = list(dict.fromkeys(j for v in vs for j in v.jobs))
        if not jobs or stamped == cleared:
            continue
        report.mismatched.append(
            {
                "endpoint": function,
                "path": path,
                "jobs": jobs,
                "clears": cleared,
                "timestamps": stamped,
                "cleared_not_timestamped": [t for t in cleared if t not in stamped],
                "timestamped_not_cleared": [t for t in stamped if t not in cleared],
            }
        )
    for v in verdicts:
        if v.task and v.task not in stamps:
            report.never_stamped.setdefault(v.task, []).append(f"{v.finding.path}:{v.finding.line}")
    known = set(rules.tasks)
    for task, sites in sorted(stamps.items()):
        if task not in known:
            report.not_in_rules[task] = sites
    return report
