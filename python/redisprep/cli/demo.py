"""``redisprep demo [--once] ...``: the wepppy-shaped demo.

Starts a private ``redis-server`` (or uses ``--redis-url``), one real forking RQ
worker process, and the Flask app (the migrated ``rq_api`` endpoints plus the run
status page) on a local port; creates a sample run with warm caches and prints
the status page URL. Runs until Ctrl-C. ``--once`` runs one scripted round
instead and exits 0 when everything happened as it should, 1 when not. The
launcher is :mod:`redisprep._demo.launch`; this module parses and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Optional

from ._common import UsageError, argv_of, guarded, new_parser, report_error

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    ap = new_parser(
        "demo",
        "Run the wepppy-shaped demo: private Redis, one RQ worker, the Flask app "
        "and a run status page.",
    )
    ap.add_argument("--redis-url", default=None, help="use this Redis (default: start one)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="web port (default: a free one)")
    ap.add_argument("--runs-root", default=None, help="run folders (default: a temp folder)")
    ap.add_argument("--runid", default="demo-run")
    ap.add_argument("--config", default="dev_unit")
    ap.add_argument("--queue", default="redisprep-demo", help="RQ queue name")
    ap.add_argument("--timeout", type=float, default=60.0, help="--once: job wait limit (s)")
    ap.add_argument("--once", action="store_true", help="run one scripted round and exit")
    ap.add_argument(
        "--no-events",
        action="store_true",
        help="do not publish invalidation events (the status page then has no live feed)",
    )
    return ap


def _run(args: argparse.Namespace) -> int:
    for module in ("flask", "rq"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise UsageError(
                f"the demo needs {module}, which is not installed: "
                "pip install 'redisprep[flask,rq]'"
            ) from None
    from .._demo.launch import run

    return run(args, lambda message: report_error("demo", message))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``demo``; returns the exit status."""
    args = _parser().parse_args(argv_of(argv))
    return guarded("demo", lambda: _run(args))
