"""Throughput of ``timestamp()`` over many runs from 4 client processes:
one standalone redis-server vs a local 3-master (+3 replica) Redis Cluster.

    .venv/bin/python bench/bench_cluster.py [--calls 2000] [--procs 4]

(also run as a section of ``bench/bench_prep.py --cluster``).

Prints calls/s for each and the ratio (cluster / standalone), measured in the
same run. On a 2-core machine all 7 servers and the clients share the cores,
so the cluster cannot win here; the number shows what the layout costs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.cluster import LocalCluster
from support.redis_server import RedisServer


def _worker(url: str, root: str, proc: int, calls: int, runs: int, q: mp.Queue[float]) -> None:
    import redisprep

    redisprep.configure(url)
    preps = []
    for i in range(runs):
        d = Path(root) / f"p{proc}-run-{i}"
        d.mkdir(parents=True, exist_ok=True)
        preps.append(redisprep.RedisPrep.getInstance(str(d)))
    start = time.perf_counter()
    for i in range(calls):
        preps[i % runs].timestamp(redisprep.TaskEnum.build_climate)
    q.put(time.perf_counter() - start)


def throughput(url: str, procs: int, calls: int, runs: int) -> float:
    root = tempfile.mkdtemp(prefix="redisprep-bench-", dir="/dev/shm")
    ctx = mp.get_context("fork")
    q: mp.Queue[float] = ctx.Queue()
    ps = [ctx.Process(target=_worker, args=(url, root, i, calls, runs, q)) for i in range(procs)]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    wall = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    durations = [q.get() for _ in ps]
    return procs * calls / max(max(durations), 1e-9) if durations else procs * calls / wall


def compare(procs: int, calls: int, runs: int) -> tuple[float, float]:
    """``(standalone, cluster)`` timestamp() calls/s, each on servers started here."""
    server = RedisServer().start()
    cluster = LocalCluster().start()
    try:
        single = throughput(server.url, procs, calls, runs)
        clustered = throughput(cluster.url, procs, calls, runs)
    finally:
        server.cleanup()
        cluster.cleanup()
    return single, clustered


def report(single: float, clustered: float, procs: int) -> None:
    print(f"{'layout':<28}{'timestamp() calls/s':>22}")
    print(f"{'standalone (1 node)':<28}{single:>22.0f}")
    print(f"{'cluster (3 masters)':<28}{clustered:>22.0f}")
    print(
        f"ratio cluster/standalone: {clustered / single:.2f}x "
        f"({procs} processes, {os.cpu_count()} cores)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=2000, help="timestamp() calls per process")
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--runs", type=int, default=64, help="runs per process")
    args = ap.parse_args()
    report(*compare(args.procs, args.calls, args.runs), args.procs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
