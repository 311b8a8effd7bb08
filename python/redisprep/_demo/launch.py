"""The demo launcher behind ``python -m redisprep demo`` (parsed by
:mod:`redisprep.cli.demo`): the wepppy-shaped app, live.

Starts a private ``redis-server`` (or uses ``--redis-url``), one real forking RQ
worker process, and the Flask app (the migrated ``rq_api`` endpoints plus the
run status page) on a local port; creates a sample run with warm caches and
prints the status page URL. Runs until Ctrl-C, then stops the web server, the
worker and the private Redis in that order.

``--once`` runs one scripted round instead: it enqueues "build climate" through
the HTTP endpoint, waits for the worker (printing progress), prints the
timestamps, the cache keys the rules invalidate (present before, gone after) and
where a controller's state comes from before and after, then a ``RESULT {json}``
line, and exits 0 when everything happened as it should. Around the job it runs
the cache coherence audit (``redisprep audit``): before, it finds the stale entry
the demo plants (``wepp.nodb`` rewritten without its write-through, as when
wepppy's cache write fails); after, the job's ``timestamp()`` has deleted it and
nothing is stale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    import flask
    from werkzeug.serving import BaseWSGIServer

    from .._server import RedisServer
    from .status import RunStatus

__all__ = ["Demo", "make_app", "run"]

WORKER_START_LIMIT = 60.0


def make_app(
    runs_root: str,
    redis_url: str,
    queue_name: str = "redisprep-demo",
    events: Optional[bool] = None,
) -> flask.Flask:
    """The demo app (``rq_api`` endpoints) plus the run status page and its live
    invalidation feed (``events``: see :func:`redisprep._demo.app.create_app`)."""
    from .app import create_app
    from .events import events_blueprint
    from .status import status_blueprint

    app = create_app(runs_root, redis_url, queue_name, events)
    app.register_blueprint(events_blueprint())
    app.register_blueprint(status_blueprint())
    return app


def _say(*parts: object) -> None:
    print(*parts, flush=True)


def _safe_url(url: str) -> str:
    """``url`` without its password, for printing."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))


class _Stop(Exception):
    """SIGTERM: shut down like Ctrl-C."""


def _on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    raise _Stop


