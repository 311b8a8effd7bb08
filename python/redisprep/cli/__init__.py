"""``python -m redisprep``: the command line, one module per command.

The dispatcher reads the first word, imports that command's module (lazily: the
demo's Flask and RQ are not imported for ``rules``) and hands it the rest of the
arguments. Every command module has ``main(argv) -> int``, its own parser (prog
``redisprep <command>``) and runs its body under :func:`._common.guarded`, so
every command prints errors as ``redisprep <command>: error: ...``.

Exit status: 0 success, 1 the thing checked is not OK (invalid rules, unmigrated
calls with ``--check``, stale cache entries), 2 bad input or an environment
problem (unreadable file, unknown task, Redis unreachable).

Adding a command: write ``cli/<module>.py`` with ``main(argv) -> int`` and add
one line to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Callable, NamedTuple, Optional, cast

from .._redisprep import __version__
from ._common import argv_of

__all__ = ["COMMANDS", "Command", "main"]


class Command(NamedTuple):
    name: str  # what the user types
    module: str  # the module under redisprep.cli with main(argv) -> int
    summary: str  # one line for ``redisprep --help``


COMMANDS: tuple[Command, ...] = (
    Command("rules", "rules", "check, explain and graph the rules file"),
    Command("preflight", "preflight", "a run's dependency checklist, with the reasons"),
    Command("migrate", "migrate", "verify and remove manual remove_timestamp() calls"),
    Command("audit", "audit", "compare controller cache entries with their .nodb files"),
    Command("migrate-layout", "migrate_layout", "copy prep hashes between Redis layouts"),
    Command("demo", "demo", "run the wepppy-shaped demo (Flask, RQ, a private Redis)"),
)


def _parser() -> argparse.ArgumentParser:
    width = max(len(c.name) for c in COMMANDS)
    listing = "\n".join(f"  {c.name:<{width}}  {c.summary}" for c in COMMANDS)
    ap = argparse.ArgumentParser(
        prog="redisprep",
        usage="redisprep [-h] [--version] COMMAND [ARGS...]",
        description="redisprep: drop-in RedisPrep with cache invalidation rules.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            f"commands:\n{listing}\n\n"
            "'redisprep COMMAND --help' shows a command's options.\n"
            "exit status: 0 ok, 1 checked and found problems, 2 bad input or environment.\n"
            "environment: REDIS_URL (or RQ_REDIS_URL, REDIS_HOST/REDIS_PORT), REDISPREP_RULES."
        ),
    )
    ap.add_argument("--version", action="version", version=f"redisprep {__version__}")
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
    args = argv_of(argv)
    _safe_stdio()
    ap = _parser()
    if not args or args[0].startswith("-"):
        ap.parse_args(args)  # --help, --version or a misplaced option: exits
        ap.error("the following arguments are required: COMMAND")
    command = next((c for c in COMMANDS if c.name == args[0]), None)
    if command is None:
        names = ", ".join(c.name for c in COMMANDS)
        ap.error(f"unknown command {args[0]!r} (choose from {names})")
    module = importlib.import_module(f"{__name__}.{command.module}")
    run = cast(Callable[[list[str]], int], module.main)
    return int(run(args[1:]) or 0)
