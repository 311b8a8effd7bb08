"""``python -m redisprep audit``: the command line of :mod:`redisprep.audit`.

    audit WD... [--fix] [--format text|json]
    audit --runs-root R [--runs GLOB] [--fix] [--format text|json]

Exit status: 0 nothing stale or orphaned, 1 stale or orphan entries found (also
with ``--fix``, which then deleted them), 2 bad input or Redis unreachable.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, TextIO

from .audit import STATES, Auditor, Entry, FixResult, RunAudit

__all__ = ["Outcome", "collect", "main", "print_text"]

JSON_VERSION = 1


class _Usage(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="redisprep audit",
        description=(
            "Compare every controller cache entry with its .nodb file: stale (the "
            "cached value differs from the file), orphan (the file is gone), fresh, "
            "absent. Exit 0 nothing stale, 1 stale or orphan entries found, 2 bad input."
        ),
    )
    ap.add_argument("wds", nargs="*", metavar="WD", help="run folders to audit")
    ap.add_argument("--runs-root", metavar="R", help="audit the run folders under R")
    ap.add_argument(
        "--runs",
        metavar="GLOB",
        help="with --runs-root: run folders matching GLOB, relative to R (default '*')",
    )
    ap.add_argument("--format", choices=("text", "json"), default="text")
    ap.add_argument(
        "--fix",
        action="store_true",
        help="delete exactly the stale and orphan entries (atomically per run)",
    )
    ap.add_argument("--rules", metavar="PATH", help="rules file (default: the active rules)")
    ap.add_argument("--redis-url", metavar="URL", help="Redis to audit (default: REDIS_URL...)")
    ap.add_argument("--batch", type=int, default=500, help="runs per pipelined round trip")
    ap.add_argument("--no-progress", action="store_true", help="no progress line on a terminal")
    return ap


def _run_folders(args: argparse.Namespace) -> list[str]:
    if args.runs_root is None:
        if args.runs is not None:
            raise _Usage("--runs needs --runs-root")
        if not args.wds:
            raise _Usage("name run folders (audit WD...) or a runs root (--runs-root R)")
        for wd in args.wds:
            if not os.path.isdir(wd):
                raise _Usage(f"{wd}: not a run folder (no such directory)")
        return [os.path.abspath(wd) for wd in args.wds]
    if args.wds:
        raise _Usage("give run folders or --runs-root, not both")
    root = os.path.abspath(args.runs_root)
    if not os.path.isdir(root):
        raise _Usage(f"--runs-root {args.runs_root}: no such directory")
    pattern = args.runs or "*"
    if os.path.isabs(pattern) or ".." in pattern.split("/"):
        raise _Usage(f"--runs {pattern!r}: must be relative to the runs root")
    matches = glob.glob(os.path.join(glob.escape(root), pattern))
    found = sorted(p for p in matches if os.path.isdir(p))
    if not found:
        raise _Usage(f"no run folder under {root} matches {pattern!r}")
    return found


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


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from . import config
    from ._redisprep import Rules

    wds = _run_folders(args)
    if args.batch < 1:
        raise _Usage("--batch must be at least 1")
    if args.redis_url is not None:
        config.configure(args.redis_url)
    outcome = collect(
        wds,
        fix=args.fix,
        entries=args.format == "json",
        rules=Rules.load(args.rules) if args.rules else None,
        batch=args.batch,
        progress=None if args.no_progress else err,
    )
    if args.format == "json":
        print(json.dumps(outcome.report, ensure_ascii=False), file=out)  # indent: 3x slower
    else:
        print_text(outcome, out)
    return 1 if outcome.bad else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``audit``; returns the exit status (user errors: one line, exit 2)."""
    import redis

    from .errors import RedisPrepError

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return run(args, sys.stdout, sys.stderr)
    except (_Usage, RedisPrepError) as e:
        print(f"redisprep audit: error: {e}", file=sys.stderr)
        return 2
    except redis.exceptions.RedisError as e:
        print(f"redisprep audit: error: Redis: {e}", file=sys.stderr)
        return 2