class Demo:
    """The demo's processes: private Redis, RQ worker, web server, sample run."""

    def __init__(self, args: argparse.Namespace, error: Callable[[str], None]) -> None:
        self.args = args
        self.error = error  # prints one error line (redisprep demo: error: ...)
        self.redis: Optional[RedisServer] = None
        self.redis_url: str = args.redis_url or ""
        self.own_root = args.runs_root is None
        self.runs_root = os.path.abspath(
            args.runs_root or tempfile.mkdtemp(prefix="redisprep-demo-")
        )
        self.worker: Optional[subprocess.Popen[bytes]] = None
        self.server: Optional[BaseWSGIServer] = None
        self.stop: Optional[threading.Event] = None  # ends the open event streams
        self.thread: Optional[threading.Thread] = None
        self.wd = ""
        self.base = ""

    @property
    def status_url(self) -> str:
        return f"{self.base}/runs/{self.args.runid}/{self.args.config}/status"

    def start(self) -> None:
        import logging

        from werkzeug.serving import make_server

        from .._server import RedisServer
        from .events import enable_keyspace_events, events_on
        from .nodb import cache_client
        from .runs import create_sample_run, warm_caches

        if not self.redis_url:
            _say("==> starting a private redis-server")
            self.redis = RedisServer(new_session=True).start()
            self.redis_url = self.redis.url
        _say(f"    Redis: {_safe_url(self.redis_url)}")

        events = not self.args.no_events
        app = make_app(self.runs_root, self.redis_url, self.args.queue, events)
        self.stop = app.config["REDISPREP_DEMO_STOP"]
        self.wd = create_sample_run(self.runs_root, self.args.runid, self.args.config)
        keys = warm_caches(self.wd)
        _say(f"==> sample run {self.args.runid!r} in {self.wd} ({len(keys)} controllers cached)")
        if events:
            _say(f"==> invalidation events on (channel {events_on()[1]!r}): the live feed")
            client = cache_client(self.redis_url)
            try:
                if not enable_keyspace_events(client):
                    _say("    (CONFIG refused: the feed cannot tell which keys were present)")
            finally:
                client.close()
        else:
            _say("==> invalidation events off (--no-events): the page has no live feed")

        _say("==> starting one RQ worker (forks a work horse per job)")
        self.worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "redisprep._demo.worker",
                "--url",
                self.redis_url,
                "--runs-root",
                self.runs_root,
                "--queue",
                self.args.queue,
                *(["--events"] if events else []),
            ],
            start_new_session=True,
        )
        self._wait_worker()

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.server = make_server(self.args.host, self.args.port, app, threaded=True)
        self.base = f"http://{self.args.host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        _say(f"==> status page: {self.status_url}")

    def _wait_worker(self) -> None:
        """Wait (bounded, with progress) until the worker has registered with RQ."""
        from rq import Worker

        from .app import rq_connection

        assert self.worker is not None
        conn = rq_connection(self.redis_url)
        start = time.monotonic()
        next_report = start + 1.0
        try:
            while True:
                if self.worker.poll() is not None:
                    raise RuntimeError(f"the RQ worker exited with code {self.worker.returncode}")
                if any(self.args.queue in w.queue_names() for w in Worker.all(connection=conn)):
                    _say(f"    worker pid {self.worker.pid} ready")
                    return
                now = time.monotonic()
                if now - start > WORKER_START_LIMIT:
                    raise RuntimeError(f"the RQ worker did not start in {WORKER_START_LIMIT:.0f} s")
                if now >= next_report:
                    _say(f"    waiting for the worker to start... {now - start:.0f} s")
                    next_report = now + 1.0
                time.sleep(0.05)
        finally:
            conn.close()

    def serve(self) -> int:
        _say("    open it in a browser; Ctrl-C stops the demo")
        assert self.worker is not None
        while True:
            if self.worker.poll() is not None:
                self.error(f"the RQ worker exited with code {self.worker.returncode}")
                return 1
            time.sleep(0.5)

    def close(self) -> None:
        if self.stop is not None:
            self.stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.worker is not None and self.worker.poll() is None:
            from .._server import stop_process

            _say("==> stopping the RQ worker")
            stop_process(self.worker, 15)  # SIGTERM: RQ's warm shutdown
        self.worker = None
        if self.redis is not None:
            _say("==> stopping the private redis-server")
            self.redis.cleanup()
            self.redis = None
        if self.own_root:
            shutil.rmtree(self.runs_root, ignore_errors=True)
        _say("==> stopped")

    # --once ---------------------------------------------------------------

    def _post(self, path: str) -> dict[str, Any]:
        req = urllib.request.Request(self.base + path, data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as reply:
            body: dict[str, Any] = json.loads(reply.read())
        return body

    def _wait_job(self, job_id: str, rq_conn: Any) -> str:
        from rq.job import Job

        job = Job.fetch(job_id, connection=rq_conn)
        start = time.monotonic()
        last = ""
        next_report = start + 1.0
        while True:
            status = str(getattr(job.get_status(), "value", job.get_status()))
            now = time.monotonic()
            if status != last:
                _say(f"    job {status} ({now - start:.1f} s)")
                last = status
            if status in ("finished", "failed", "stopped", "canceled"):
                return status
            if now - start > self.args.timeout:
                _say(f"    gave up after {self.args.timeout:.0f} s")
                return status
            if now >= next_report:
                _say(f"    waiting for the worker... job {status} ({now - start:.0f} s)")
                next_report = now + 1.0
            time.sleep(0.05)

    def run_once(self) -> int:
        from ..prep import RedisPrep
        from ..task import TaskEnum
        from .app import rq_connection
        from .nodb import cache_client
        from .status import collect_status

        task = TaskEnum.build_climate
        prep = RedisPrep.getInstance(self.wd)
        planted = _plant_stale(self.wd)
        audit_before = _audit(self.wd, "before the job")
        rule_keys = sorted({k for entry in prep.explain(task) for k in entry["keys"]})
        cache = cache_client(self.redis_url)
        rq_conn = rq_connection(self.redis_url)
        try:
            before = collect_status(self.wd, self.redis_url, rq_conn)
            run_keys = [c.key for c in before.controllers]
            present_before = [k for k in run_keys if cache.exists(k)]

            _say(f"==> POST /runs/{self.args.runid}/{self.args.config}/rq/api/build_climate")
            reply = self._post(f"/runs/{self.args.runid}/{self.args.config}/rq/api/build_climate")
            job_id = str(reply["job_id"])
            _say(
                f"    enqueued job {job_id}; recorded as rq:build_climate_rq = "
                f"{prep.get_rq_job_id('build_climate_rq')}"
            )
            status = self._wait_job(job_id, rq_conn)

            after = collect_status(self.wd, self.redis_url, rq_conn)
            present_after = [k for k in run_keys if cache.exists(k)]
            with urllib.request.urlopen(self.status_url, timeout=30) as page:
                html = page.read().decode()
        finally:
            cache.close()
            rq_conn.close()
        audit_after = _audit(self.wd, "after the job")

        _print_round(task, before, after, rule_keys, present_before, present_after)
        ts_before = _timestamp(before, str(task))
        ts_after = _timestamp(after, str(task))
        climate_before = _controller(before, "climate")
        climate_after = _controller(after, "climate")
        untouched = [k for k in present_before if k not in rule_keys]
        page_ok = f'id="ts-{task}" data-ts="{ts_after}"' in html and (
            'id="source-climate" data-source="file"' in html
        )
        result = {
            "status_url": self.status_url,
            "redis_url": _safe_url(self.redis_url),
            "runs_root": self.runs_root,
            "wd": self.wd,
            "runid": self.args.runid,
            "job_id": job_id,
            "job_status": status,
            "timestamp_before": ts_before,
            "timestamp_after": ts_after,
            "invalidated_keys": rule_keys,
            "keys_present_before": present_before,
            "keys_present_after": present_after,
            "climate_before": climate_before,
            "climate_after": climate_after,
            "status_page_ok": page_ok,
            "planted_stale": planted,
            "audit_before": audit_before,
            "audit_after": audit_after,
        }
        problems = _problems(result, untouched)
        result["ok"] = not problems
        _say("RESULT " + json.dumps(result, sort_keys=True))
        for problem in problems:
            self.error(problem)
        if not problems:
            gone = [k for k in present_before if k in rule_keys]
            _say(f"==> OK: build_climate deleted {len(gone)} cache keys of this run at completion")
        return 0 if not problems else 1


def _problems(result: dict[str, Any], untouched: list[str]) -> list[str]:
    """What went wrong in a ``--once`` round (``result`` is its RESULT document;
    ``untouched``: cache keys present before that the rules do not name)."""
    problems = []
    present_after = result["keys_present_after"]
    before, after = result["climate_before"], result["climate_after"]
    audit_before, audit_after = result["audit_before"], result["audit_after"]
    if result["job_status"] != "finished":
        problems.append(f"the job ended {result['job_status']}")
    if result["timestamp_after"] in (None, result["timestamp_before"]):
        problems.append("no new build_climate timestamp")
    if any(k in present_after for k in result["invalidated_keys"]):
        problems.append("cache keys the rules name are still present")
    if any(k not in present_after for k in untouched):
        problems.append("an unrelated cache key disappeared")
    if after["source"] != "file" or after["revision"] != (before["revision"] or 0) + 1:
        problems.append("the climate state did not come fresh from its file")
    if not result["status_page_ok"]:
        problems.append("the status page does not show the new timestamp and state")
    if audit_before["stale_keys"] != [result["planted_stale"]]:
        problems.append("the audit before the job did not find exactly the planted stale entry")
    if audit_after["counts"]["stale"] or audit_after["counts"]["orphan"]:
        problems.append("the audit after the job still finds stale or orphan entries")
    return problems


STALE_CONTROLLER = "wepp"  # in build_climate's cascade (via run_wepp_hillslopes)


def _plant_stale(wd: str) -> str:
    """Rewrite ``wepp.nodb`` without its write-through (what wepppy does when the
    cache write fails): the cached copy is now stale. Returns its key."""
    from .nodb import NoDbController

    ctrl = NoDbController(wd, STALE_CONTROLLER)
    state = ctrl.read_file()
    state["note"] = "written while the cache write failed"
    ctrl.dump(state, write_through=False)
    ctrl.cache.close()
    _say(f"==> planted a stale cache entry: {ctrl.path} rewritten without its write-through")
    return ctrl.path


def _audit(wd: str, when: str) -> dict[str, Any]:
    """``redisprep audit WD``, printed; returns its counts and stale keys."""
    from .._audit_report import collect, print_text

    _say(f"==> audit {when} (python -m redisprep audit {wd})")
    outcome = collect([wd])
    print_text(outcome, sys.stdout)
    sys.stdout.flush()
    return {
        "counts": outcome.report["counts"],
        "stale_keys": [e.key for e in outcome.bad if e.state == "stale"],
    }


def _timestamp(status: RunStatus, task: str) -> Optional[int]:
    return next((t.timestamp for t in status.tasks if str(t.task) == task), None)


def _controller(status: RunStatus, name: str) -> dict[str, Any]:
    c = next(c for c in status.controllers if c.name == name)
    return {"source": c.source, "revision": c.revision, "disk_revision": c.disk_revision}


def _print_round(
    task: Any,
    before: RunStatus,
    after: RunStatus,
    rule_keys: list[str],
    present_before: list[str],
    present_after: list[str],
) -> None:
    label = {"cache": "served from cache", "file": "read from file", "missing": "missing"}
    _say(f"==> before -> after ({task.emoji()} {task.label()})")
    _say("  timestamps:")
    for t_before, t_after in zip(before.tasks, after.tasks):
        if t_before.timestamp != t_after.timestamp or str(t_before.task) == str(task):
            _say(
                f"    {t_after.label} ({t_after.task}): {t_before.timestamp} -> {t_after.timestamp}"
            )
    _say(f"  cache keys (DB 13) the rules invalidate for {task}:")
    for key in rule_keys:
        if key in present_before:
            now = "still present" if key in present_after else "gone"
            _say(f"    {key}: present -> {now}")
    absent = [k for k in rule_keys if k not in present_before]
    _say(f"    (+ {len(absent)} keys of controllers this run does not have)")
    kept = [k for k in present_after if k not in rule_keys]
    _say(f"  other cache keys of the run: {len(kept)} still present")
    _say("  controllers (as a controller reads them):")
    for c_before, c_after in zip(before.controllers, after.controllers):
        if c_before.source != c_after.source or c_before.state != c_after.state:
            _say(
                f"    {c_after.name}: {label[c_before.source]} rev {c_before.revision} -> "
                f"{label[c_after.source]} rev {c_after.revision}"
            )


def run(args: argparse.Namespace, error: Callable[[str], None]) -> int:
    """Run the demo as parsed by :mod:`redisprep.cli.demo` (``--once``: one scripted
    round, exit 0 when everything happened as it should; else until Ctrl-C or
    SIGTERM). ``error`` prints one error line."""
    demo = Demo(args, error)
    previous = previous_int = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        # Ctrl-C must work even when started from a shell that ignores SIGINT
        # for background jobs.
        previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        demo.start()
        return demo.run_once() if args.once else demo.serve()
    except (KeyboardInterrupt, _Stop):
        _say("\n==> shutting down")
        return 0
    except Exception as e:  # report any failure in one line, then shut down
        error(f"{type(e).__name__}: {e}")
        return 1
    finally:
        demo.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
