"""The package's pytest plugin (redisprep.testing), tested with ``pytester``: each
case runs a real inner pytest session in a subprocess (its own server processes
and redisprep state) and checks what it started, stopped, kept and printed."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import redis

pytest.importorskip("rq")

INI = """
[pytest]
addopts = -p no:cacheprovider --strict-markers
filterwarnings =
    error
    ignore:.*use of fork\\(\\) may lead to deadlocks.*:DeprecationWarning
"""


def exec_wrapper(path: Path, log: Path) -> Path:
    """A server executable that logs each start (pid, args), then runs redis-server."""
    real = shutil.which("redis-server")
    assert real is not None
    path.write_text(f'#!/bin/sh\necho "$$ $*" >> {log}\nexec {real} "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def starts(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(p), a) for p, a in (line.split(" ", 1) for line in log.read_text().splitlines())]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of the inner session is gone for our purposes
    with open(f"/proc/{pid}/stat") as fp:
        return fp.read().split(") ", 1)[1][0] != "Z"


@pytest.fixture
def inner(pytester: pytest.Pytester, tmp_path: Path) -> Any:
    pytester.makeini(INI)
    log = tmp_path / "starts.log"
    exe = exec_wrapper(tmp_path / "server-wrapper", log)

    def run(*args: str, env: dict[str, str] | None = None) -> Any:
        old = dict(os.environ)
        os.environ.pop("REDISPREP_TEST_URL", None)
        os.environ.update(env or {})
        try:
            return pytester.runpytest_subprocess("--redisprep-server-exec", str(exe), *args)
        finally:
            os.environ.clear()
            os.environ.update(old)

    run.log = log  # type: ignore[attr-defined]
    return run


def test_fixtures_start_and_stop_a_private_server(pytester: pytest.Pytester, inner: Any) -> None:
    out = pytester.path / "seen.txt"
    pytester.makepyfile(
        f"""
        import redisprep
        def test_server(redisprep_server, redisprep_url):
            c = redisprep_server.client()
            assert c.ping()
            assert c.config_get("save")["save"] == ""
            assert c.config_get("appendonly")["appendonly"] == "no"
            assert redisprep_url == redisprep_server.url
            assert redisprep_server.url.endswith(f":{{redisprep_server.port}}/0")
            assert redisprep.connection_info()["url"] == redisprep_server.url
            pid = redisprep_server.process.proc.pid
            with open({str(out)!r}, "w") as fp:
                fp.write(f"{{pid}} {{redisprep_server.port}} {{redisprep_server.version}}")
        """
    )
    result = inner()
    result.assert_outcomes(passed=1)
    pid, port, version = out.read_text().split()
    assert starts(inner.log)[0][0] == int(pid)  # the executable chosen by the option
    assert len(starts(inner.log)) == 1 and version[0].isdigit()
    assert not alive(int(pid)), "the server outlived its session"
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=int(port), socket_connect_timeout=0.5).ping()


LEAK_TESTS = """
import json, os
import pytest
import redisprep

BASE = {}

def state(server):
    dbs = {db: server.client(db).dbsize() for db in (0, 9, 13)}
    rules = redisprep.active_rules()
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return {"info": redisprep.connection_info(), "env": env, "dbs": dbs,
            "rules": rules.source if rules else None}

def test_0_baseline(redisprep_server):
    redisprep.configure("redis://127.0.0.1:1/3", events=False, timeout=7.5)
    BASE.update(state(redisprep_server))

def job(wd):
    redisprep.RedisPrep.getInstance(wd).timestamp("build_climate")

@pytest.mark.redisprep_rules({"version": 1, "db": 13,
    "controllers": {"climate": {"keys": ["{wd}/climate.nodb"]}},
    "tasks": {"build_climate": {"invalidates": ["climate"]}}})
def test_1_uses_everything(prep_run, invalidations, rq_worker):
    assert redisprep.connection_info()["events"] is True
    assert redisprep.active_rules().controllers == ["climate"]
    prep_run.seed_caches()
    rq_worker.queue.enqueue(job, prep_run.wd)
    assert len(rq_worker.work().finished) == 1
    invalidations.assert_invalidated("build_climate", ["climate"], run=prep_run)
    assert prep_run.cached() == set()

def test_2_nothing_leaked(redisprep_server):
    assert state(redisprep_server) == BASE
