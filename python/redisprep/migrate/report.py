"""Human output of the migration: the verdict table grouped by endpoint, and the
worker-side report."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from .analyse import WorkerReport
from .scan import PRAGMA
from .verdict import CallerVerdict, Verdict

__all__ = ["describe_task_enum", "format_report", "format_table", "summary"]

_WIDTH = 100
_MAX_NOTES = 5


def _status(v: Verdict) -> str:
    if v.finding.kept:
        return f"kept ({v.verdict})"
    if v.verdict == "unsafe":
        return f"UNSAFE {v.reason}"
    return v.verdict


def describe_task_enum(doc: dict[str, Any]) -> str:
    if doc.get("where"):
        return f"task names: the application's TaskEnum at {doc['where']}"
    return (
        "task names: no application TaskEnum found in the analysed tree; "
        "using redisprep's bundled copy"
    )


def _wrap(lines: list[str], body: list[str], indent: str) -> None:
    for text in body:
        lines.extend(
            textwrap.wrap(
                text,
                _WIDTH,
                initial_indent=indent,
                subsequent_indent=indent + "    ",
                break_on_hyphens=False,
            )
        )


def _body(v: Verdict) -> list[str]:
    f = v.finding
    body = [v.detail]
    if f.kept:
        body.append(f"marked # {PRAGMA}: never touched")
    elif not f.fixable:
        body.append("edit by hand: the call is not a statement of its own")
    extra = [t for t in v.timestamped if t != v.task]
    if extra and v.verdict != "unverified" and v.callers is None:
        body.append("also timestamps: " + ", ".join(extra))
    if v.verdict == "unsafe" and v.callers is None:
        if v.chain:
            body.append("chain: " + " -> ".join(s.describe() for s in v.chain))
        elif v.jobs:
            body.append("jobs followed: " + ", ".join(v.jobs))
        shown = v.notes[:_MAX_NOTES]
        for n in shown:
            body.append(f"not followed: {n.site}: {n.message}")
        if len(v.notes) > len(shown):
            body.append(f"... and {len(v.notes) - len(shown)} more (see --format json)")
    if v.advice and not f.kept:
        body.append("do: " + v.advice)
    return body


def _caller_rows(lines: list[str], callers: list[CallerVerdict]) -> None:
    """One sub-row per endpoint reaching the helper, with its own verdict and evidence."""
    if not callers:
        lines.append(" " * 9 + "callers: none (no endpoint reaches this helper)")
    for c in callers:
        status = f"UNSAFE {c.reason}" if c.verdict == "unsafe" else c.verdict
        route = f" ({c.route})" if c.route else ""
        lines.append(f"{' ' * 9}<- {c.endpoint}{route} {c.path}:{c.line}  {status}")
        body = [c.detail] if c.verdict == "unsafe" else []
        shown = c.evidence if len(c.evidence) <= 5 else [*c.evidence[:3], "...", c.evidence[-1]]
        body.append("evidence: " + " -> ".join(shown))
        _wrap(lines, body, " " * 14)


def format_table(verdicts: Sequence[Verdict]) -> str:
    """One block per endpoint (or helper): a row per call (line, task, verdict) with its
    evidence; a helper's row has one sub-row per calling endpoint."""
    lines: list[str] = []
    groups: dict[tuple[str, str], list[Verdict]] = {}
    for v in verdicts:
        groups.setdefault((v.finding.path, v.finding.function), []).append(v)
    task_w = max((len(v.finding.task or f"({v.task})") for v in verdicts), default=4)
    for (path, function), vs in groups.items():
        route = vs[0].finding.route
        kind = f" ({route})" if route else " (helper)" if vs[0].callers is not None else ""
        lines.append(f"{path}: {function}{kind}")
        for v in vs:
            f = v.finding
            task = f.task or (f"({v.task})" if v.task else "?")  # bound by the callers
            lines.append(f"  {f.line:>5}  {task:<{task_w}}  {_status(v)}")
            _wrap(lines, _body(v), " " * 9)
            if v.callers is not None:
                _caller_rows(lines, v.callers)
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def summary(verdicts: Sequence[Verdict]) -> str:
    counts: dict[str, int] = {}
    for v in verdicts:
        key = "kept" if v.finding.kept else v.verdict
        counts[key] = counts.get(key, 0) + 1
    order = ("safe", "covered", "unsafe", "unverified", "kept")
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    return f"{len(verdicts)} call(s): " + (", ".join(parts) if parts else "none")


def format_report(report: WorkerReport) -> str:
    out: list[str] = ["Jobs whose timestamps differ from what their endpoint clears:"]
    if not report.mismatched:
        out.append("  (none)")
    for m in report.mismatched:
        out.append(f"  {m['path']}: {m['endpoint']} -> {', '.join(m['jobs'])}")
        out.append(f"      clears:     {', '.join(m['clears']) or '-'}")
        out.append(f"      timestamps: {', '.join(m['timestamps']) or '-'}")
        if m["timestamped_not_cleared"]:
            out.append(f"      stamped, not cleared: {', '.join(m['timestamped_not_cleared'])}")
        if m["cleared_not_timestamped"]:
            out.append(f"      cleared, not stamped: {', '.join(m['cleared_not_timestamped'])}")
    for title, tasks, verb in (
        ("Tasks that endpoints clear but no worker timestamps:", report.never_stamped, "cleared"),
        (
            "Tasks that workers timestamp but the rules file lacks:",
            report.not_in_rules,
            "timestamped",
        ),
    ):
        out += ["", title]
        if not tasks:
            out.append("  (none)")
        for task, sites in sorted(tasks.items()):
            out.append(f"  {task}: {verb} at {', '.join(sites)}")
    return "\n".join(out)
