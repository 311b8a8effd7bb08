"""The demo (``python -m redisprep demo``) and its run status page.

``--once`` runs as a subprocess with its own private Redis, a real forking RQ
worker and the Flask app on a real port; the tests check what it prints against
what is left in Redis and on disk. The status page's forms and errors are
checked through the Flask test client."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, Worker
from rq.job import Job

from redisprep import RedisPrep, Rules, TaskEnum
from redisprep._demo import CONTROLLERS, create_sample_run, jobs, warm_caches
from redisprep._demo.app import RQ_DB
from redisprep._demo.launch import make_app
from support.demo_proc import DEMO_CMD, demo_env, run_once
from support.integration import Workers
from support.redis_server import free_port, url_with_db

pytestmark = pytest.mark.slow


def _result(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, output
    result: dict[str, Any] = json.loads(lines[0][len("RESULT ") :])
    return result


def _nodb(wd: str, name: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(Path(wd, f"{name}.nodb").read_text())
    return state


def test_once_on_its_private_redis(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = run_once(["--runs-root", str(runs), "--runid", "once-run"])
    out = done.stdout
    assert done.returncode == 0, out
    result = _result(out)
    wd = str(runs / "once-run")
    assert result["ok"] is True and result["wd"] == wd and result["job_status"] == "finished"

    # What it printed, before -> after.
    climate_key = os.path.join(wd, "climate.nodb")
    assert "starting a private redis-server" in out
    assert "job finished" in out
    assert f"{climate_key}: present -> gone" in out
    assert "climate: served from cache rev 0 -> read from file rev 1" in out
    assert f"Build Climate (build_climate): None -> {result['timestamp_after']}" in out
    assert result["climate_before"] == {"source": "cache", "revision": 0, "disk_revision": 0}
    assert result["climate_after"] == {"source": "file", "revision": 1, "disk_revision": 1}
    assert climate_key in result["keys_present_before"]
    assert climate_key in result["invalidated_keys"]
    assert not set(result["invalidated_keys"]) & set(result["keys_present_after"])
    # Controllers the rules do not cascade to kept their cache keys.
    assert os.path.join(wd, "watershed.nodb") in result["keys_present_after"]

    # The audit around the job: before, the stale entry the demo planted (wepp.nodb
    # rewritten without its write-through); after, nothing stale or orphaned.
    wepp_key = os.path.join(wd, "wepp.nodb")
    assert result["planted_stale"] == wepp_key
    assert result["audit_before"]["stale_keys"] == [wepp_key]
    assert result["audit_before"]["counts"]["orphan"] == 0
    assert result["audit_after"]["counts"]["stale"] == 0
    assert result["audit_after"]["counts"]["orphan"] == 0
    assert result["audit_after"]["counts"]["fresh"] == len(result["keys_present_after"])
    before, after = out.split("==> audit after the job", 1)
    assert f"stale:\n  {wepp_key}  (once-run, wepp): cache " in before.split("==> audit before")[1]
    assert "  stale   0\n  orphan  0\n" in after and "nothing stale" in after
    assert _nodb(wd, "wepp")["note"] == "written while the cache write failed"

    # What is on disk matches: the job rewrote climate.nodb, the prep dump holds
    # the timestamp and the job id it reported.
    assert _nodb(wd, "climate")["revision"] == 1
    assert _nodb(wd, "climate")["built_by"] == "build_climate"
    assert _nodb(wd, "watershed")["revision"] == 0
    dump = json.loads(Path(wd, "redisprep.dump").read_text())
    assert dump["timestamps:build_climate"] == str(result["timestamp_after"])
    assert dump["rq:build_climate_rq"] == result["job_id"]

    # Shut down cleanly: its private Redis is gone.
    port = urllib.parse.urlsplit(result["redis_url"]).port
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(port=port, socket_connect_timeout=1).ping()
    assert out.rstrip().endswith("==> stopped")


def test_once_on_a_given_redis_leaves_the_reported_state(tmp_path: Path, redis_info: Any) -> None:
    runs = tmp_path / "runs"
    done = run_once(
        ["--redis-url", redis_info.url, "--runs-root", str(runs), "--queue", "demo-test-q"]
    )
    assert done.returncode == 0, done.stdout
    assert "starting a private redis-server" not in done.stdout
    result = _result(done.stdout)
    wd = result["wd"]

    # The prep hash in DB 0 holds exactly what it reported.
    prep = RedisPrep.getInstance(wd)
    assert prep[TaskEnum.build_climate] == result["timestamp_after"]
    assert prep.get_rq_job_id("build_climate_rq") == result["job_id"]

    # DB 13: every invalidated key is absent, every other key it reported is there.
    r13 = redis_info.client(13)
    assert result["invalidated_keys"]
    assert not any(r13.exists(k) for k in result["invalidated_keys"])
    assert result["keys_present_after"]
    for key in result["keys_present_after"]:
        assert r13.ttl(key) > 0
        assert json.loads(r13.get(key)) == json.loads(Path(key).read_text())

    # The audit command agrees on the state the demo left: nothing stale.
    audit = subprocess.run(
        [sys.executable, "-m", "redisprep", "audit", wd, "--format", "json"],
        env=dict(os.environ, REDIS_URL=redis_info.url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    counts = json.loads(audit.stdout)["counts"]
    assert counts["stale"] == counts["orphan"] == 0
    assert counts["fresh"] == len(result["keys_present_after"])

    # The RQ job finished in the real worker, which then shut down and deregistered.
    rq_conn = redis.Redis.from_url(url_with_db(redis_info.url, RQ_DB))
    try:
        job = Job.fetch(result["job_id"], connection=rq_conn)
        assert job.get_status() == "finished"
        assert job.return_value()["revision"] == 1
        assert Worker.all(queue=Queue("demo-test-q", connection=rq_conn)) == []
    finally:
        rq_conn.close()


def test_once_reports_an_unreachable_redis(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = run_once(["--redis-url", url, "--runs-root", str(tmp_path)], timeout=60)
    assert done.returncode == 1
    assert re.search(
        r"^redisprep demo: error: RedisConnectionError: .*127\.0\.0\.1", done.stdout, re.M
    ), done.stdout


def test_missing_redis_server_is_a_clear_error(tmp_path: Path) -> None:
    env = demo_env()
    env["PATH"] = os.path.dirname(sys.executable)  # no redis-server on it
    done = subprocess.run(
        [*DEMO_CMD, "--once", "--runs-root", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "redisprep demo: error: RedisServerError: redis-server is not installed" in done.stdout


# The status page through the Flask test client (no worker: jobs stay queued).


@pytest.fixture
def app_run(tmp_path: Path, redis_info: Any) -> tuple[Any, str]:
    runs = tmp_path / "runs"
    app = make_app(str(runs), redis_info.url, "status-test-q")
    wd = create_sample_run(str(runs), "page-run")
    warm_caches(wd)
    return app, wd


def _attr(html: str, element_id: str, attr: str) -> str:
    m = re.search(rf'id="{re.escape(element_id)}"[^>]*?{attr}="([^"]*)"', html)
    assert m, f"no {element_id}[{attr}] in page"
    return m.group(1)


def test_status_page_shows_the_run(app_run: tuple[Any, str]) -> None:
    app, wd = app_run
    prep = RedisPrep.getInstance(wd)
    prep.timestamp(TaskEnum.abstract_watershed)
    html = app.test_client().get("/runs/page-run/dev_unit/status").get_data(as_text=True)
    assert f'data-ts="{prep[TaskEnum.abstract_watershed]}"' in html
    assert "💎 Abstract Watershed" in html and "☁️ Build Climate" in html
    assert _attr(html, "ts-build_climate", "data-ts") == ""
    # abstract_watershed invalidated watershed and what the rules cascade to:
    # exactly those rows are read from file, the rest still come from the cache.
    cascade = set(Rules.load().controllers_for(TaskEnum.abstract_watershed))
    assert {"watershed", "climate"} <= cascade and "topaz" not in cascade
    for name in CONTROLLERS:
        expected = "file" if name in cascade else "cache"
        assert _attr(html, f"source-{name}", "data-source") == expected, name
        assert _attr(html, f"state-{name}", "data-revision") == "0"
    checklist = prep.preflight()["checklist"]
    for name, ok in checklist.items():
        assert _attr(html, f"check-{name}", "data-ok") == ("true" if ok else "false")
    assert 'id="autorefresh"' not in html
    # The page observes: it does not refill the caches invalidation removed.
    html = app.test_client().get("/runs/page-run/dev_unit/status").get_data(as_text=True)
    assert _attr(html, "source-watershed", "data-source") == "file"


def test_status_form_runs_the_migrated_endpoint(app_run: tuple[Any, str], r13: Any) -> None:
    app, wd = app_run
    client = app.test_client()
    reply = client.post("/runs/page-run/dev_unit/status/build_climate")
    assert reply.status_code == 303
    assert reply.headers["Location"].endswith(
        "/runs/page-run/dev_unit/status?msg=build_climate+enqueued"
    )
    job_id = RedisPrep.getInstance(wd).get_rq_job_id("build_climate_rq")
    assert job_id
    html = client.get(reply.headers["Location"]).get_data(as_text=True)
    assert 'id="autorefresh" http-equiv="refresh"' in html
    assert "queued" in html and _attr(html, "ts-build_climate", "data-ts") == ""
    # Migrated: enqueueing removed nothing, the cache is still there.
    assert r13.exists(os.path.join(wd, "climate.nodb"))

    # "Warm caches" reads through like a controller: invalidated keys come back.
    RedisPrep.getInstance(wd).timestamp(TaskEnum.build_climate)
    assert not r13.exists(os.path.join(wd, "climate.nodb"))
    assert client.post("/runs/page-run/dev_unit/status/warm_caches").status_code == 303
    assert r13.exists(os.path.join(wd, "climate.nodb"))


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/runs/nope/dev_unit/status", 404),
        ("get", "/runs/page-run/other_cfg/status", 400),
        ("post", "/runs/page-run/dev_unit/status/rm_rf", 404),
        ("post", "/runs/nope/dev_unit/status/build_climate", 404),
    ],
)
def test_status_errors_are_clean_pages(
    app_run: tuple[Any, str], method: str, path: str, status: int
) -> None:
    app, _wd = app_run
    reply = getattr(app.test_client(), method)(path)
    assert reply.status_code == status
    assert '<p id="error">' in reply.get_data(as_text=True)


def test_status_page_after_a_failed_and_a_finished_job(
    app_run: tuple[Any, str], redis_info: Any, r13: Any
) -> None:
    app, wd = app_run
    client = app.test_client()
    workers = Workers(redis_info.url, os.path.dirname(wd), "status-test-q")
    try:
        # A failing job (real forking worker): shown failed with its error; no
        # timestamp, nothing invalidated, the page stops refreshing.
        jobs.set_failure(wd, "build_climate")
        assert client.post("/runs/page-run/dev_unit/status/build_climate").status_code == 303
        workers.drain()
        html = client.get("/runs/page-run/dev_unit/status").get_data(as_text=True)
        assert re.search(r'id="jobstatus-build_climate_rq">.*?failed</span>', html, re.S)
        assert "DemoJobError: build_climate: failing on demand" in html
        assert _attr(html, "ts-build_climate", "data-ts") == ""
        assert _attr(html, "source-climate", "data-source") == "cache"
        assert "stale" in html  # the job rewrote the file before failing
        assert 'id="autorefresh"' not in html

        # The same endpoint again, succeeding: finished, stamped, read from file.
        jobs.set_failure(wd, "build_climate", on=False)
        assert client.post("/runs/page-run/dev_unit/status/build_climate").status_code == 303
        workers.drain()
        html = client.get("/runs/page-run/dev_unit/status").get_data(as_text=True)
        stamped = RedisPrep.getInstance(wd)[TaskEnum.build_climate]
        assert stamped is not None
        assert _attr(html, "ts-build_climate", "data-ts") == str(stamped)
        assert re.search(r'id="job-build_climate">.*?finished</span>', html, re.S)
        assert _attr(html, "source-climate", "data-source") == "file"
        assert _attr(html, "state-climate", "data-revision") == "2"
        assert not r13.exists(os.path.join(wd, "climate.nodb"))
    finally:
        workers.cleanup()


# The live invalidation feed: the SSE endpoint on a real HTTP server, a real
# subscriber (the HTTP client reading the stream) and a real forking RQ worker.


class _Served:
    """``app`` served by werkzeug on a free port in a thread (like the demo)."""

    def __init__(self, app: Any) -> None:
        import threading

        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.app.config["REDISPREP_DEMO_STOP"].set()
        self.server.shutdown()
        self.server.server_close()


class _Stream:
    """An open SSE connection, read event by event."""

    def __init__(self, port: int, path: str) -> None:
        import http.client

        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()

    def next(self) -> tuple[str, dict[str, Any]]:
        """The next event (skipping comments and ``retry``): ``(name, data)``."""
        name, data = "message", ""
        while True:
            line = self.resp.readline().decode()
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if line == "" and data:
                return name, json.loads(data)
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]

    def close(self) -> None:
        self.resp.close()  # (the response holds the socket open otherwise)
        self.conn.close()


def _numsub(r0: Any, channel: str) -> int:
    return int(dict(r0.pubsub_numsub(channel))[channel])


def _wait_numsub(r0: Any, channel: str, want: int, timeout: float = 10.0) -> int:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _numsub(r0, channel)
        if n == want:
            return n
        time.sleep(0.05)
    return _numsub(r0, channel)


@pytest.fixture
def live_app(tmp_path: Path, redis_info: Any, r0: Any, monkeypatch: Any) -> Any:
    """The demo app with events on, served for real, keyspace notifications on."""
    from redisprep._demo.events import enable_keyspace_events

    monkeypatch.setenv("REDISPREP_EVENTS", "true")  # for the workers this test starts
    before = r0.config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert enable_keyspace_events(r0)
    app = make_app(str(tmp_path / "runs"), redis_info.url, "live-test-q", events=True)
    app.config["REDISPREP_DEMO_SSE_KEEPALIVE"] = 0.2
    served = _Served(app)
    try:
        yield served
    finally:
        served.close()
        r0.config_set("notify-keyspace-events", before)


def test_sse_streams_the_runs_invalidations(
    live_app: _Served, tmp_path: Path, redis_info: Any, r0: Any, r13: Any
) -> None:
    from redisprep._demo.events import events_on
    from support.integration import closure_gone

    channel = events_on()[1]
    runs = tmp_path / "runs"
    wd = create_sample_run(str(runs), "live-run")
    other = create_sample_run(str(runs), "live-run-2")
    warm_caches(wd)
    stream = _Stream(live_app.port, "/runs/live-run/dev_unit/events")
    workers = Workers(redis_info.url, str(runs), "live-test-q")
    try:
        assert stream.resp.status == 200
        assert stream.resp.getheader("Content-Type", "").startswith("text/event-stream")
        name, ready = stream.next()
        assert name == "ready" and ready == {"channel": channel, "counting": True}
        assert _numsub(r0, channel) == 1  # this client's own subscription

        # Another run's invalidation is not this stream's.
        RedisPrep.getInstance(other).timestamp(TaskEnum.build_climate)
        # The migrated endpoint, performed by a real forking worker.
        reply = live_app.app.test_client().post("/runs/live-run/dev_unit/rq/api/build_climate")
        assert reply.status_code == 200
        workers.drain()
        name, event = stream.next()
    finally:
        workers.cleanup()
        stream.close()
    assert name == "invalidation"
    prep = RedisPrep.getInstance(wd)
    assert event["run_id"] == "live-run" and event["wd"] == wd
    assert event["task"] == "build_climate" and event["timestamp"] == prep[TaskEnum.build_climate]
    assert (event["label"], event["emoji"]) == ("Build Climate", "☁️")
    assert event["checklist"] == prep.preflight()["checklist"]
    keys = {k["key"]: k for k in event["keys"]}
    assert set(keys) == set(Rules.load().keys_for(TaskEnum.build_climate, wd))
    climate = keys[os.path.join(wd, "climate.nodb")]
    assert climate["controller"] == "climate" and climate["why"] == "direct"
    assert keys[os.path.join(wd, "rap_ts.nodb")]["why"] == (
        "via cascade from build_climate → build_rap_ts"
    )
    assert keys[os.path.join(wd, "wepppost.nodb")]["why"] == (
        "via cascade from build_climate → run_wepp_hillslopes → run_wepp_watershed"
    )
    # Present = the keys this warm run had among them (from Redis' del notifications).
    present = {k["controller"] for k in event["keys"] if k["present"]}
    assert present == closure_gone("build_climate")
    assert event["present"] == len(present) and event["named"] == len(keys)
    assert not any(r13.exists(k) for k in keys)
    # The client went away: its subscription is closed (at the next keep-alive).
    assert _wait_numsub(r0, channel, 0) == 0


def test_sse_ends_when_the_demo_stops(live_app: _Served, tmp_path: Path, r0: Any) -> None:
    from redisprep._demo.events import events_on

    create_sample_run(str(tmp_path / "runs"), "stop-run")
    stream = _Stream(live_app.port, "/runs/stop-run/dev_unit/events")
    try:
        assert stream.next()[0] == "ready"
        live_app.app.config["REDISPREP_DEMO_STOP"].set()
        with pytest.raises(AssertionError, match="the stream ended"):
            while True:
                stream.next()
    finally:
        stream.close()
    assert _wait_numsub(r0, events_on()[1], 0) == 0


def test_events_off_page_says_how_to_turn_them_on(tmp_path: Path, redis_info: Any) -> None:
    runs = tmp_path / "runs"
    app = make_app(str(runs), redis_info.url, "off-test-q", events=False)
    create_sample_run(str(runs), "off-run")
    client = app.test_client()
    html = client.get("/runs/off-run/dev_unit/status").get_data(as_text=True)
    assert _attr(html, "feed-status", "data-state") == "off"
    assert _attr(html, "live", "data-events") == "off"
    assert "Invalidation events are <strong>off</strong>" in html
    assert "<code>REDISPREP_EVENTS=true</code>" in html and "--no-events" in html
    reply = client.get("/runs/off-run/dev_unit/events")
    assert reply.status_code == 409
    assert "invalidation events are off" in reply.get_json()["Error"]
    assert client.get("/runs/nope/dev_unit/events").status_code == 404
