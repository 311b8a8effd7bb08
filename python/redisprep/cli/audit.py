"""``redisprep audit``: compare controller cache entries with their ``.nodb`` files.

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
from collections.abc import Sequence
from typing import Optional, TextIO

from ._common import EXIT_NOT_OK, EXIT_OK, UsageError, add_format, argv_of, guarded, new_parser

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    ap = new_parser(
        "audit",
        "Compare every controller cache entry with its .nodb file: stale (the "
        "cached value differs from the file), orphan (the file is gone), fresh, "
        "absent. Exit 0 nothing stale, 1 stale or orphan entries found, 2 bad input.",
    )
    ap.add_argument("wds", nargs="*", metavar="WD", help="run folders to audit")
    ap.add_argument("--runs-root", metavar="R", help="audit the run folders under R")
    ap.add_argument(
        "--runs",
        metavar="GLOB",
        help="with --runs-root: run folders matching GLOB, relative to R (default '*')",
    )
    add_format(ap)
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
            raise UsageError("--runs needs --runs-root")
        if not args.wds:
            raise UsageError("name run folders (audit WD...) or a runs root (--runs-root R)")
        for wd in args.wds:
            if not os.path.isdir(wd):
                raise UsageError(f"{wd}: not a run folder (no such directory)")
        return [os.path.abspath(wd) for wd in args.wds]
    if args.wds:
        raise UsageError("give run folders or --runs-root, not both")
    root = os.path.abspath(args.runs_root)
    if not os.path.isdir(root):
        raise UsageError(f"--runs-root {args.runs_root}: no such directory")
    pattern = args.runs or "*"
    if os.path.isabs(pattern) or ".." in pattern.split("/"):
        raise UsageError(f"--runs {pattern!r}: must be relative to the runs root")
    matches = glob.glob(os.path.join(glob.escape(root), pattern))
    found = sorted(p for p in matches if os.path.isdir(p))
    if not found:
        raise UsageError(f"no run folder under {root} matches {pattern!r}")
    return found


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .. import config
    from .._audit_report import collect, print_text
    from .._redisprep import Rules

    wds = _run_folders(args)
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
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
    return EXIT_NOT_OK if outcome.bad else EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``audit``; returns the exit status (user errors: one line, exit 2)."""
    args = _parser().parse_args(argv_of(argv))
    return guarded("audit", lambda: run(args, sys.stdout, sys.stderr))
