"""What the sync API blocks, and for how long, when FastAPI-style ``async def``
handlers call it (docs/DEPLOY.md quotes these numbers).

    .venv/bin/python bench/bench_async.py [--calls 2000] [--keys 16]

Starts a private redis-server (never the shared 6379), then measures:

1. the latency of ``RedisPrep.getInstance(wd)``, ``prep.timestamp(task)`` (the
   write, the dump and the deletes of ``--keys`` cache keys) and ``prep[key]``,
   called directly (p50 / p99 / max, microseconds);
2. an asyncio event loop with a 1 ms ticker: how late the ticker fires while
   handlers call ``timestamp()`` directly in ``async def`` (the loop is blocked
   for the whole call) versus through ``await asyncio.to_thread(...)`` (the
   native call releases the GIL around the Redis round trip and the dump write).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import redisprep
from redisprep import RedisPrep, Rules, TaskEnum
from redisprep._server import RedisServer


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(name: str, us: list[float]) -> str:
    return (
        f"{name:<28} p50 {statistics.median(us):8.1f} us   p99 {pct(us, 0.99):8.1f} us   "
        f"max {max(us):8.1f} us   ({len(us)} calls)"
    )


def timed(fn: Callable[[], object], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e6)
    return out


def fill_caches(server: RedisServer, wd: str, keys: int) -> None:
    cache = Rules.load(None).keys_for(str(TaskEnum.build_climate), wd)[:keys]
    server.client(13).mset({k: "x" * 200 for k in cache})


async def loop_lag(prep: RedisPrep, calls: int, threaded: bool) -> tuple[list[float], float]:
    """Ticker lateness (ms) while ``calls`` timestamp()s run; and their wall time (s)."""
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - t) * 1000 - 1.0)

    async def handler() -> None:
        if threaded:
            await asyncio.to_thread(prep.timestamp, TaskEnum.build_climate)
        else:
            prep.timestamp(TaskEnum.build_climate)  # what a plain async def does

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    for _ in range(calls):
        await handler()
        await asyncio.sleep(0)  # let the ticker run between requests
    wall = time.perf_counter() - start
    done.set()
    await tick
    return lags, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--keys", type=int, default=16, help="cache keys each timestamp() deletes")
    args = ap.parse_args()
    server = RedisServer().start()
    try:
        redisprep.configure(server.url)
        with tempfile.TemporaryDirectory() as root:
            wd = str(Path(root) / "bench-run")
            Path(wd).mkdir()
            prep = RedisPrep.getInstance(wd)
            assert prep is not None
            print(
                f"python {sys.version.split()[0]}, redisprep {redisprep.__version__}, "
                f"{args.calls} calls, {args.keys} cache keys per timestamp()"
            )
            print(line("getInstance(wd)", timed(lambda: RedisPrep.getInstance(wd), args.calls)))

            def stamp() -> None:
                fill_caches(server, wd, args.keys)
                t = time.perf_counter()
                prep.timestamp(TaskEnum.build_climate)
                stamps.append((time.perf_counter() - t) * 1e6)

            stamps: list[float] = []
            for _ in range(args.calls):
                stamp()
            print(line("timestamp(build_climate)", stamps))
            print(line("prep[key]", timed(lambda: prep["build_climate"], args.calls)))
            for threaded in (False, True):
                lags, wall = asyncio.run(loop_lag(prep, args.calls, threaded))
                how = "await asyncio.to_thread(...)" if threaded else "called in async def"
                print(
                    f"event loop, timestamp() {how:<30} ticker lateness p50 "
                    f"{statistics.median(lags):.3f} ms, p99 {pct(lags, 0.99):.3f} ms, "
                    f"max {max(lags):.3f} ms; {args.calls / wall:,.0f} calls/s"
                )
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
