"""``redisprep migrate``: list the manual ``remove_timestamp()`` calls of the
endpoints, verify each against the job side (``--workers``), and remove only the
ones proven safe (``--fix``). The analysis is the library :mod:`redisprep.migrate`;
this module parses, runs it and prints."""

from __future__ import annotations

import argparse
import difflib
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

from .._redisprep import Rules
from ..errors import RulesError
from ..migrate.analyse import analyse, worker_report
from ..migrate.edit import fix_source, iter_python_files, read_source, write_source
from ..migrate.index import Project
from ..migrate.report import describe_task_enum, format_report, format_table, summary
from ..migrate.scan import Finding, MigrationError, clear_parse_cache, matches, scan, split_lines
from ..migrate.tasks import find_task_enum
from ..migrate.verdict import Verdict, unverified
from ._common import argv_of, guarded, new_parser, report_error

__all__ = ["main"]

_DESCRIPTION = """\
List the manual prep.remove_timestamp(TaskEnum.X) calls in Flask/FastAPI endpoint
modules, verify each against the RQ job side (--workers: the job and controller
modules), and remove the ones proven safe (--fix). Nothing analysed is imported.
Verdicts: safe (the job chain timestamps X), covered (it timestamps Y whose cascade
and a preflight check cover X), unsafe (with a reason), unverified (no --workers).
Exit status: 0 done, 1 removable calls remain (--check) or unsafe ones (--strict),
2 bad input."""


@dataclass
class _File:
    path: str
    text: str
    encoding: str
    findings: list[Finding]
    functions: set[str]


def _parser() -> argparse.ArgumentParser:
    ap = new_parser("migrate", _DESCRIPTION)
    ap.add_argument("paths", nargs="*", metavar="PATH", help="endpoint modules or folders")
    ap.add_argument(
        "--workers",
        nargs="+",
        action="extend",
        default=None,
        metavar="PATH",
        help="job and controller modules or folders (e.g. wepppy/rq wepppy/nodb); "
        "give the endpoint PATHs first, or after --",
    )
    ap.add_argument("--fix", action="store_true", help="remove the safe and covered calls")
    ap.add_argument("--diff", action="store_true", help="print what --fix would change; no write")
    ap.add_argument("--check", action="store_true", help="exit 1 while removable calls remain")
    ap.add_argument("--strict", action="store_true", help="with --check: unsafe calls fail too")
    ap.add_argument(
        "--only",
        nargs="+",
        action="extend",
        default=None,
        metavar="ENDPOINT",
        help="only these endpoints or helpers (repeatable, or comma-separated); an "
        "endpoint also selects the calls in the helpers it reaches",
    )
    ap.add_argument(
        "--force",
        action="store_true",
        help="with --fix --only: also remove unsafe or unverified calls of those endpoints "
        "(or helpers named themselves)",
    )
    ap.add_argument("--report", action="store_true", help="print the worker-side report")
    ap.add_argument("--format", choices=("text", "json"), default="text")
    ap.add_argument("--rules", metavar="PATH", help="rules file (default: the active rules)")
    return ap


def _split(values: Optional[list[str]]) -> list[str]:
    return [p for v in values or [] for p in v.split(",") if p]


@dataclass
class _Options:
    args: argparse.Namespace
    paths: list[str]
    workers: list[str]
    only: Optional[set[str]]


@dataclass
class _Analysis:
    files: list[_File]
    verdicts: list[Verdict]
    project: Optional[Project]
    skipped: bool
    """An endpoint module could not be read or parsed (reported, and exit 2 at the end)."""


def _load(paths: Sequence[str], endpoints: bool = True) -> tuple[list[_File], list[str]]:
    """Read the files; scan the endpoint ones for calls (workers are only indexed). A
    file that cannot be read or parsed is reported and skipped."""
    out, bad = [], []
    for path in iter_python_files(paths):
        try:
            text, encoding = read_source(path)
            hits, functions = scan(text, path) if endpoints else ([], set())
        except MigrationError as e:
            bad.append(str(e))
            continue
        out.append(_File(path, text, encoding, [h.finding for h in hits], functions))
    return out, bad


def _skip(messages: Sequence[str], level: str) -> None:
    for m in messages:
        print(f"redisprep migrate: {level}: {m} (skipped)", file=sys.stderr)


def _verdicts(
    files: list[_File], workers: list[_File], rules: Rules
) -> tuple[list[Verdict], Optional[Project]]:
    findings = [f for file in files for f in file.findings]
    if not workers:
        return [unverified(f) for f in findings], None
    seen: dict[str, _File] = {os.path.realpath(w.path): w for w in workers}
    for f in files:  # endpoint modules may define helpers and jobs too
        seen[os.path.realpath(f.path)] = f
    project = Project((f.path, f.text) for f in seen.values())
    return analyse(project, findings, rules, [f.path for f in files]), project