"""


def test_nothing_leaks_between_tests(pytester: pytest.Pytester, inner: Any) -> None:
    pytester.makepyfile(test_leaks=LEAK_TESTS)
    inner("-v").assert_outcomes(passed=3)


def test_noproc_uses_the_given_server_and_starts_none(
    pytester: pytest.Pytester, inner: Any, redis_info: Any
) -> None:
    pytester.makepyfile(
        f"""
        def test_noproc(redisprep_server, prep_run):
            assert redisprep_server.process is None
            assert redisprep_server.url == {redis_info.url!r}
            prep_run.prep.timestamp("build_climate")
            prep_run.seed_caches(["wepp"])
            assert redisprep_server.client().hget(prep_run.run_id, "timestamps:build_climate")
        """
    )
    inner("--redisprep-url", redis_info.url).assert_outcomes(passed=1)
    inner(env={"REDISPREP_TEST_URL": redis_info.url}).assert_outcomes(passed=1)
    assert starts(inner.log) == []
    r0, r13 = redis_info.client(0), redis_info.client(13)
    assert r0.dbsize() == 0 and r13.dbsize() == 0, "prep_run left keys behind"


ASSERT_TESTS = """
def test_right(prep_run, invalidations):
    prep_run.prep.timestamp("build_climate")
    invalidations.assert_invalidated("build_climate", ["climate", "wepp"], run=prep_run)
    invalidations.assert_not_invalidated("landuse", run=prep_run)

def test_wrong(prep_run, invalidations):
    prep_run.prep.timestamp("build_climate")
    invalidations.assert_invalidated("build_climate", ["landuse"], run=prep_run)

def test_wrong_not(prep_run, invalidations):
    prep_run.prep.timestamp("run_wepp_hillslopes")
    invalidations.assert_not_invalidated("wepp")
"""


def test_assert_invalidated_explains_a_failure(pytester: pytest.Pytester, inner: Any) -> None:
    pytester.makepyfile(ASSERT_TESTS)
    result = inner()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.re_match_lines(
        [
            r"E\s+AssertionError: expected: build_climate invalidates landuse in run pytest-\w+",
            r"E\s+happened: build_climate in run pytest-\w+ invalidated .*climate.* "
            r"but not landuse",
            r"E\s+events during the test \(1\):",
            r"E\s+run pytest-\w+: build_climate -> .*wepp.*",
            r"E\s+the rules \(.*cache_invalidation_rules.json\) say build_climate invalidates:",
            r"E\s+climate\s+direct",
            r"E\s+wepp\s+via build_climate → run_wepp_hillslopes",
            r"E\s+landuse is not among them: these rules never invalidate it for build_climate",
        ]
    )
    result.stdout.re_match_lines(
        [
            r"E\s+AssertionError: expected: wepp is not invalidated",
            r"E\s+happened: run_wepp_hillslopes invalidated wepp",
        ]
    )


WORKER_TESTS = """
import os
import redisprep

def stamp(wd):
    redisprep.RedisPrep.getInstance(wd).timestamp("build_climate")
    return os.getpid()

def boom(wd):
    raise ValueError("no climate station")

def test_worker(prep_run, rq_worker, invalidations):
    prep_run.seed_caches(["climate", "landuse"])
    ok = rq_worker.queue.enqueue(stamp, prep_run.wd)
    bad = rq_worker.queue.enqueue(boom, prep_run.wd)
    done = rq_worker.work(burst=True, timeout=60)
    assert [j.id for j in done.finished] == [ok.id]
    assert done.finished[0].return_value() not in (None, os.getpid())   # a forked horse
    assert [f.job.id for f in done.failed] == [bad.id]
    assert "ValueError: no climate station" in done.failed[0].exception
    assert rq_worker.preloaded["rules"] == redisprep.active_rules().source
    invalidations.assert_invalidated("build_climate", ["climate"], run=prep_run)
    assert prep_run.cached() == {"landuse"}
"""


def test_worker_runs_a_job_that_stamps(pytester: pytest.Pytester, inner: Any) -> None:
    pytester.makepyfile(WORKER_TESTS)
    inner().assert_outcomes(passed=1)


def test_unused_plugin_starts_no_server(pytester: pytest.Pytester, inner: Any) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_plain(request):
            assert request.config.pluginmanager.has_plugin("redisprep")
            # loading the plugin imported neither the server helpers nor rq nor redis-py
            assert not {"redisprep._server", "rq", "redis"} & set(sys.modules)
        """
    )
    inner().assert_outcomes(passed=1)
    assert starts(inner.log) == []


