"""``redisprep doctor``: will redisprep work in this process, with its environment?
Settings (and where each came from), connection and password, server kind and
version, DB access, rules, latency, persistence, keyspace events. Reads only: the
server's data and configuration are not changed. The checks are
:mod:`redisprep._doctor`; this module parses and prints."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

from ._common import add_format, argv_of, guarded, new_parser

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``doctor``; exit 0 every check passed (warnings included), 1 a check
    failed, 2 bad arguments."""
    ap = new_parser(
        "doctor",
        "Check that redisprep will work in this process, with its environment: "
        "settings, connection and password, server, DB access, rules, latency, "
        "persistence, keyspace events. Reads only. Exit 0 ok (warnings included), "
        "1 a check failed, 2 bad arguments.",
    )
    add_format(ap)
    args = ap.parse_args(argv_of(argv))

    def run() -> int:
        from .._doctor import exit_status, render_json, render_text, run_checks

        checks = run_checks()
        print(render_json(checks) if args.format == "json" else render_text(checks))
        sys.stdout.flush()
        return exit_status(checks)

    return guarded("doctor", run)
