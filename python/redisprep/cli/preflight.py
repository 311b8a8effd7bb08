"""``redisprep preflight WD [--format text|json] [--task-enum SPEC]``: wepppy's
dependency checklist for a run, read from Redis (one HGETALL, no writes) or from the
dump when the hash is not loaded, with the inputs that make each failing check false,
and a warning for each check that reads tasks the task enum lacks."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from .._redisprep import Rules
from ..task import task_emoji, task_enum, task_label
from ._common import EXIT_OK, UsageError, add_format, argv_of, guarded, new_parser

if TYPE_CHECKING:
    from ..prep import RedisPrep

__all__ = ["main"]


def _check_label(check: str, task: Optional[str]) -> str:
    """``☁️ Build Climate`` for the task a check is about (as the Rust evaluator names
    it), else for a TaskEnum member named like the check (``sbs_map`` ->
    ``init_sbs_map``); ``""`` when neither is a TaskEnum member."""
    tasks = list(task_enum())
    member = next((m for m in tasks if str(m) == task), None) if task else None
    if member is None:
        member = next(
            (m for m in tasks if check in (m.name, str(m)) or m.name.endswith("_" + check)),
            None,
        )
    return f"{task_emoji(member)} {task_label(member)}" if member else ""


def _fmt_time(value: Optional[int]) -> str:
    if value is None:
        return "never"
    try:
        when = datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(value)
    return f"{when} ({value})"


def _snapshot(prep: RedisPrep) -> tuple[dict[str, str], dict[str, str], str]:
    """``(the Redis hash, the fields checked, where they came from)``: the hash, or
    the dump when the hash is not loaded (e.g. after a Redis restart). The dump is
    read, not loaded, so this command never writes."""
    fields = dict(prep._hgetall())
    if fields.get("attrs:loaded") == "true" or not os.path.exists(prep.dump_filepath):
        return fields, fields, f"Redis hash {prep.hash_key!r}"
    try:
        with open(prep.dump_filepath, encoding="utf-8") as f:
            dumped = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{prep.dump_filepath}: cannot read: {e}") from None
    if not isinstance(dumped, dict):
        raise UsageError(f"{prep.dump_filepath}: not a JSON object")
    checked = {str(k): str(v) for k, v in dumped.items()}
    return fields, checked, f"{prep.dump_filepath} (the Redis hash is not loaded)"


def _print_text(
    report: Any, prep: RedisPrep, wd: str, source: str, rules: Rules, empty: bool
) -> None:
    checklist: dict[str, bool] = report["checklist"]
    reasons: dict[str, list[str]] = report["explain"]
    tasks: dict[str, Optional[str]] = report["tasks"]
    groups: dict[str, Any] = report["groups"]
    passed = sum(1 for ok in checklist.values() if ok)
    print(f"Preflight for run {prep.run_id} ({wd})")
    print(f"  from {source}; rules {rules.source}")
    print(f"  last modified: {_fmt_time(report['last_modified'])}")
    if empty:
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


def _cmd_preflight(args: argparse.Namespace) -> int:
    from .. import active_rules
    from ..prep import RedisPrep

    wd = os.path.abspath(args.wd)  # `preflight .` inside a run folder names the run
    prep = RedisPrep.__new__(RedisPrep, wd)  # read-only: no attrs:loaded write, no dump
    fields, checked, source = _snapshot(prep)
    rules = active_rules() or Rules.load()
    # The checklist, the reasons, each check's task and the groups the reasons name:
    # all from the Rust evaluator, on the one snapshot read above.
    report = rules.explain_checks(checked)
    from .._enum_ast import enum_values, unknown_tasks

    unknown = unknown_tasks(rules, enum_values(args.task_enum))
    if args.format == "json":
        out: dict[str, Any] = {
            "checklist": report["checklist"],
            "lock_statuses": report["lock_statuses"],
            "last_modified": report["last_modified"],
            "explain": report["explain"],
            "unknown_tasks": unknown,
        }
        out.update(run_id=prep.run_id, wd=wd, source=source)
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK
    empty = not fields and source.startswith("Redis")
    _print_text(report, prep, wd, source, rules, empty)
    for check, names in unknown.items():
        print(f"warning: check {check} reads task(s) not in the task enum: {', '.join(names)}",
              file=sys.stderr)  # fmt: skip
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    ap = new_parser(
        "preflight",
        "wepppy's preflight checklist for a run folder, read from Redis (one HGETALL, "
        "no writes), with the inputs that make each failing check false.",
    )
    ap.add_argument("wd", metavar="WD", help="run folder")
    add_format(ap, json_alias=True)
    ap.add_argument("--task-enum", metavar="SPEC", help="the application's task enum "
                    "(as for rules check): warn on checks reading tasks it lacks")  # fmt: skip
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``preflight``; returns the exit status."""
    args = _parser().parse_args(argv_of(argv))
    return guarded("preflight", lambda: _cmd_preflight(args))
