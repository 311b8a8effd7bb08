"""The audit's report: :func:`collect` runs :class:`redisprep.audit.Auditor` over run
folders (fixing them on request) and builds the JSON document; :func:`print_text`
prints the human summary. Used by ``redisprep audit`` (:mod:`redisprep.cli.audit`)
and the demo."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, TextIO

from .audit import STATES, Auditor, Entry, FixResult, RunAudit

__all__ = ["JSON_VERSION", "Outcome", "collect", "print_text"]

JSON_VERSION = 1


class _Progress:
    """``audit: 1200/10000 runs`` on a terminal, at most ten times a second."""

    def __init__(self, total: int, stream: TextIO, on: bool) -> None:
        self.total, self.stream, self.on = total, stream, on and stream.isatty()
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.on or (now - self.last < 0.1 and done < self.total):
            return
        self.last = now
        self.stream.write(
            f"\raudit: {done}/{self.total} runs ({100 * done // max(self.total, 1)}%, "
            f"{now - self.start:.1f} s)"
        )
        self.stream.flush()

    def done(self) -> None:
        if self.on:
            self.stream.write("\n")
            self.stream.flush()


def _size(n: Optional[int]) -> str:
    return "?" if n is None else f"{n} B"


def _ttl(ttl: Optional[int]) -> str:
    return "no expiry" if ttl == -1 else ("?" if ttl is None else f"ttl {ttl} s")


def _describe(e: Entry) -> str:
    if e.state == "stale":
        return (
            f"cache {_size(e.cache_bytes)}, file {_size(e.file_bytes)}: "
            f"{e.differing_bytes} B differ from offset {e.first_difference}; {_ttl(e.ttl)}"
        )
    return f"cache {_size(e.cache_bytes)}, {e.file} is gone; {_ttl(e.ttl)}"


def _text(report: dict[str, Any], bad: list[Entry], fixes: list[FixResult], out: TextIO) -> None:
    counts = report["counts"]
    print(
        f"audit: {report['runs']} run(s), {sum(counts.values())} controller cache entries, "
        f"{report['layout']} layout"
        + (f", cache DB {report['db']}" if report["layout"] == "standalone" else "")
        + f", rules {report['rules']}",
        file=out,
    )
    for state in STATES:
        print(f"  {state:<7} {counts[state]}", file=out)
    for state in ("stale", "orphan"):
        listed = [e for e in bad if e.state == state]
        if listed:
            print(f"{state}:", file=out)
            for e in listed:
                print(f"  {e.key}  ({e.run_id}, {e.controller}): {_describe(e)}", file=out)
    for s in report["skipped"]:
        print(f"skipped {s['controller']} {s['template']}: {s['reason']}", file=out)
    if report["fix"] is not None:
        for f in fixes:
            for key in f.deleted:
                print(f"deleted {key}", file=out)
            for key in f.left:
                print(f"left {key}: it changed since the audit read it", file=out)
        deleted = sum(len(f.deleted) for f in fixes)
        print(f"fix: deleted {deleted} entr{'y' if deleted == 1 else 'ies'}", file=out)
    verdict = (
        "nothing stale"
        if not bad
        else f"{len(bad)} stale or orphan entr" + ("y" if len(bad) == 1 else "ies")
    )
    print(f"{verdict} ({report['elapsed_s']:.2f} s)", file=out)


@dataclass
class Outcome:
    """What an audit found (and, with ``fix``, deleted)."""

    report: dict[str, Any]  # the JSON document (``entries`` only when asked for)
    bad: list[Entry]
    fixes: list[FixResult]


def collect(
    wds: Sequence[str],
    *,
    fix: bool = False,
    entries: bool = False,
    rules: Optional[Any] = None,
    batch: int = 500,
    progress: Optional[TextIO] = None,
) -> Outcome:
    """Audit the run folders ``wds`` on the configured Redis (and fix them)."""
    started = time.monotonic()
    auditor = Auditor(rules, batch=batch)
    counts = dict.fromkeys(STATES, 0)
    listed: list[dict[str, Any]] = []
    bad: list[Entry] = []
    fixes: list[FixResult] = []
    bar = _Progress(len(wds), progress or sys.stderr, progress is not None)
    try:
        auditor.client.ping()
        run_audit: RunAudit
        for i, run_audit in enumerate(auditor.audit(wds), 1):
            for e in run_audit.entries:
                counts[e.state] += 1
            if entries:
                listed.extend(e.to_json() for e in run_audit.entries)
            found = run_audit.bad()
            bad.extend(found)
            if fix and found:
                fixes.append(auditor.fix(run_audit))
            bar.update(i)
    finally:
        bar.done()
        auditor.close()
    report: dict[str, Any] = {
        "version": JSON_VERSION,
        "layout": auditor.layout,
        "db": auditor.db,
        "rules": auditor.rules.source,
        "runs": len(wds),
        "counts": counts,
        "skipped": [s.__dict__ for s in auditor.skipped],
        "fix": None,
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    if fix:
        report["fix"] = {
            "deleted": [k for f in fixes for k in f.deleted],
            "left": [k for f in fixes for k in f.left],
        }
    if entries:
        report["entries"] = listed
    return Outcome(report, bad, fixes)


def print_text(outcome: Outcome, out: TextIO) -> None:
    """The human summary: counts per state, the stale and orphan keys, the fix."""
    _text(outcome.report, outcome.bad, outcome.fixes, out)
