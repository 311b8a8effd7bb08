"""``python -m redisprep``: the command line.

    rules check [PATH]             validate a rules file (every error with its JSON path)
    rules explain TASK [--wd WD]   which controller caches a task invalidates, and why
    rules graph [--format F]       the task -> controller dependency graph (text, mermaid, dot)
    preflight WD [--json]          wepppy's dependency checklist for a run, with the reasons
    rules check [PATH] --workers W...  also fail on timestamped tasks the rules lack
    migrate PATH... --workers W... [--check] [--fix] [--only ENDPOINT...] [--report]
                                   verify and remove manual remove_timestamp() calls
    migrate-layout ...             copy prep hashes between layouts (see --help)
    demo ...                       the wepppy-shaped demo (see --help)
    audit WD... | --runs-root R    cache entries vs their .nodb files (see --help)

Exit status: 0 success, 1 the thing checked is not OK (invalid rules, unmigrated
calls with ``--check``), 2 bad input or an environment problem (unreadable file,
unknown task, Redis unreachable). User errors print one message, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from ._redisprep import Rules, __version__
from .errors import RedisPrepError, RulesError
from .task import TaskEnum

__all__ = ["main"]

_DELEGATED = ("migrate-layout", "demo", "audit")


class _UsageError(Exception):
    """A user error detected by the CLI itself (exit 2, one line on stderr)."""


def _load_rules(path: Optional[str]) -> Rules:
    """An explicit path, else ``REDISPREP_RULES``, else the packaged default."""
    return Rules.load(path)


def _task_value(rules: Rules, name: str) -> Optional[str]:
    """Accept a task value (``build_rap_ts``) or a TaskEnum member name (``fetch_rap_ts``).

    ``None`` for a TaskEnum task the rules file has no entry for (it invalidates nothing);
    anything else unknown is a usage error.
    """
    if name in rules.tasks:
        return name
    member = TaskEnum.__members__.get(name)
    if member is not None and str(member) in rules.tasks:
        return str(member)
    if member is not None or name in {str(m) for m in TaskEnum}:
        return None
    known = list(rules.tasks) + [m for m in TaskEnum.__members__ if str(TaskEnum[m]) in rules.tasks]
    close = difflib.get_close_matches(name, sorted(set(known)), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise _UsageError(f"unknown task {name!r}: not in the rules file {rules.source}{hint}")


def _label(task: str) -> str:
    """``☁️ Build Climate`` for a task value (or member name), else the task itself."""
    for m in TaskEnum:
        if str(m) == task or m.name == task:
            return f"{m.emoji()} {m.label()}"
    return task


# ----------------------------------------------------------------- rules check


def _cmd_rules_check(args: argparse.Namespace) -> int:
    explicit = args.path or os.environ.get("REDISPREP_RULES")
    source = explicit or "the packaged default rules"
    if explicit and not os.path.isfile(explicit):
        raise _UsageError(f"{explicit}: no such rules file")
    try:
        rules = _load_rules(args.path)
    except RulesError as e:
        issues = e.issues or [("", str(e))]
        print(f"{source}: {len(issues)} error(s)", file=sys.stderr)
        for path, message in issues:
            print(f"  {path or '(top level)'}: {message}", file=sys.stderr)
        return 1
    covered = set(rules.tasks)
    missing = [str(m) for m in TaskEnum if str(m) not in covered]
    print(
        f"OK {rules.source}: version {rules.version}, cache db {rules.db}, "
        f"{len(rules.controllers)} controllers, {len(rules.tasks)} tasks, "
        f"{len(rules.checks)} checks"
    )
    if missing:
        print(
            f"note: {len(missing)} TaskEnum value(s) have no entry and invalidate nothing: "
            + ", ".join(missing),
            file=sys.stderr,
        )
    if args.workers:
        return _check_workers(rules, args.workers)
    return 0


def _check_workers(rules: Rules, paths: list[str]) -> int:
    """Fail (1) when a worker timestamps a task the rules file has no entry for:
    that task's completion would invalidate nothing."""
    from .migrate import MigrationError, Project, iter_python_files, worker_stamps
    from .migrate.edit import read_source

    try:
        sources = [(p, read_source(p)[0]) for p in iter_python_files(paths)]
        stamps = worker_stamps(Project(sources))
    except MigrationError as e:
        raise _UsageError(str(e)) from None
    lacking = {t: sites for t, sites in sorted(stamps.items()) if t not in rules.tasks}
    print(
        f"workers: {len(sources)} module(s), {len(stamps)} task(s) timestamped, "
        f"{len(lacking)} not in the rules"
    )
    for task, sites in lacking.items():
        print(
            f"  {task}: timestamped at {', '.join(sites)}, but {rules.source} has no entry "
            "for it (its completion invalidates nothing)",
            file=sys.stderr,
        )
    return 1 if lacking else 0


# --------------------------------------------------------------- rules explain