def test_options_and_ini(pytester: pytest.Pytester, inner: Any, tmp_path: Path) -> None:
    """ini ``redisprep_server_exec`` is used; the command line wins over it."""
    log = tmp_path / "ini.log"
    ini_exe = exec_wrapper(tmp_path / "ini-wrapper", log)
    pytester.makeini(INI + f"redisprep_server_exec = {ini_exe}\n")
    pytester.makepyfile("def test_s(redisprep_server):\n    assert redisprep_server.version\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert len(starts(log)) == 1
    inner().assert_outcomes(passed=1)
    assert len(starts(log)) == 1 and len(starts(inner.log)) == 1


def test_keep_after_a_failure(pytester: pytest.Pytester, inner: Any) -> None:
    pytester.makepyfile(
        """
        def test_fails(prep_run):
            prep_run.prep.timestamp("build_climate")
            assert False, "on purpose"
        """
    )
    result = inner("--redisprep-keep")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*redisprep: kept after failures*", "run pytest-*", "server redis://*"]
    )
    ((pid, _),) = starts(inner.log)
    kept = {line.split(" ", 1)[0]: line for line in result.outlines}
    server_dir = kept["server"].rsplit("dir ", 1)[1].rstrip(")")
    try:
        assert alive(pid), "--redisprep-keep stopped the server"
        assert Path(kept["run"].split(": ", 1)[1].split()[0]).is_dir()
    finally:
        os.kill(pid, signal.SIGTERM)  # the server the inner session kept
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(server_dir, ignore_errors=True)


FACTORY_TESTS = """
import pytest
import redis
import redisprep
from redisprep.testing import factories

auth_server = factories.server(password="s3cret pw", scope="module")
auth_run = factories.run("auth_server")

def test_factory_variants(auth_server, auth_run, redisprep_server):
    assert auth_server.url != redisprep_server.url
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=auth_server.port).ping()
    auth_run.prep.timestamp("build_climate")
    auth_run.seed_caches(["climate"])
    assert auth_server.client().hget(auth_run.run_id, "timestamps:build_climate")
    assert auth_run.cached() == {"climate"}
    assert redisprep.connection_info()["address"] == f"127.0.0.1:{auth_server.port}"

def test_back_on_the_session_server(redisprep_url, redisprep_server):
    assert redisprep.connection_info()["url"] == redisprep_server.url
"""


def test_factories_give_a_password_server_and_runs_on_it(
    pytester: pytest.Pytester, inner: Any
) -> None:
    pytester.makepyfile(FACTORY_TESTS)
    inner().assert_outcomes(passed=2)
    assert len(starts(inner.log)) == 2  # both from the option's executable
    assert any("--requirepass" in args for _, args in starts(inner.log))


CLUSTER_TESTS = """
import redisprep
from redisprep import TaskEnum
from redisprep._redisprep import hash_key
from redisprep.testing import factories

cluster = factories.cluster(password="s3cret pw", scope="module")
cluster_run = factories.run("cluster")

def test_a_run_on_the_cluster(cluster, cluster_run):
    assert redisprep.connection_info()["layout"] == "cluster"
    cluster_run.seed_caches(["climate", "landuse"])
    assert cluster_run.cached() == {"climate", "landuse"}
    cluster_run.prep.timestamp(TaskEnum.build_climate)
    assert cluster_run.cached() == {"landuse"}
    key = hash_key(cluster_run.run_id, layout="cluster")
    assert key.startswith("prep:{")
    with cluster.client() as c:
        assert c.hget(key, "timestamps:build_climate")
        assert c.exists(cluster_run.cache_key("landuse")) == 1

def test_its_keys_are_gone_after_the_run(cluster):
    with cluster.client() as c:
        assert not [k for k in c.scan_iter(match="*pytest-*")]
"""


def test_factories_give_a_cluster_and_runs_on_it(pytester: pytest.Pytester, inner: Any) -> None:
    pytester.makepyfile(CLUSTER_TESTS)
    inner().assert_outcomes(passed=2)
    nodes = [args for _, args in starts(inner.log) if "--cluster-enabled yes" in args]
    assert len(nodes) == 6  # 3 masters + 3 replicas, from the option's executable
    assert all("--requirepass" in args for args in nodes)
    for pid, _ in starts(inner.log):
        assert not alive(pid)  # stopped with the module's scope
