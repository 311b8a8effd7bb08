"""What every command shares: the exit statuses, the one error line, the parser
factory and the ``--format`` option.

Exit status of every command: 0 ok, 1 the thing checked is not OK, 2 bad input or
an environment problem (unreadable file, unknown task, Redis unreachable). A user
error prints one line, ``redisprep <command>: error: <message>``, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Callable, NoReturn, Optional

__all__ = [
    "EXIT_NOT_OK",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandParser",
    "UsageError",
    "add_format",
    "argv_of",
    "guarded",
    "new_parser",
    "report_error",
]

EXIT_OK = 0
EXIT_NOT_OK = 1  # the thing checked is not OK (invalid rules, stale entries, ...)
EXIT_USAGE = 2  # bad input or environment (also argparse's own status)


class UsageError(Exception):
    """Bad input or environment found by a command: one line, exit 2."""


def report_error(command: str, message: str) -> None:
    """The one error line: ``redisprep <command>: error: <message>`` on stderr."""
    sys.stdout.flush()
    print(f"redisprep {command}: error: {message}", file=sys.stderr, flush=True)


class CommandParser(argparse.ArgumentParser):
    """argparse's usage errors in the one form, also from a subcommand's parser
    (``redisprep rules graph --format png`` -> ``redisprep rules: error: ...``)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        words = self.prog.split()
        report_error(words[1] if len(words) > 1 else self.prog, message)
        sys.exit(EXIT_USAGE)


def new_parser(command: str, description: str, **kwargs: object) -> argparse.ArgumentParser:
    """A command's parser (prog ``redisprep <command>``; its subparsers share its class)."""
    return CommandParser(
        prog=f"redisprep {command}",
        description=description,
        **kwargs,  # type: ignore[arg-type]
    )


def add_format(
    parser: argparse.ArgumentParser,
    choices: Sequence[str] = ("text", "json"),
    json_alias: bool = False,
) -> None:
    """``--format text|json`` (text by default); ``json_alias`` keeps an older
    ``--json`` flag working as ``--format json``."""
    parser.add_argument(
        "--format",
        choices=tuple(choices),
        default="text",
        help="output format (json: machine-readable)",
    )
    if json_alias:
        parser.add_argument(
            "--json",
            dest="format",
            action="store_const",
            const="json",
            help="same as --format json",
        )


def argv_of(argv: Optional[Sequence[str]]) -> list[str]:
    """``argv``, else the process's own arguments."""
    return list(sys.argv[1:] if argv is None else argv)


def _redis_error(e: BaseException) -> bool:
    exceptions = sys.modules.get("redis.exceptions")  # loaded by anything that talks to Redis
    return exceptions is not None and isinstance(e, exceptions.RedisError)


def guarded(command: str, body: Callable[[], int]) -> int:
    """Run a command's body; user errors become one line and exit 2."""
    from ..errors import RedisPrepError

    try:
        return body()
    except (UsageError, RedisPrepError) as e:
        report_error(command, str(e))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): not an error worth a traceback.
        try:
            sys.stdout = open(os.devnull, "w")  # silence the exit-time flush
        except OSError:
            pass
        return EXIT_NOT_OK
    except Exception as e:
        if _redis_error(e):
            report_error(command, f"Redis: {e}")
            return EXIT_USAGE
        raise
