"""Helpers of the integration tests: real forking RQ workers in subprocesses
(``python -m redisprep._demo.worker``), DB-13 snapshots, and the default rules'
closure computed independently of the engine."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import redis
from rq import Queue
from rq.job import Job

import redisprep
from redisprep import TaskEnum
from redisprep._demo import jobs
from redisprep._demo.app import rq_connection
from redisprep._demo.runs import CONTROLLERS

QUEUE = "redisprep-it"
WORKER_TIMEOUT = 60.0


@dataclass(frozen=True)
class Endpoint:
    """A migrated rq_api endpoint of the demo app. Its name is also its demo job's
    name (``jobs.hold``/``jobs.set_failure``); the RQ function is ``<name>_rq``."""

    name: str
    controller: str  # the controller (``.nodb`` file) its job rewrites
    tasks: tuple[TaskEnum, ...]  # what its job timestamps, in order

    @property
    def rq_name(self) -> str:
        return f"{self.name}_rq"

    @property
    def task_names(self) -> list[str]:
        return [str(t) for t in self.tasks]


MIGRATED = [
    Endpoint("build_climate", "climate", (TaskEnum.build_climate,)),
    Endpoint("run_wepp", "wepp", (TaskEnum.run_wepp_hillslopes, TaskEnum.run_wepp_watershed)),
    Endpoint("abstract_watershed", "watershed", (TaskEnum.abstract_watershed,)),
]
MIGRATED_IDS = [e.name for e in MIGRATED]


@dataclass
class Workers:
    """Start real RQ workers (each forks a work horse per job) as subprocesses."""

    url: str
    runs_root: str
    queue_name: str = QUEUE
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, prep_url: Optional[str] = None) -> subprocess.Popen[bytes]:
        """A burst worker: it performs every queued job, then exits."""
        cmd = [
            sys.executable,
            "-m",
            "redisprep._demo.worker",
            "--url",
            self.url,
            "--runs-root",
            self.runs_root,
            "--queue",
            self.queue_name,
            "--burst",
        ]
        if prep_url is not None:
            cmd += ["--prep-url", prep_url]
        env = dict(os.environ, REDIS_URL=self.url, REDISPREP_RUNS_ROOT=self.runs_root)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    @contextlib.contextmanager
    def held(self, wd: str, job: str) -> Iterator[None]:
        """Run the queued jobs with demo job ``job`` held before its timestamp: inside
        the block it has done its work and waits; leaving releases it and waits for
        the worker to finish every job."""
        jobs.hold(wd, job)
        proc = self.start()
        try:
            assert jobs.wait_reached(wd, job), f"{job} never reached its hold point"
            yield
        finally:
            jobs.release(wd, job)
        self.wait(proc)

    def wait(self, proc: subprocess.Popen[bytes]) -> str:
        out, _ = proc.communicate(timeout=WORKER_TIMEOUT)
        text = out.decode(errors="replace")
        assert proc.returncode == 0, text
        return text

    def drain(self, prep_url: Optional[str] = None) -> str:
        """Run a burst worker to completion (every queued job performed)."""
        return self.wait(self.start(prep_url))

    def queue(self) -> Queue:
        return Queue(self.queue_name, connection=rq_connection(self.url))

    def job(self, job_id: str) -> Job:
        return Job.fetch(job_id, connection=rq_connection(self.url))

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)


def cache_keys(r13: redis.Redis, wd: str) -> dict[str, str]:
    """``{key: value}`` of every DB-13 key under ``wd``."""
    keys = sorted(r13.scan_iter(match=os.path.join(wd, "*")))
    return {k: r13.get(k) for k in keys}  # type: ignore[misc]


def rules_closure(*tasks: str) -> set[str]:
    """Controllers the packaged default rules invalidate for ``tasks`` (with
    cascades), computed here from the JSON file, independently of the engine."""
    with open(redisprep.rules_path()) as fp:
        rules = json.load(fp)
    seen: set[str] = set()
    todo = list(tasks)
    controllers: set[str] = set()
    while todo:
        task = todo.pop()
        if task in seen:
            continue
        seen.add(task)
        entry = rules["tasks"].get(task, {})
        controllers.update(entry.get("invalidates", []))
        todo.extend(entry.get("cascades", []))
    return controllers


def names(keys: Iterable[str]) -> set[str]:
    """``{'climate', ...}`` from ``{'<wd>/climate.nodb', ...}``."""
    return {os.path.basename(k).removesuffix(".nodb") for k in keys}


def gone(r13: redis.Redis, wd: str) -> set[str]:
    """Controllers of a sample run whose DB-13 cache key is gone."""
    return set(CONTROLLERS) - names(cache_keys(r13, wd))


def closure_gone(*tasks: str) -> set[str]:
    """What :func:`gone` must be once ``tasks`` were timestamped on a warm sample run."""
    return rules_closure(*tasks) & set(CONTROLLERS)


def post(client: Any, runid: str, endpoint: str, config: str = "dev_unit") -> str:
    """POST an rq_api endpoint; returns the job id (asserts a 200 JSON answer)."""
    resp = client.post(f"/runs/{runid}/{config}/rq/api/{endpoint}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["Success"] is True
    job_id: str = body["job_id"]
    return job_id
