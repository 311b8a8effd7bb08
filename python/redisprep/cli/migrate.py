"""``redisprep migrate``: list the manual ``remove_timestamp()`` calls of the
endpoints, verify each against the job side, remove the ones proven safe. The
command is :mod:`redisprep.migrate.cli`; this module hands it the arguments as
they are (``redisprep migrate --help`` is its help)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from ._common import argv_of, guarded

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``migrate``; returns the exit status."""
    from ..migrate.cli import main as migrate_main

    args = argv_of(argv)
    return guarded("migrate", lambda: migrate_main(args))
