"""A real forking RQ worker whose parent calls ``redisprep.rq.preload()`` and then
uses redisprep itself (so it holds a pooled connection when RQ forks), for
tests/test_rq_preload.py:

    python -m support.preload_worker URL QUEUE WD OUT_JSON

Writes what the parent saw (pid, its sockets to Redis, what preload returned) to
OUT_JSON, then works the queue in burst mode. ``stamp`` is the job.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from support.sockets import tcp_ports


def stamp(wd: str, redis_port: int) -> dict[str, Any]:
    """The job: which of redisprep's state the horse found, and which sockets to
    Redis it held before and after its first ``timestamp()``."""
    preloaded = "redisprep._redisprep" in sys.modules and "redisprep.rq" in sys.modules
    before = tcp_ports(os.getpid(), redis_port)
    from redisprep import RedisPrep, active_rules, stats

    connects = stats()["connects"]
    RedisPrep.getInstance(wd).timestamp("build_climate")
    rules = active_rules()
    after = tcp_ports(os.getpid(), redis_port)
    import redis

    with redis.Redis(port=redis_port, decode_responses=True) as raw:
        cmds = {int(c["addr"].rsplit(":", 1)[1]): c["cmd"] for c in raw.client_list()}
    return {
        "pid": os.getpid(),
        "preloaded": preloaded,
        "before": sorted(before),
        "after": sorted(after),
        "last_command": {str(p): cmds.get(p) for p in before | after},
        "connects": stats()["connects"] - connects,
        "rules": rules.source if rules else None,
    }


def main() -> int:
    url, queue, wd, out = sys.argv[1:5]
    import redis
    from rq import Queue, Worker

    import redisprep.rq
    from redisprep import RedisPrep

    loaded = redisprep.rq.preload()
    prep = RedisPrep.getInstance(wd)
    prep.timestamp("build_landuse")
    prep["build_landuse"]  # the parent's pooled connection's last command: HGET
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with open(out, "w") as f:
        json.dump({"pid": os.getpid(), "ports": sorted(tcp_ports(os.getpid(), port)), **loaded}, f)
    conn = redis.Redis.from_url(url, db=9)
    Worker([Queue(queue, connection=conn)], connection=conn).work(burst=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
