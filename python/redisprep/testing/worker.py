"""A real forking RQ worker on the test server, run in the test's own process:
``redisprep.rq.preload()`` first (as wepppy's worker start-up should), then
``rq.Worker.work()``, which forks a work horse per job. The horse inherits this
process's redisprep configuration (URL, events, rules) like a wepppy worker
inherits its parent's. ``rq`` is imported lazily."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from rq import Queue
    from rq.job import Job


def _rq() -> Any:
    try:
        import rq
    except ImportError as e:
        raise ImportError("the rq_worker fixture needs rq: pip install 'redisprep[rq]'") from e
    return rq


@dataclass
class Failure:
    """A job that failed, with the exception RQ recorded (its traceback text)."""

    job: Job
    exception: str


@dataclass
class WorkResult:
    """What one ``work()`` call did: ``finished`` jobs and ``failed`` ones."""

    finished: list[Job] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    timed_out: bool = False

    def raise_failures(self) -> None:
        """Raise ``AssertionError`` with every failed job's exception, if any."""
        if self.failed:
            text = "\n".join(
                f"job {f.job.id} ({f.job.func_name}):\n{f.exception}" for f in self.failed
            )
            raise AssertionError(f"{len(self.failed)} RQ job(s) failed:\n{text}")


class RqWorker:
    """``queue``: a queue of its own on the test server (DB ``db``); ``work()``
    performs what is queued in forked work horses."""

    def __init__(self, url: str, db: int = 9, name: Optional[str] = None) -> None:
        from .._client import url_with_db

        rq = _rq()
        import redis

        self.connection = redis.Redis.from_url(url_with_db(url, db))
        self.queue: Queue = rq.Queue(
            name or f"pytest-{secrets.token_hex(4)}", connection=self.connection
        )
        self.preloaded: dict[str, Any] = {}
        self._workers: list[str] = []
        self._made: set[str] = set()  # global RQ keys a worker of ours created

    def work(self, burst: bool = True, timeout: float = 60.0) -> WorkResult:
        """Work the queue in a real forking ``rq.Worker``: ``burst`` until it is
        empty, else until ``timeout`` seconds pass with no job. After ``timeout``
        seconds in all, a running work horse is killed (its job fails) and the
        worker stops: ``timed_out`` is then true. Returns the jobs finished and
        failed during this call."""
        import redisprep.rq

        rq = _rq()
        self.preloaded = dict(redisprep.rq.preload())
        before = self._registries()
        worker = rq.Worker([self.queue], connection=self.connection)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            worker._stop_requested = True
            pid = worker.horse_pid
            if pid:
                os.kill(pid, signal.SIGKILL)

        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        env = dict(os.environ)  # rq sets RQ_WORKER_ID / RQ_JOB_ID in the worker's process
        absent = {k for k in _GLOBAL_KEYS if not self.connection.exists(k)}
        self._workers.append(worker.name)
        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            with warnings.catch_warnings():
                # rq's own deprecations (rq 1.16 calls its deprecated push_connection in
                # every horse) must not crash a horse in a filterwarnings=error session
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"rq\.")
                worker.work(burst=burst, max_idle_time=None if burst else max(1, int(timeout)))
        finally:
            timer.cancel()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            os.environ.clear()
            os.environ.update(env)
            self._made |= absent
        after = self._registries()
        result = WorkResult(timed_out=expired.is_set())
        for job_id in sorted(after[0] - before[0]):
            job = self.queue.fetch_job(job_id)
            if job is not None:
                result.finished.append(job)
        for job_id in sorted(after[1] - before[1]):
            job = self.queue.fetch_job(job_id)
            if job is not None:
                result.failed.append(Failure(job, _exception(job)))
        return result

    def _registries(self) -> tuple[set[str], set[str]]:
        rq = _rq()
        finished = rq.registry.FinishedJobRegistry(queue=self.queue).get_job_ids()
        failed = rq.registry.FailedJobRegistry(queue=self.queue).get_job_ids()
        return set(finished), set(failed)

    def cleanup(self) -> None:
        """Delete the queue, its registries and its jobs from Redis."""
        rq = _rq()
        ids = set(self.queue.job_ids)
        for cls in (
            "FinishedJobRegistry",
            "FailedJobRegistry",
            "StartedJobRegistry",
            "DeferredJobRegistry",
            "ScheduledJobRegistry",
            "CanceledJobRegistry",
        ):
            registry = getattr(rq.registry, cls)(queue=self.queue)
            ids |= set(registry.get_job_ids())
            self.connection.delete(registry.key)
        for job_id in ids:
            self.connection.delete(f"rq:job:{job_id}", f"rq:results:{job_id}")
        self.queue.delete(delete_jobs=True)
        for name in self._workers:
            self.connection.delete(f"rq:worker:{name}")
            self.connection.srem("rq:workers", name)
            self.connection.srem(f"rq:workers:{self.queue.name}", name)
        self.connection.delete(
            *self._made, f"rq:clean_registries:{self.queue.name}", f"rq:workers:{self.queue.name}"
        )
        self.connection.close()


#: keys RQ workers create for all queues (locks of its periodic clean-ups)
_GLOBAL_KEYS = ("rq:clean_groups", "rq:workers", "rq:queues")


def _exception(job: Job) -> str:
    result = job.latest_result()
    text = getattr(result, "exc_string", None) if result is not None else None
    return str(text or getattr(job, "exc_info", None) or "(no exception recorded)")