def _fail(message: str) -> int:
    report_error("migrate", message)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``migrate``; returns the exit status."""
    args = argv_of(argv)
    return guarded("migrate", lambda: _run(args))


def _run(argv: list[str]) -> int:
    # The analysis keeps every parsed tree alive: with the cyclic collector on, each
    # collection walks all of them (measured: 2-3x the whole run on a wepppy-sized
    # tree). Nothing here builds reference cycles that must be freed early.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _main(argv)
    finally:
        clear_parse_cache()  # the trees are freed now, by reference counting
        if enabled:
            gc.enable()


def _options(argv: Optional[list[str]]) -> _Options | int:
    args = _parser().parse_args(argv)
    only_names = _split(args.only)
    paths = list(args.paths)
    for name in list(only_names):  # `--only a b api.py`: the path is not a name
        if os.path.exists(name) or name.endswith(".py") or os.sep in name:
            only_names.remove(name)
            paths.append(name)
    only = set(only_names) if only_names else None
    worker_paths = _split(args.workers)
    if not paths:
        hint = " (put them before --workers, or after --)" if worker_paths else ""
        return _fail(f"no endpoint PATH given{hint}")
    if args.force and only is None:
        return _fail("--force removes unverified calls: name the endpoints with --only")
    if args.report and not worker_paths:
        return _fail("--report needs --workers PATH...")
    return _Options(args, paths, worker_paths, only)


def _analyse(opts: _Options, rules: Rules) -> _Analysis | int:
    try:
        files, bad = _load(opts.paths)
        _skip(bad, "error")
        workers, bad_workers = _load(opts.workers, endpoints=False) if opts.workers else ([], [])
        _skip(bad_workers, "warning")
        all_functions = set().union(*(file.functions for file in files))
        if opts.only is not None and opts.only - all_functions:
            unknown = ", ".join(sorted(opts.only - all_functions))
            return _fail(f"no function named {unknown} in the given paths")
        verdicts, project = _verdicts(files, workers, rules)
    except MigrationError as e:
        return _fail(str(e))
    if project is not None:  # modules that failed to parse when the analysis reached them
        endpoint_paths = {os.path.realpath(f.path) for f in files}
        late = [m for m in project.modules.values() if m.error]
        _skip(
            [m.error or "" for m in late if os.path.realpath(m.path) not in endpoint_paths],
            "warning",
        )
    return _Analysis(files, verdicts, project, bool(bad))


def _main(argv: Optional[list[str]] = None) -> int:
    opts = _options(argv)
    if isinstance(opts, int):
        return opts
    args = opts.args
    try:
        rules = Rules.load(args.rules)
    except (RulesError, OSError) as e:
        return _fail(f"rules: {e}")
    run = _analyse(opts, rules)
    if isinstance(run, int):
        return run
    if args.report:
        assert run.project is not None
        report = worker_report(run.project, run.verdicts, rules)
        doc = report.to_json()
        print(describe_task_enum(find_task_enum(run.project).to_json()), file=sys.stderr)
        print(json.dumps(doc, indent=2) if args.format == "json" else format_report(report))
        return 1 if args.check and any(doc.values()) else 0
    by_finding = {v.finding: v for v in run.verdicts}

    def selected(f: Finding) -> bool:
        return opts.only is None or _selected(by_finding.get(f), f, opts.only)

    fixed: set[Finding] = set()
    if args.fix or args.diff:
        if not opts.workers and not args.force:
            _print(run.verdicts, selected, args.format, fixed, verified=False)
            print(
                "cannot verify without --workers: nothing removed (give --workers with the "
                "job and controller modules, or --force --only ENDPOINT to remove unverified "
                "calls)",
                file=sys.stderr,
            )
            return 2
        failed = _fix(opts, run, by_finding, selected, fixed)
        if failed is not None:
            return failed
    if args.diff:
        return 2 if run.skipped else 0
    _print(run.verdicts, selected, args.format, fixed, verified=bool(opts.workers))
    code = _summarise(opts, run, selected, fixed)
    return 2 if run.skipped else code


def _selected(v: Optional[Verdict], f: Finding, only: set[str]) -> bool:
    """``--only`` names an endpoint or a helper; a helper-held call is selected by the
    helper's name or by any endpoint that reaches it."""
    if matches(f, only):
        return True
    return v is not None and any(c.endpoint in only for c in v.callers or [])


