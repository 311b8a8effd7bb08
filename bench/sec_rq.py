"""Sections ``rqjob`` and ``fork``: what redisprep adds to every RQ job.

A real forking RQ worker (``bench/rq_worker.py``, ``Worker.work(burst=True)``) runs
N jobs of one kind per run; every job is only the completion step of a wepppy job
(``bench/rq_jobs.py``) on its own run folder (ext4) with 3 cache keys to
invalidate. RQ forks a fresh work horse per job, so each job is the *first* call
in a new process. Kinds, measured interleaved in rounds (one worker run per kind
per round):

- empty job (the baseline), in a worker that imported nothing else;
- legacy + naive invalidation, cold (the worker parent never imported it) and
  preloaded (the parent imported redis-py and the legacy module);
- redisprep, cold (the parent never imported redisprep) and preloaded (the parent
  called ``redisprep.rq.preload()``: import, rules, settings; no socket).

Per kind: jobs/s (N / the seconds ``work()`` took), wall ms per job, and the
median time of the completion step measured inside the horse (import, rules load,
connection set-up and the call itself). A job that did not finish, a cache key
that survived or a timestamp that was not written is a broken result.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import RESULTS, ROOT, TARGETS, Env, rendered_keys, seed_run

RQ_DB = 9
TASK = "bench_3"
# name -> (job function in bench/rq_jobs.py, what the worker parent preloads)
KINDS = {
    "empty job": ("empty", "none"),
    "legacy + naive, cold": ("legacy_timestamp", "none"),
    "legacy + naive, preloaded": ("legacy_timestamp", "legacy"),
    "redisprep, cold": ("redisprep_timestamp", "none"),
    "redisprep, preloaded": ("redisprep_timestamp", "redisprep"),
}
_CACHE: dict[str, Any] = {}


def _url(env: Env, db: int) -> str:
    return f"redis://{env.server.host}:{env.server.port}/{db}"


def _worker_run(env: Env, kind: str, wds: list[str], queue: str) -> dict[str, Any]:
    """Enqueue one job per run folder, refill the cache keys, run a burst worker."""
    import redis
    from rq import Queue

    func, preload = KINDS[kind]
    rq_conn = redis.Redis.from_url(_url(env, RQ_DB))
    q = Queue(queue, connection=rq_conn)
    base = f"redis://{env.server.host}:{env.server.port}"  # no DB: the job picks it
    jobs = [q.enqueue(f"rq_jobs.{func}", wd, base, result_ttl=600) for wd in wds]
    keys = [k for wd in wds for k in rendered_keys(TASK, wd)]
    env.c13.mset({k: "cached" for k in keys})
    before = {wd: env.c0.hget(os.path.basename(wd), f"timestamps:{TASK}") for wd in wds}
    time.sleep(1.05)  # a timestamp is in seconds: make a new one distinguishable
    worker_env = {**os.environ, "REDIS_URL": _url(env, 0), "REDISPREP_RULES": env.rules}
    worker_env.pop("REDISPREP_LAYOUT", None)
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rq_worker.py"), _url(env, RQ_DB), queue, preload],
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(f"rq worker ({kind}) failed:\n{out.stderr[-3000:]}")
    seconds = float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    in_horse, rq_ms = [], []
    for job in jobs:
        job.refresh()
        if job.get_status() != "finished":
            raise SystemExit(f"{kind}: job {job.id} {job.get_status()}: {job.exc_info}")
        in_horse.append(int(job.return_value()))
        if job.started_at and job.ended_at:
            rq_ms.append((job.ended_at - job.started_at).total_seconds() * 1000)
    if func != "empty":  # the work was really done
        if env.c13.exists(*keys):
            raise SystemExit(f"{kind}: cache keys survived the timestamp")
        for wd in wds:
            if env.c0.hget(os.path.basename(wd), f"timestamps:{TASK}") == before[wd]:
                raise SystemExit(f"{kind}: the timestamp of {wd} was not written")
    q.delete(delete_jobs=True)
    rq_conn.close()
    return {"seconds": seconds, "in_horse_ns": in_horse, "rq_ms": rq_ms}


def measure_kinds(env: Env) -> dict[str, Any]:
    """Every kind, interleaved in rounds; measured once per benchmark run."""
    if _CACHE:
        return _CACHE
    rounds, n = env.profile.rq
    root = Path(tempfile.mkdtemp(prefix="redisprep-bench-rq-", dir="/var/tmp"))
    try:
        wds: dict[str, list[str]] = {}
        for i, kind in enumerate(KINDS):
            wds[kind] = []
            for j in range(n):
                wd = root / f"run-{i}-{j}"
                seed_run(env.c0, wd)
                wds[kind].append(str(wd))
        per_round: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
        for _ in range(rounds):
            for i, kind in enumerate(KINDS):
                per_round[kind].append(_worker_run(env, kind, wds[kind], f"bench-{i}"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _CACHE.update(per_round)
    return _CACHE


def _wall_ms(run: dict[str, Any]) -> float:
    return float(run["seconds"]) * 1000 / len(run["in_horse_ns"])


def _added_wall(runs: dict[str, Any], kind: str) -> float:
    """Median over rounds of (wall ms per job of `kind` - of the empty job) in that round."""
    return statistics.median(
        _wall_ms(a) - _wall_ms(b) for a, b in zip(runs[kind], runs["empty job"])
    )


def _horse_ms(runs: dict[str, Any], kind: str) -> float:
    return statistics.median(x for run in runs[kind] for x in run["in_horse_ns"]) / 1e6


def section_rqjob(env: Env) -> None:
    runs = measure_kinds(env)
    rounds, n = env.profile.rq
    print(f"\n== rq job overhead: a forking worker, {n} jobs per run, {rounds} rounds")
    print(f"   {'kind':<32}{'jobs/s':>9}{'wall ms/job':>13}{'added ms/job':>14}{'rq ms/job':>11}")
    table: dict[str, Any] = {}
    for kind in KINDS:
        jobs_s = statistics.median(1000 / _wall_ms(r) for r in runs[kind])
        wall = statistics.median(_wall_ms(r) for r in runs[kind])
        added = _added_wall(runs, kind) if kind != "empty job" else 0.0
        rq_ms = statistics.median(x for r in runs[kind] for x in r["rq_ms"])
        print(f"   {kind:<32}{jobs_s:>9.1f}{wall:>13.2f}{added:>14.2f}{rq_ms:>11.2f}")
        table[kind] = {
            "jobs_per_s": jobs_s,
            "wall_ms_per_job": wall,
            "added_ms_per_job": added,
            "rq_job_ms": rq_ms,
            "rounds": [r["seconds"] for r in runs[kind]],
        }
    RESULTS["rq job overhead"] = table
    rp, lg = (
        _added_wall(runs, "redisprep, preloaded"),
        _added_wall(runs, "legacy + naive, preloaded"),
    )
    mark = TARGETS.check(
        "rq job, redisprep added ms/job vs legacy's, preloaded", rp, "<=", lg, " ms"
    )
    print(
        f"   redisprep added {rp:.2f} ms/job, legacy + naive {lg:.2f} (target <= legacy's) {mark}"
    )
    print("   (wall = work() seconds / jobs: fork, job, result, all; rq = RQ's started..ended)")


def section_fork(env: Env) -> None:
    runs = measure_kinds(env)
    print("\n== first call after fork: completion step timed inside the fresh work horse")
    print(f"   {'kind':<32}{'median ms':>11}{'p90 ms':>9}{'added wall ms/job':>19}")
    table: dict[str, Any] = {}
    for kind in KINDS:
        xs = sorted(x / 1e6 for r in runs[kind] for x in r["in_horse_ns"])
        med, p90 = statistics.median(xs), xs[min(len(xs) - 1, int(0.9 * len(xs)))]
        added = _added_wall(runs, kind) if kind != "empty job" else 0.0
        print(f"   {kind:<32}{med:>11.3f}{p90:>9.3f}{added:>19.2f}")
        table[kind] = {"in_horse_median_ms": med, "in_horse_p90_ms": p90, "added_wall_ms": added}
    RESULTS["first call after fork"] = table
    base = _horse_ms(runs, "empty job")
    for mode, bound in (("preloaded", 1.0), ("cold", 5.0)):
        rp = _horse_ms(runs, f"redisprep, {mode}") - base
        lg = _horse_ms(runs, f"legacy + naive, {mode}") - base
        m1 = TARGETS.check(f"first call after fork, {mode}, added ms/job", rp, "<=", bound, " ms")
        m2 = TARGETS.check(
            f"first call after fork, {mode}, added ms/job vs legacy's", rp, "<=", lg, " ms"
        )
        print(
            f"   {mode}: redisprep adds {rp:.3f} ms (target <= {bound:g} ms) {m1}; "
            f"legacy + naive {lg:.3f} ms (target <= legacy's) {m2}"
        )
