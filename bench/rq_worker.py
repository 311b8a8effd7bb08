"""A real forking RQ worker for ``bench/sec_rq.py``, run in burst mode:

    python bench/rq_worker.py URL QUEUE {none,redisprep,legacy}

``none``: the parent imports rq only (*cold*: a job imports what it uses, in its
horse). ``redisprep``: the parent calls ``redisprep.rq.preload()`` first, as a
wepppy worker would. ``legacy``: the parent imports redis-py and the legacy
module. Prints one line of JSON: the seconds ``Worker.work(burst=True)`` took.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]


def main() -> int:
    url, queue, preload = sys.argv[1:4]
    import redis
    from rq import Queue, Worker

    if preload == "redisprep":
        import redisprep.rq

        redisprep.rq.preload()
    elif preload == "legacy":
        import legacy_naive  # noqa: F401
    conn = redis.Redis.from_url(url)
    worker = Worker([Queue(queue, connection=conn)], connection=conn)
    t0 = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    print(json.dumps({"seconds": time.perf_counter() - t0}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