def _fix(
    opts: _Options,
    run: _Analysis,
    by_finding: dict[Finding, Verdict],
    selected: Callable[[Finding], bool],
    fixed: set[Finding],
) -> Optional[int]:
    args = opts.args

    blocked = _blocked_helpers(run.verdicts)

    def allow(f: Finding) -> bool:
        v = by_finding.get(f)
        if v is None or not selected(f):
            return False
        if opts.only is not None and not matches(f, opts.only):  # chosen by an endpoint
            return v.removable and (f.path, f.function) not in blocked
        return v.removable or (args.force and opts.only is not None)

    for file in run.files:
        new, done = fix_source(file.text, file.path, None, allow)
        if args.diff and done:
            for d in difflib.unified_diff(
                split_lines(file.text), split_lines(new), file.path, f"{file.path} (migrated)"
            ):
                sys.stdout.write(d if d.endswith(("\n", "\r")) else d + "\n")
        if args.fix and done:
            try:
                write_source(file.path, new, file.encoding)
            except OSError as e:
                return _fail(f"{file.path}: cannot write: {e}")
            fixed.update(done)
            if args.format == "text":
                for f in done:
                    print(f"fixed {f.describe()}  [{by_finding[f].verdict}]")
    return None


def _blocked_helpers(verdicts: Sequence[Verdict]) -> dict[tuple[str, str], list[str]]:
    """Helpers with an unsafe caller for any of their calls: ``(path, helper)`` ->
    ``"endpoint (reason)"``. Naming one of their endpoints with ``--only`` removes none
    of their calls (the edit would change the other callers too)."""
    out: dict[tuple[str, str], list[str]] = {}
    for v in verdicts:
        for c in v.callers or []:
            entry = f"{c.endpoint} ({c.reason})"
            bad = out.setdefault((v.finding.path, v.finding.function), [])
            if c.reason and entry not in bad:
                bad.append(entry)
    return {k: bad for k, bad in out.items() if bad}


def _shared_notes(verdicts: Sequence[Verdict], only: set[str]) -> list[str]:
    """Why a call in a helper shared with an unsafe caller stays, when ``--only`` named
    one of its endpoints (and not the helper)."""
    blocked = _blocked_helpers(verdicts)
    out = []
    for v in verdicts:
        f = v.finding
        named = [c.endpoint for c in v.callers or [] if c.endpoint in only]
        if not named or matches(f, only) or (f.path, f.function) not in blocked:
            continue
        note = (
            f"{f.path}:{f.line}: not removed for {', '.join(named)}: the call is in "
            f"{f.function}, shared with unsafe caller(s) {', '.join(blocked[f.path, f.function])}"
        )
        if v.removable:
            note += f"; --only {f.function} removes the calls proven for every caller"
        out.append(note)
    return out


def _summarise(
    opts: _Options, run: _Analysis, selected: Callable[[Finding], bool], fixed: set[Finding]
) -> int:
    args, only, verdicts = opts.args, opts.only, run.verdicts
    left = [
        v for v in verdicts if selected(v.finding) and not v.finding.kept and v.finding not in fixed
    ]
    removable = [v for v in left if v.removable or v.verdict == "unverified"]
    unsafe = [v for v in left if v.verdict == "unsafe"]
    endpoints = {(v.finding.path, v.finding.function) for v in left}
    text = f"{len(left)} unmigrated call(s) in {len(endpoints)} function(s)"
    if only is not None:
        text += f" (of {', '.join(sorted(only))})"
    if args.fix:
        text = f"removed {len(fixed)} call(s); " + text
    if opts.workers:
        text += f"; {summary([v for v in verdicts if selected(v.finding)])}"
    sys.stdout.flush()
    for note in _shared_notes(verdicts, only) if only is not None else []:
        print(note, file=sys.stderr)
    if opts.workers and verdicts and verdicts[0].task_enum is not None:
        print(describe_task_enum(verdicts[0].task_enum), file=sys.stderr)
    print(text, file=sys.stderr)
    if not opts.workers:
        print(
            "not verified: pass --workers with the job and controller modules to check "
            "that each job timestamps the task it clears",
            file=sys.stderr,
        )
    elif removable and not args.fix:
        print("run with --fix to remove the safe and covered calls (or --diff)", file=sys.stderr)
    if args.check and (removable or (args.strict and unsafe)):
        return 1
    return 0


def _print(
    verdicts: list[Verdict],
    selected: Callable[[Finding], bool],
    fmt: str,
    fixed: set[Finding],
    verified: bool,
) -> None:
    shown = [v for v in verdicts if selected(v.finding)]
    if fmt == "json":
        docs = [dict(v.to_json(), fixed=v.finding in fixed) for v in shown]
        print(json.dumps(docs, indent=2, ensure_ascii=False))
        return
    if not verified:
        for v in shown:
            if v.finding not in fixed:
                print(v.finding.describe())
        return
    remaining = [v for v in shown if v.finding not in fixed]
    if remaining:
        print(format_table(remaining))
