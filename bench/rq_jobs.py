"""RQ job functions of ``bench/sec_rq.py``: each job is only the completion step
of a wepppy job, timed from inside the work horse.

This module imports nothing but the standard library at the top: a job's imports
happen inside it, in the freshly forked horse, so a worker parent that did not
preload them pays for them in every job (the *cold* case). Every job returns the
nanoseconds its step took, measured in the horse.
"""

from __future__ import annotations

import time

TASK = "bench_3"


def empty(wd: str, url: str) -> int:
    """The baseline: a job that does nothing."""
    t0 = time.perf_counter_ns()
    return time.perf_counter_ns() - t0


def redisprep_timestamp(wd: str, url: str) -> int:
    """``RedisPrep.getInstance(wd).timestamp(task)``: record + invalidate 3 keys.
    Configuration comes from the worker's environment (``REDIS_URL``,
    ``REDISPREP_RULES``), as in a deployment."""
    t0 = time.perf_counter_ns()
    from redisprep import RedisPrep

    RedisPrep.getInstance(wd).timestamp(TASK)
    return time.perf_counter_ns() - t0


def legacy_timestamp(wd: str, url: str) -> int:
    """Legacy wepppy + naive invalidation: a ``redis.Redis`` per instance (as
    wepppy's ``RedisPrep.__init__`` builds one), lazy_load, timestamp, then one DEL
    per cache key through a second client on DB 13. ``url`` names no DB."""
    t0 = time.perf_counter_ns()
    import redis
    from legacy_naive import CACHE_DB, NaiveLegacyPrep

    c0 = redis.Redis.from_url(url, db=0, decode_responses=True)
    c13 = redis.Redis.from_url(url, db=CACHE_DB, decode_responses=True)
    prep = NaiveLegacyPrep(wd, c0, c13)
    prep.lazy_load()
    prep.timestamp(TASK)
    return time.perf_counter_ns() - t0
