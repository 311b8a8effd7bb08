"""How long ``python -m redisprep audit`` takes on many runs.

    .venv/bin/python bench/bench_audit.py [--runs 10000] [--controllers 20] [--dir /tmp]

Starts a private ``redis-server``, creates ``--runs`` run folders each with
``--controllers`` ``.nodb`` files (~300 B of JSON) under ``--dir`` (default: a
temporary folder; use an ext4 path to include real disk reads), caches every
file in DB 13 with the 72 h TTL, plants 1 % stale and 1 % orphan entries, then
times the real command line end to end (``python -m redisprep audit
--runs-root R``, a subprocess, interpreter start included: wall clock, and the
CPU time it used, which a loaded machine disturbs less) and the ``--fix`` pass,
and checks the counts it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redisprep import Rules
from redisprep._client import url_with_db
from redisprep._server import RedisServer

TTL = 72 * 3600


def populate(root: Path, url: str, runs: int, controllers: list[str]) -> tuple[int, int]:
    import redis

    r = redis.Redis.from_url(url_with_db(url, 13))
    stale = orphan = 0
    pipe = r.pipeline(transaction=False)
    for i in range(runs):
        wd = root / f"run-{i:05d}"
        wd.mkdir()
        for j, name in enumerate(controllers):
            path = wd / f"{name}.nodb"
            text = json.dumps({"py/object": f"wepppy.nodb.{name}", "run": i, "pad": "x" * 240})
            path.write_text(text)
            cached = text
            if j == 0 and i % 100 == 0:
                cached = text.replace('"run"', '"RUN"')
                stale += 1
            elif j == 1 and i % 100 == 1:
                path.unlink()
                orphan += 1
            pipe.set(str(path), cached, ex=TTL)
        if i % 200 == 199:
            pipe.execute()
    pipe.execute()
    r.close()
    return stale, orphan


def timed(
    cmd: list[str], env: dict[str, str]
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """``(wall s, CPU s of the command: user + system, its own and its children's, run)``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--controllers", type=int, default=20)
    ap.add_argument("--dir", default=None, help="parent folder of the runs root")
    args = ap.parse_args()
    names = Rules.load().controllers
    if not 1 <= args.controllers <= len(names):
        ap.error(f"--controllers must be 1..{len(names)}")
    server = RedisServer().start()
    root = Path(tempfile.mkdtemp(prefix="redisprep-audit-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        stale, orphan = populate(root, server.url, args.runs, names[: args.controllers])
        print(
            f"populated {args.runs} runs x {args.controllers} controllers in "
            f"{time.perf_counter() - t0:.1f} s ({root}; {len(names)} controllers in the rules)"
        )
        env = dict(os.environ, REDIS_URL=server.url)
        base = [sys.executable, "-m", "redisprep", "audit", "--runs-root", str(root)]
        print(f"{'command':<22} {'wall s':>7} {'CPU s':>7}")
        report = None
        for label, extra in (("audit", []), ("audit --format json", ["--format", "json"])):
            wall, cpu, done = timed(base + extra, env)
            assert done.returncode == 1, (done.returncode, done.stderr, done.stdout[-2000:])
            print(f"{label:<22} {wall:7.2f} {cpu:7.2f}  (exit {done.returncode})")
            if extra:
                report = json.loads(done.stdout)
        assert report is not None
        counts = report["counts"]
        assert counts["stale"] == stale and counts["orphan"] == orphan, counts
        wall, cpu, done = timed([*base, "--fix"], env)
        assert done.returncode == 1, done.stderr
        print(f"{'audit --fix':<22} {wall:7.2f} {cpu:7.2f}  (deleted {stale + orphan})")
        wall, cpu, done = timed(base, env)
        assert done.returncode == 0, done.stdout
        print(f"{'audit (after --fix)':<22} {wall:7.2f} {cpu:7.2f}  (exit 0)")
        print(f"counts before the fix: {counts}, {sum(counts.values())} entries")
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