def _cmd_rules_explain(args: argparse.Namespace) -> int:
    rules = _load_rules(args.rules)
    task = _task_value(rules, args.task)
    if task is None:
        value = str(TaskEnum[args.task]) if args.task in TaskEnum.__members__ else args.task
        print(f"{value} ({_label(value)}): no entry in {rules.source}; it invalidates nothing")
        return 0
    wd = os.path.abspath(args.wd) if args.wd is not None else None
    entries = rules.explain(task, wd)
    if args.json:
        doc = {
            "task": task,
            "rules": rules.source,
            "db": rules.db,
            "cascades": rules.cascades_of(task),
            "controllers": entries,
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print(f"{task} ({_label(task)}), rules {rules.source}")
    cascades = rules.cascades_of(task)
    print(f"  cascades to: {', '.join(cascades) if cascades else '(nothing)'}")
    if not entries:
        print("  invalidates nothing")
        return 0
    print(f"  invalidates {len(entries)} controller cache(s) in Redis DB {rules.db}:")
    width = max(len(str(e["controller"])) for e in entries)
    for e in entries:
        via = [str(v) for v in e["via"]]
        why = "directly" if e["direct"] else "via " + " -> ".join(via)
        print(f"    {e['controller']!s:<{width}}  {why}")
        for key in e["keys"]:
            print(f"    {'':<{width}}    key {key}")
        for pattern in e["patterns"]:
            print(f"    {'':<{width}}    pattern {pattern}")
    if wd is None:
        print("  (keys shown as templates; pass --wd RUN_FOLDER to render them)")
    return 0


# ----------------------------------------------------------------- rules graph


def _text_graph(rules: Rules) -> str:
    lines = [f"# {rules.source}: task -> controllers it invalidates (db {rules.db})"]
    for task in rules.tasks:
        entries = rules.explain(task)
        direct = [str(e["controller"]) for e in entries if e["direct"]]
        cascades = rules.cascades_of(task)
        lines.append(f"{task}  ({_label(task)})")
        lines.append(f"  invalidates: {', '.join(direct) if direct else '-'}")
        if cascades:
            lines.append(f"  cascades:    {', '.join(cascades)}")
        lines.append(f"  closure:     {len(entries)} controller(s)")
    return "\n".join(lines)


def _cmd_rules_graph(args: argparse.Namespace) -> int:
    rules = _load_rules(args.rules)
    print(_text_graph(rules) if args.format == "text" else rules.graph(args.format).rstrip("\n"))
    return 0


# ------------------------------------------------------------------- preflight


def _check_label(check: str, task: Optional[str]) -> str:
    """``☁️ Build Climate`` for the task a check is about (as the Rust evaluator names
    it), else for a TaskEnum member named like the check (``sbs_map`` ->
    ``init_sbs_map``); ``""`` when neither is a TaskEnum member."""
    member = next((m for m in TaskEnum if str(m) == task), None) if task else None
    if member is None:
        member = next(
            (m for m in TaskEnum if check in (m.name, str(m)) or m.name.endswith("_" + check)),
            None,
        )
    return f"{member.emoji()} {member.label()}" if member else ""


def _fmt_time(value: Optional[int]) -> str:
    if value is None:
        return "never"
    try:
        when = datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(value)
    return f"{when} ({value})"


def _cmd_preflight(args: argparse.Namespace) -> int:
    from . import active_rules
    from .prep import RedisPrep

    wd = os.path.abspath(args.wd)  # `preflight .` inside a run folder names the run
    prep = RedisPrep.__new__(RedisPrep, wd)  # read-only: no attrs:loaded write, no dump
    fields = dict(prep._hgetall())
    checked = fields
    source = f"Redis hash {prep.hash_key!r}"
    rules = active_rules() or Rules.load()
    if fields.get("attrs:loaded") != "true" and os.path.exists(prep.dump_filepath):
        # Not loaded into Redis yet (e.g. after a Redis restart): read the dump instead
        # of loading it, so this command never writes.
        try:
            with open(prep.dump_filepath, encoding="utf-8") as f:
                dumped = json.load(f)
        except (OSError, ValueError) as e:
            raise _UsageError(f"{prep.dump_filepath}: cannot read: {e}") from None
        if not isinstance(dumped, dict):
            raise _UsageError(f"{prep.dump_filepath}: not a JSON object")
        checked = {str(k): str(v) for k, v in dumped.items()}
        source = f"{prep.dump_filepath} (the Redis hash is not loaded)"
    # The checklist, the reasons, each check's task and the groups the reasons name:
    # all from the Rust evaluator, on the one snapshot read above.
    report = rules.explain_checks(checked)
    if args.json:
        out: dict[str, Any] = {
            "checklist": report["checklist"],
            "lock_statuses": report["lock_statuses"],
            "last_modified": report["last_modified"],
            "explain": report["explain"],
        }
        out.update(run_id=prep.run_id, wd=wd, source=source)
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    checklist: dict[str, bool] = report["checklist"]
    reasons: dict[str, list[str]] = report["explain"]
    tasks: dict[str, Optional[str]] = report["tasks"]
    groups: dict[str, Any] = report["groups"]
    passed = sum(1 for ok in checklist.values() if ok)
    print(f"Preflight for run {prep.run_id} ({wd})")
    print(f"  from {source}; rules {rules.source}")
    print(f"  last modified: {_fmt_time(report['last_modified'])}")
    if not fields and source.startswith("Redis"):
        print("  (no prep hash for this run in Redis: every timestamp is missing)")
        if not os.path.isdir(wd):
            print(f"  (and {wd} is not a folder: is this the right run?)")
    print()
    width = max((len(c) for c in checklist), default=0)
    for check, ok in checklist.items():
        print(f"  {'✓' if ok else '✗'} {check:<{width}}  {_check_label(check, tasks.get(check))}")
        for reason in reasons.get(check, []):
            print(f"      {check}: {reason}")
    if groups:
        print()
        for g in sorted(groups):
            print(f"  @{g} = {json.dumps(groups[g])}")
    locks: dict[str, bool] = report["lock_statuses"]
    if locks:
        held = ", ".join(f"{name} {'locked' if v else 'unlocked'}" for name, v in locks.items())
        print(f"\n  locks: {held}")
    print(f"\n{passed}/{len(checklist)} checks pass")
    return 0


# ------------------------------------------------------------------ delegation


def _delegate(name: str, argv: list[str]) -> int:
    if name == "migrate-layout":
        from .layout import main as layout_main

        return layout_main(argv)
    if name == "audit":
        from ._audit_cli import main as audit_main

        return audit_main(argv)
    try:
        from .demo import main as demo_main  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as e:
        if e.name not in ("redisprep.demo", f"{__package__}.demo"):
            missing = e.name or "a module"
            raise _UsageError(
                f"the demo needs {missing!r}, which is not installed "
                "(pip install 'redisprep[demo]' or flask and rq)"
            ) from None
        raise _UsageError("the demo is not available in this installation") from None
    code = demo_main(argv)
    return int(code or 0)


def _cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate import main as migrate_main

    return migrate_main(list(args.rest))


# ---------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="redisprep",
        description="redisprep: drop-in RedisPrep with cache invalidation rules.",
        epilog=(
            "exit status: 0 ok, 1 checked and found problems, 2 bad input or environment. "
            "Environment: REDIS_URL (or RQ_REDIS_URL, REDIS_HOST/REDIS_PORT), REDISPREP_RULES."
        ),
    )
    ap.add_argument("--version", action="version", version=f"redisprep {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    rules = sub.add_parser("rules", help="check, explain and graph the rules file")
    rsub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)

    p = rsub.add_parser(
        "check",
        help="validate a rules file",
        description="Validate a rules file; list every error with its JSON path (exit 1).",
    )
    p.add_argument(
        "path", nargs="?", help="rules file (default: $REDISPREP_RULES, else the packaged file)"
    )
    p.add_argument(
        "--workers",
        nargs="+",
        metavar="PATH",
        help="job/controller modules: fail when they timestamp a task the rules lack",
    )
    p.set_defaults(func=_cmd_rules_check)

    p = rsub.add_parser(
        "explain",
        help="which caches a task invalidates, and why",
        description="The controllers (and cache keys) a task invalidates, with the cascade path.",
    )
    p.add_argument("task", metavar="TASK", help="task value or TaskEnum name (build_climate)")
    p.add_argument("--wd", help="run folder: render the cache keys for it")
    p.add_argument("--rules", metavar="PATH", help="rules file (default: the active rules)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_rules_explain)

    p = rsub.add_parser(
        "graph",
        help="the task -> controller dependency graph",
        description="The dependency graph: text, or Mermaid/DOT for the docs.",
    )
    p.add_argument("--format", choices=("text", "mermaid", "dot"), default="text")
    p.add_argument("--rules", metavar="PATH", help="rules file (default: the active rules)")
    p.set_defaults(func=_cmd_rules_graph)

    p = sub.add_parser(
        "preflight",
        help="a run's dependency checklist",
        description=(
            "wepppy's preflight checklist for a run folder, read from Redis (one HGETALL, "
            "no writes), with the inputs that make each failing check false."
        ),
    )
    p.add_argument("wd", metavar="WD", help="run folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_preflight)

    p = sub.add_parser(
        "migrate",
        help="find/remove manual remove_timestamp() calls in endpoints",
        add_help=False,
        prefix_chars="\0",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_migrate)

    for name, text in (
        ("migrate-layout", "copy prep hashes between standalone and cluster layouts"),
        ("demo", "run the wepppy-shaped demo"),
        ("audit", "compare controller cache entries with their .nodb files"),
    ):
        sub.add_parser(name, help=text, add_help=False)
    return ap


def _safe_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure: Optional[Callable[..., None]] = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - detached stream
                pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit status (``python -m redisprep`` exits with it)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    _safe_stdio()
    try:
        if args_list and args_list[0] in _DELEGATED:
            return _delegate(args_list[0], args_list[1:])
        args = _parser().parse_args(args_list)
        code: int = args.func(args)
        return code
    except _UsageError as e:
        print(f"redisprep: error: {e}", file=sys.stderr)
        return 2
    except RedisPrepError as e:
        print(f"redisprep: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): not an error worth a traceback.
        try:
            sys.stdout = open(os.devnull, "w")  # silence the exit-time flush
        except OSError:
            pass
        return 1
