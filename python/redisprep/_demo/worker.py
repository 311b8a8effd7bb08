"""A real forking RQ worker for the demo jobs, configured for one Redis and one
runs root::

    python -m redisprep._demo.worker --url redis://127.0.0.1:6390/0 \\
        --runs-root /tmp/runs [--queue redisprep-demo] [--burst] [--prep-url URL] [--events]

RQ uses DB 9 of ``--url``; redisprep (prep hashes, caches) uses ``--prep-url``
(default: ``--url``). Run ids resolve to ``<runs-root>/<runid>``. ``--events``
publishes an invalidation event per ``timestamp()`` (else ``REDISPREP_EVENTS``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Optional

__all__ = ["main", "run_worker"]


def run_worker(
    url: str,
    runs_root: str,
    queue_name: str = "redisprep-demo",
    burst: bool = True,
    prep_url: Optional[str] = None,
    events: Optional[bool] = None,
) -> bool:
    """Run ``rq.Worker`` (forks a work horse per job); returns whether it did any job."""
    from rq import Queue, Worker

    from .. import config
    from .app import rq_connection

    runs_root = os.path.abspath(runs_root)
    os.environ["REDISPREP_RUNS_ROOT"] = runs_root
    config.configure(prep_url or url, runs_root=runs_root, events=events)
    conn = rq_connection(url)
    worker = Worker([Queue(queue_name, connection=conn)], connection=conn)
    return bool(worker.work(burst=burst, logging_level="WARNING"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m redisprep._demo.worker")
    parser.add_argument("--url", required=True, help="Redis URL (RQ uses its DB 9)")
    parser.add_argument("--runs-root", required=True)
    parser.add_argument("--queue", default="redisprep-demo")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--prep-url", default=None, help="Redis URL for redisprep (default --url)")
    parser.add_argument("--events", action="store_true", help="publish invalidation events")
    args = parser.parse_args(argv)
    events = True if args.events else None
    run_worker(args.url, args.runs_root, args.queue, args.burst, args.prep_url, events)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
