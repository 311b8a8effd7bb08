"""Cache invalidation happens when an RQ job *completes*, in the work horse of a
real forking worker: never at enqueue or start, never for a failed job, and
exactly the caches the default rules name (with cascades) for that run."""

from __future__ import annotations

import os
from typing import Any

import pytest

from redisprep import RedisPrep, TaskEnum
from redisprep._demo import jobs
from redisprep._demo.nodb import TTL, NoDbController
from redisprep._demo.runs import CONTROLLERS, warm_caches
from support.integration import Workers, cache_keys, names, post, rules_closure

# (endpoint = demo job name, tasks it timestamps)
CASES = [
    ("build_climate", "build_climate", ["build_climate"]),
    ("run_wepp", "run_wepp", ["run_wepp_hillslopes", "run_wepp_watershed"]),
    ("abstract_watershed", "abstract_watershed", ["abstract_watershed"]),
]
REWRITES = {"build_climate": "climate", "run_wepp": "wepp", "abstract_watershed": "watershed"}


@pytest.mark.parametrize(("endpoint", "job", "tasks"), CASES)
def test_invalidation_at_completion_never_at_start(
    client: Any,
    run: str,
    workers: Workers,
    r0: Any,
    r13: Any,
    endpoint: str,
    job: str,
    tasks: list[str],
) -> None:
    warm_caches(run)
    before = cache_keys(r13, run)
    jobs.hold(run, job)

    job_id = post(client, "run-a", endpoint)
    assert cache_keys(r13, run) == before  # not at enqueue
    proc = workers.start()
    try:
        assert jobs.wait_reached(run, job), "the job never reached its hold point"
        # The job is running and has already rewritten its .nodb file...
        assert workers.job(job_id).get_status() == "started"
        assert NoDbController(run, REWRITES[job]).read_file()["revision"] == 1
        # ...but nothing is invalidated and nothing timestamped until it completes.
        assert cache_keys(r13, run) == before
        assert all(r0.hget("run-a", f"timestamps:{t}") is None for t in tasks)
    finally:
        jobs.release(run, job)
    workers.wait(proc)

    assert workers.job(job_id).get_status() == "finished"
    after = cache_keys(r13, run)
    assert set(CONTROLLERS) - names(after) == rules_closure(*tasks) & set(CONTROLLERS)
    assert {k: before[k] for k in after} == after  # the survivors are untouched
    assert all(r0.hget("run-a", f"timestamps:{t}") is not None for t in tasks)


@pytest.mark.parametrize(("endpoint", "job", "tasks"), CASES)
def test_failed_job_records_no_timestamp_and_invalidates_nothing(
    client: Any,
    run: str,
    workers: Workers,
    r0: Any,
    r13: Any,
    endpoint: str,
    job: str,
    tasks: list[str],
) -> None:
    prep = RedisPrep.getInstance(run)
    prep[tasks[0]] = 1_700_000_000  # a previous successful run
    warm_caches(run)
    before = cache_keys(r13, run)
    jobs.set_failure(run, job)

    job_id = post(client, "run-a", endpoint)
    workers.drain()

    rq_job = workers.job(job_id)
    assert rq_job.get_status() == "failed"
    assert "DemoJobError" in (rq_job.latest_result().exc_string or "")
    assert cache_keys(r13, run) == before
    assert prep[tasks[0]] == 1_700_000_000
    assert all(prep[t] is None for t in tasks[1:])


def test_climate_wepp_watershed_invalidate_their_own_caches_and_dependants(
    client: Any, run: str, other_run: str, workers: Workers, r13: Any
) -> None:
    """The three endpoints one after the other on a re-warmed run; the other run
    (whose folder name starts with this one's) and non-rule keys are untouched."""
    extra = os.path.join(run, "custom_mod.nodb")  # a controller the rules do not know
    r13.set(extra, "{}", ex=TTL)
    warm_caches(other_run)
    for key in cache_keys(r13, other_run):
        r13.expire(key, 5000)  # a TTL invalidation must not refresh
    other_before = cache_keys(r13, other_run)

    expectations = {
        "build_climate": {"climate", "wepp", "wepppost", "rap_ts", "openet_ts", "rusle"},
        "run_wepp": {"wepp", "wepppost", "observed"},
        "abstract_watershed": {"watershed", "landuse", "soils", "climate", "wepp", "treatments"},
    }
    for endpoint, _job, tasks in CASES:
        warm_caches(run)
        post(client, "run-a", endpoint)
        workers.drain()
        gone = set(CONTROLLERS) - names(cache_keys(r13, run))
        assert gone == rules_closure(*tasks) & set(CONTROLLERS), endpoint
        assert expectations[endpoint] <= gone, endpoint
        assert {"ron", "unitizer"}.isdisjoint(gone), endpoint
        assert r13.get(extra) == "{}"

    assert cache_keys(r13, other_run) == other_before
    assert all(0 < r13.ttl(k) <= 5000 for k in other_before)
    for name in CONTROLLERS:  # no .nodb file of the other run was written
        assert NoDbController(other_run, name).read_file()["revision"] == 0


def test_run_wepp_timestamps_hillslopes_then_watershed(
    client: Any, run: str, workers: Workers, r0: Any
) -> None:
    post(client, "run-a", "run_wepp")
    workers.drain()
    prep = RedisPrep.getInstance(run)
    hill, shed = prep[TaskEnum.run_wepp_hillslopes], prep[TaskEnum.run_wepp_watershed]
    assert hill is not None and shed is not None and hill <= shed
    fields = list(r0.hgetall("run-a"))
    assert fields.index("timestamps:run_wepp_hillslopes") < fields.index(
        "timestamps:run_wepp_watershed"
    )
