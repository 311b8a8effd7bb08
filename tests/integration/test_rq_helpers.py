"""redisprep.rq with a real forking worker: the ``@timestamps`` decorator and the
``timestamp_on_success`` callback timestamp (and invalidate) only when the job
succeeds; an exception in the job means no timestamp; an exception in the
``on_success`` callback (it runs in the work horse, after the job returned)
marks the job failed."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
from rq import Callback, Queue
from rq.job import Job

from redisprep import ConfigError, InvalidKeyError, RedisPrep, TaskEnum
from redisprep import rq as prq
from redisprep._demo import jobs
from redisprep._demo.jobs import build_climate_decorated_rq, rebuild_rq
from redisprep._demo.nodb import NoDbController
from redisprep._demo.runs import warm_caches
from support.integration import Workers, cache_keys, closure_gone, gone
from support.redis_server import free_port

CLIMATE_GONE = closure_gone("build_climate")


def make_callback(kind: str, wd: str, invalidate: bool = True) -> Callback:
    if kind == "runid":  # the job's first argument is the run id
        return prq.timestamp_on_success(TaskEnum.build_climate, invalidate=invalidate)
    if kind == "result":  # the job returns its run folder
        return prq.timestamp_on_success(TaskEnum.build_climate, wd_from="result")
    return prq.timestamp_on_success("build_climate", wd=wd)  # a fixed folder


def enqueue_climate(q: Queue, kind: str, wd: str) -> tuple[Job, str]:
    """A climate rebuild that ``build_climate`` is timestamped for: the ``@timestamps``
    decorated job (``kind='decorator'``) or ``rebuild_rq`` with an ``on_success``
    callback of ``kind``. Returns the job and its demo name (hold/fail flags)."""
    if kind == "decorator":
        return q.enqueue(build_climate_decorated_rq, "run-a"), "build_climate_decorated"
    job = q.enqueue(rebuild_rq, "run-a", "climate", on_success=make_callback(kind, wd))
    return job, "rebuild_climate"


def assert_climate_timestamped(wd: str, r13: Any, done: bool) -> None:
    """``build_climate`` recorded and its caches invalidated, or neither."""
    assert (RedisPrep.getInstance(wd)[TaskEnum.build_climate] is not None) is done
    assert gone(r13, wd) == (CLIMATE_GONE if done else set())


@pytest.mark.parametrize("kind", ["decorator", "runid", "result", "fixed-wd"])
def test_timestamps_after_the_job_returns(run: str, workers: Workers, r13: Any, kind: str) -> None:
    warm_caches(run)
    job, name = enqueue_climate(workers.queue(), kind, run)
    with workers.held(run, name):
        assert_climate_timestamped(run, r13, done=False)
    assert workers.job(job.id).get_status() == "finished"
    result = workers.job(job.id).return_value()
    if kind == "decorator":  # the decorator hands back what the job returned
        assert result["revision"] == 1
    else:
        assert result == run
    assert_climate_timestamped(run, r13, done=True)


@pytest.mark.parametrize("kind", ["decorator", "runid"])
def test_nothing_is_recorded_when_the_job_raises(
    run: str, workers: Workers, r13: Any, kind: str
) -> None:
    """Neither the decorator nor the ``on_success`` callback timestamps a failed job."""
    warm_caches(run)
    job, name = enqueue_climate(workers.queue(), kind, run)
    jobs.set_failure(run, name)
    workers.drain()
    assert workers.job(job.id).get_status() == "failed"
    assert_climate_timestamped(run, r13, done=False)


def test_decorator_keeps_the_function_importable_by_rq() -> None:
    assert build_climate_decorated_rq.__name__ == "build_climate_decorated_rq"
    assert build_climate_decorated_rq.__module__ == "redisprep._demo.jobs"


def test_on_success_with_invalidate_false_is_legacy(run: str, workers: Workers, r13: Any) -> None:
    warm_caches(run)
    before = cache_keys(r13, run)
    job = workers.queue().enqueue(
        rebuild_rq, "run-a", "climate", on_success=make_callback("runid", run, invalidate=False)
    )
    workers.drain()
    assert workers.job(job.id).get_status() == "finished"
    assert RedisPrep.getInstance(run)[TaskEnum.build_climate] is not None
    assert cache_keys(r13, run) == before


def test_exception_in_on_success_marks_the_job_failed(
    run: str, workers: Workers, r0: Any, r13: Any
) -> None:
    """Two real ways the callback raises in the work horse: redisprep's Redis is
    down (the worker's RQ Redis is fine), and a job that does not return its
    folder for ``wd_from='result'``. Either way RQ records the job as failed with
    the callback's exception, after the job's own work was done."""
    warm_caches(run)
    before = cache_keys(r13, run)
    q = workers.queue()
    down = q.enqueue(rebuild_rq, "run-a", "climate", on_success=make_callback("runid", run))
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    workers.drain(prep_url=dead)

    failed = workers.job(down.id)
    assert failed.get_status() == "failed"
    assert "RedisConnectionError" in (failed.latest_result().exc_string or "")
    assert NoDbController(run, "climate").read_file()["revision"] == 1  # the work was done
    assert r0.hget("run-a", "timestamps:build_climate") is None
    assert cache_keys(r13, run) == before

    # build_climate_rq returns a dict, not its folder: wd_from="result" cannot work.
    bad = q.enqueue(jobs.build_climate_rq, "run-a", on_success=make_callback("result", run))
    workers.drain()
    failed = workers.job(bad.id)
    assert failed.get_status() == "failed"
    assert "wd_from='result'" in (failed.latest_result().exc_string or "")
    assert NoDbController(run, "climate").read_file()["revision"] == 2


def test_callback_names_round_trip_through_rq_storage(redis_info: Any) -> None:
    cb = prq.timestamp_on_success(TaskEnum.run_wepp_hillslopes, "run.wepp/x", wd="/w/a.b")
    module, _, attr = cb.name.rpartition(".")
    assert module == "redisprep.rq" and "." not in attr and "/" not in attr
    func = getattr(prq, attr)
    assert callable(func) and func.__module__ == "redisprep.rq" and func.__name__ == attr


def test_helpers_reject_bad_arguments() -> None:
    with pytest.raises(InvalidKeyError):
        prq.timestamp_on_success()
    with pytest.raises(InvalidKeyError):
        prq.timestamp_on_success(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        prq.timestamp_on_success(TaskEnum.build_climate, wd_from="job")
    with pytest.raises(ConfigError):
        prq.timestamps(TaskEnum.build_climate, wd_from="result")
    with pytest.raises(AttributeError):
        prq.no_such_helper  # noqa: B018
    with pytest.raises(AttributeError):
        getattr(prq, "timestamp_on_success__!!!")


def test_decorator_with_wd_argument_and_callable(tmp_path: Any) -> None:
    """In-process (no worker needed): the decorator's folder lookup variants."""
    wd = str(tmp_path / "run-z")
    os.makedirs(wd)

    @prq.timestamps(TaskEnum.build_soils, wd_from="wd")
    def by_wd(wd: str) -> str:
        return "ok"

    @prq.timestamps(TaskEnum.build_landuse, wd_from=lambda folder, n: folder)
    def by_callable(folder: str, n: int) -> int:
        return n * 2

    assert by_wd(wd=wd) == "ok"
    assert by_callable(wd, 21) == 42
    prep = RedisPrep.getInstance(wd)
    assert prep[TaskEnum.build_soils] is not None
    assert prep[TaskEnum.build_landuse] is not None


def test_rq_is_optional(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Without rq installed the decorator still works and the callback factory
    says clearly what is missing."""
    monkeypatch.setitem(sys.modules, "rq", None)  # makes `import rq` raise ImportError
    wd = str(tmp_path / "run-y")
    os.makedirs(wd)
    prq.timestamps(TaskEnum.build_rusle, wd_from="wd")(lambda wd: None)(wd)
    assert RedisPrep.getInstance(wd)[TaskEnum.build_rusle] is not None
    with pytest.raises(ConfigError, match=r"pip install 'redisprep\[rq\]'"):
        prq.timestamp_on_success(TaskEnum.build_rusle)
