"""The rq_api endpoints, through the Flask test client and a real forking RQ
worker: migrated endpoints no longer clear timestamps at enqueue and record the
job id; validation errors are clean 4xx JSON; a not-migrated endpoint that still
calls remove_timestamp() keeps working beside them."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from redisprep import RedisPrep, TaskEnum
from redisprep._demo.runs import warm_caches
from support.integration import (
    MIGRATED,
    MIGRATED_IDS,
    Endpoint,
    Workers,
    cache_keys,
    closure_gone,
    gone,
    post,
)


def dump_of(wd: str) -> dict[str, str]:
    with open(os.path.join(wd, "redisprep.dump")) as fp:
        result: dict[str, str] = json.load(fp)
    return result


@pytest.mark.parametrize("ep", MIGRATED, ids=MIGRATED_IDS)
def test_migrated_endpoint_keeps_timestamps_and_records_job_id(
    client: Any, run: str, workers: Workers, r0: Any, r13: Any, ep: Endpoint
) -> None:
    prep = RedisPrep.getInstance(run)
    for i, task in enumerate(ep.tasks):
        prep[task] = 1_700_000_000 + i  # an earlier completed run of the task
    warm_caches(run)
    hash_before = r0.hgetall("run-a")
    caches_before = cache_keys(r13, run)

    job_id = post(client, "run-a", ep.name)

    hash_after = r0.hgetall("run-a")
    assert hash_after.pop(f"rq:{ep.rq_name}") == job_id
    assert hash_after == hash_before  # no timestamp removed (nor anything else)
    assert dump_of(run)[f"rq:{ep.rq_name}"] == job_id
    assert RedisPrep.getInstance(run).get_rq_job_id(ep.rq_name) == job_id
    assert cache_keys(r13, run) == caches_before  # enqueueing invalidates nothing
    job = workers.job(job_id)
    assert job.func_name == f"redisprep._demo.jobs.{ep.rq_name}"
    assert job.args == ("run-a",)
    assert workers.queue().job_ids == [job_id]


@pytest.mark.parametrize("ep", MIGRATED, ids=MIGRATED_IDS)
def test_migrated_endpoint_job_completes_and_timestamps(
    client: Any, run: str, workers: Workers, r13: Any, ep: Endpoint
) -> None:
    warm_caches(run)
    job_id = post(client, "run-a", ep.name)
    workers.drain()

    job = workers.job(job_id)
    assert job.get_status() == "finished"
    assert job.return_value()["revision"] == 1
    prep = RedisPrep.getInstance(run)
    stamps = [prep[task] for task in ep.tasks]
    assert all(isinstance(s, int) and s > 0 for s in stamps)
    assert stamps == sorted(stamps)  # run_wepp: hillslopes, then watershed
    assert gone(r13, run) == closure_gone(*ep.task_names)


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("/runs/no-such-run/dev_unit/rq/api/build_climate", 404, "does not exist"),
        ("/runs/run-a/other_cfg/rq/api/run_wepp", 400, "config"),
        ("/runs/run-a/bad%20cfg/rq/api/abstract_watershed", 400, "invalid config"),
        ("/runs/..%2E/dev_unit/rq/api/build_climate", 400, "invalid run id"),
        ("/runs/.hidden/dev_unit/rq/api/build_landuse", 400, "invalid run id"),
    ],
)
def test_validation_errors_are_clean_json_and_enqueue_nothing(
    client: Any, run: str, workers: Workers, r0: Any, url: str, status: int, needle: str
) -> None:
    before = r0.hgetall("run-a")
    resp = client.post(url)
    assert resp.status_code == status
    assert resp.is_json
    body = resp.get_json()
    assert body["Success"] is False
    assert needle in body["Error"]
    assert workers.queue().count == 0
    assert r0.hgetall("run-a") == before
    assert r0.keys() == ["run-a"]  # no prep hash made up for an unknown run


def test_endpoints_are_post_only(client: Any, run: str) -> None:
    assert client.get("/runs/run-a/dev_unit/rq/api/build_climate").status_code == 405


def test_not_migrated_endpoint_works_beside_migrated_ones(
    client: Any, run: str, workers: Workers, r0: Any, r13: Any
) -> None:
    prep = RedisPrep.getInstance(run)
    prep[TaskEnum.build_landuse] = 1_700_000_000
    prep[TaskEnum.build_climate] = 1_700_000_000
    warm_caches(run)

    landuse_job = post(client, "run-a", "build_landuse")
    # Legacy shape: the timestamp is cleared at enqueue...
    assert r0.hget("run-a", "timestamps:build_landuse") is None
    assert "timestamps:build_landuse" not in dump_of(run)
    climate_job = post(client, "run-a", "build_climate")
    # ...the migrated one leaves its own alone.
    assert r0.hget("run-a", "timestamps:build_climate") == "1700000000"
    assert prep.get_rq_job_ids() == {
        "build_landuse_rq": landuse_job,
        "build_climate_rq": climate_job,
    }

    workers.drain()  # one real worker runs both kinds of job

    for job_id in (landuse_job, climate_job):
        assert workers.job(job_id).get_status() == "finished"
    assert prep[TaskEnum.build_landuse] > 1_700_000_000
    assert prep[TaskEnum.build_climate] > 1_700_000_000
    # The legacy endpoint's job timestamps through redisprep too, so its caches go as well.
    assert gone(r13, run) == closure_gone("build_landuse", "build_climate")
    assert {"landuse", "climate"} <= gone(r13, run)
