"""``redisprep rules``: check, explain and graph the cache-invalidation rules.

rules check [PATH] [--workers PATH...]   validate a rules file (every error with its
                                         JSON path, exit 1); --workers also fails on
                                         timestamped tasks the rules lack
rules check [PATH] --task-enum wepppy/nodb/redis_prep.py:TaskEnum
                                         also fails on enum members the rules lack and
                                         on rules tasks that are not members
rules explain TASK [--wd WD] [--format text|json]
                                         which controller caches a task invalidates, and why
rules graph [--format text|json|mermaid|dot]
                                         the task -> controller dependency graph
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

from .._redisprep import Rules
from ..errors import RulesError
from ..task import task_emoji, task_enum, task_label
from ._common import EXIT_NOT_OK, EXIT_OK, UsageError, add_format, argv_of, guarded, new_parser

__all__ = ["main"]


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
    TaskEnum = task_enum()  # the task list in force
    member = TaskEnum.__members__.get(name)
    if member is not None and str(member) in rules.tasks:
        return str(member)
    if member is not None or name in {str(m) for m in TaskEnum}:
        return None
    known = list(rules.tasks) + [m for m in TaskEnum.__members__ if str(TaskEnum[m]) in rules.tasks]
    close = difflib.get_close_matches(name, sorted(set(known)), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise UsageError(f"unknown task {name!r}: not in the rules file {rules.source}{hint}")


def _label(task: str) -> str:
    """``☁️ Build Climate`` for a task value (or member name), else the task itself."""
    for m in task_enum():
        if str(m) == task or m.name == task:
            return f"{task_emoji(m)} {task_label(m)}"
    return task


# ----------------------------------------------------------------- rules check


def _cmd_rules_check(args: argparse.Namespace) -> int:
    explicit = args.path or os.environ.get("REDISPREP_RULES")
    source = explicit or "the packaged default rules"
    if explicit and not os.path.isfile(explicit):
        raise UsageError(f"{explicit}: no such rules file")
    try:
        rules = _load_rules(args.path)
    except RulesError as e:
        issues = e.issues or [("", str(e))]
        print(f"{source}: {len(issues)} error(s)", file=sys.stderr)
        for path, message in issues:
            print(f"  {path or '(top level)'}: {message}", file=sys.stderr)
        return EXIT_NOT_OK
    covered = set(rules.tasks)
    missing = [str(m) for m in task_enum() if str(m) not in covered]
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
    code = _check_workers(rules, args.workers) if args.workers else EXIT_OK
    if args.task_enum:
        code = max(code, _check_task_enum(rules, args.task_enum))
    return code


def _check_task_enum(rules: Rules, spec: str) -> int:
    """Fail (1) on enum members the rules lack and on rules tasks the enum lacks."""
    from .._enum_ast import compare, enum_values

    values = enum_values(spec)
    missing, stray = compare(values, [t for t in rules.tasks if t not in rules.legacy_tasks])
    print(
        f"task enum {spec}: {len(values)} member(s), {len(missing)} with no rules entry, "
        f"{len(stray)} rules task(s) not members"
    )
    for v in missing:
        print(f"  {v}: no entry in {rules.source} (its completion invalidates nothing)",
              file=sys.stderr)  # fmt: skip
    for t in stray:
        print(f"  {t}: in {rules.source} but not a member (a typo, or a removed task?)",
              file=sys.stderr)  # fmt: skip
    return EXIT_NOT_OK if missing or stray else EXIT_OK


def _check_workers(rules: Rules, paths: list[str]) -> int:
    """Fail (1) when a worker timestamps a task the rules file has no entry for:
    that task's completion would invalidate nothing."""
    from ..migrate import MigrationError, Project, iter_python_files, worker_stamps
    from ..migrate.edit import read_source

    try:
        sources = [(p, read_source(p)[0]) for p in iter_python_files(paths)]
        stamps = worker_stamps(Project(sources))
    except MigrationError as e:
        raise UsageError(str(e)) from None
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
    return EXIT_NOT_OK if lacking else EXIT_OK


# --------------------------------------------------------------- rules explain


def _cmd_rules_explain(args: argparse.Namespace) -> int:
    rules = _load_rules(args.rules)
    task = _task_value(rules, args.task)
    if task is None:
        members = task_enum().__members__
        value = str(members[args.task]) if args.task in members else args.task
        print(f"{value} ({_label(value)}): no entry in {rules.source}; it invalidates nothing")
        return EXIT_OK
    wd = os.path.abspath(args.wd) if args.wd is not None else None
    entries = rules.explain(task, wd)
    if args.format == "json":
        doc = {
            "task": task,
            "rules": rules.source,
            "db": rules.db,
            "cascades": rules.cascades_of(task),
            "controllers": entries,
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"{task} ({_label(task)}), rules {rules.source}")
    cascades = rules.cascades_of(task)
    print(f"  cascades to: {', '.join(cascades) if cascades else '(nothing)'}")
    if not entries:
        print("  invalidates nothing")
        return EXIT_OK
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
    return EXIT_OK


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


def _json_graph(rules: Rules) -> str:
    tasks: dict[str, Any] = {}
    for task in rules.tasks:
        entries = rules.explain(task)
        tasks[task] = {
            "invalidates": [str(e["controller"]) for e in entries if e["direct"]],
            "cascades": rules.cascades_of(task),
            "closure": [str(e["controller"]) for e in entries],
        }
    doc = {"rules": rules.source, "db": rules.db, "tasks": tasks}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _cmd_rules_graph(args: argparse.Namespace) -> int:
    rules = _load_rules(args.rules)
    if args.format == "text":
        print(_text_graph(rules))
    elif args.format == "json":
        print(_json_graph(rules))
    else:
        print(rules.graph(args.format).rstrip("\n"))
    return EXIT_OK


# ---------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    ap = new_parser("rules", "Check, explain and graph the cache-invalidation rules file.")
    sub = ap.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
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
    p.add_argument(
        "--task-enum",
        metavar="SPEC",
        help="the application's task enum: path/to/redis_prep.py:TaskEnum (read with ast, "
        "nothing imported) or package.module:TaskEnum (imported); fail on members with no "
        "rules entry and on rules tasks that are not members (except tasks marked legacy)",
    )
    p.set_defaults(func=_cmd_rules_check)

    p = sub.add_parser(
        "explain",
        help="which caches a task invalidates, and why",
        description="The controllers (and cache keys) a task invalidates, with the cascade path.",
    )
    p.add_argument("task", metavar="TASK", help="task value or TaskEnum name (build_climate)")
    p.add_argument("--wd", help="run folder: render the cache keys for it")
    p.add_argument("--rules", metavar="PATH", help="rules file (default: the active rules)")
    add_format(p, json_alias=True)
    p.set_defaults(func=_cmd_rules_explain)

    p = sub.add_parser(
        "graph",
        help="the task -> controller dependency graph",
        description="The dependency graph: text or JSON, or Mermaid/DOT for the docs.",
    )
    add_format(p, choices=("text", "json", "mermaid", "dot"))
    p.add_argument("--rules", metavar="PATH", help="rules file (default: the active rules)")
    p.set_defaults(func=_cmd_rules_graph)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``rules``; returns the exit status."""
    args = _parser().parse_args(argv_of(argv))
    return guarded("rules", lambda: int(args.func(args)))
