"""The build_climate endpoint no longer calls remove_timestamp(): task completion
(the RQ job's timestamp()) invalidates the dependent caches."""

from redisprep import TaskEnum


def test_endpoint_leaves_the_timestamp_until_the_job_completes(
    client, prep_run, rq_worker, invalidations
):
    prep_run.prep.timestamp(TaskEnum.build_climate, invalidate=False)
    before = prep_run.prep[TaskEnum.build_climate]
    prep_run.seed_caches()
    resp = client.post(f"/runs/{prep_run.run_id}/dev_unit/rq/api/build_climate")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert prep_run.prep[TaskEnum.build_climate] == before  # no remove_timestamp()
    assert prep_run.prep.get_rq_job_id("build_climate_rq") == resp.get_json()["job_id"]
    assert invalidations.events == [] and "climate" in prep_run.cached()


def test_task_completion_invalidates_the_dependent_caches(
    client, prep_run, rq_worker, invalidations
):
    prep_run.seed_caches()
    client.post(f"/runs/{prep_run.run_id}/dev_unit/rq/api/build_climate")
    done = rq_worker.work(timeout=60)
    done.raise_failures()
    assert len(done.finished) == 1
    assert prep_run.prep[TaskEnum.build_climate] is not None
    invalidations.assert_invalidated(TaskEnum.build_climate, ["climate", "wepp"], run=prep_run)
    invalidations.assert_not_invalidated("landuse", run=prep_run)
    assert {"climate", "wepp", "wepppost"}.isdisjoint(prep_run.cached())
    assert {"landuse", "soils", "watershed"} <= prep_run.cached()
