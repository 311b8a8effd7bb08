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
from support.integration import (
    MIGRATED,
    MIGRATED_IDS,
    Endpoint,
    Workers,
    cache_keys,
    closure_gone,
    gone,
    names,
    post,
)


@pytest.mark.parametrize("ep", MIGRATED, ids=MIGRATED_IDS)
def test_invalidation_at_completion_never_at_start(
    client: Any, run: str, workers: Workers, r0: Any, r13: Any, ep: Endpoint
) -> None:
    warm_caches(run)
    before = cache_keys(r13, run)

    job_id = post(client, "run-a", ep.name)
    assert cache_keys(r13, run) == before  # not at enqueue
    with workers.held(run, ep.name):
        # The job is running and has already rewritten its .nodb file...
        assert workers.job(job_id).get_status() == "started"
        assert NoDbController(run, ep.controller).read_file()["revision"] == 1
        # ...but nothing is invalidated and nothing timestamped until it completes.
        assert cache_keys(r13, run) == before
        assert all(r0.hget("run-a", f"timestamps:{t}") is None for t in ep.task_names)

    assert workers.job(job_id).get_status() == "finished"
    after = cache_keys(r13, run)
    assert set(CONTROLLERS) - names(after) == closure_gone(*ep.task_names)
    assert {k: before[k] for k in after} == after  # the survivors are untouched
    assert all(r0.hget("run-a", f"timestamps:{t}") is not None for t in ep.task_names)


@pytest.mark.parametrize("ep", MIGRATED, ids=MIGRATED_IDS)
def test_failed_job_records_no_timestamp_and_invalidates_nothing(
    client: Any, run: str, workers: Workers, r13: Any, ep: Endpoint
) -> None:
    prep = RedisPrep.getInstance(run)
    prep[ep.tasks[0]] = 1_700_000_000  # a previous successful run
    warm_caches(run)
    before = cache_keys(r13, run)
    jobs.set_failure(run, ep.name)

    job_id = post(client, "run-a", ep.name)
    workers.drain()

    rq_job = workers.job(job_id)
    assert rq_job.get_status() == "failed"
    assert "DemoJobError" in (rq_job.latest_result().exc_string or "")
    assert cache_keys(r13, run) == before
    assert prep[ep.tasks[0]] == 1_700_000_000
    assert all(prep[t] is None for t in ep.tasks[1:])


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
    for ep in MIGRATED:
        warm_caches(run)
        post(client, "run-a", ep.name)
        workers.drain()
        now_gone = gone(r13, run)
        assert now_gone == closure_gone(*ep.task_names), ep.name
        assert expectations[ep.name] <= now_gone, ep.name
        assert {"ron", "unitizer"}.isdisjoint(now_gone), ep.name
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
